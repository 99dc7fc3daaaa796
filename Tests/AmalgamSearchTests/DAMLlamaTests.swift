import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamModels
import AmalgamSearch
import AmalgamTestSupport
import Foundation
import Testing

/// The Llama cases of scripts/fixtures/make_dam_fixtures.py: fixtures/models/llama (or llama-tied) and a
/// perturbed copy, PyTorch autograd in float64.
struct DAMLlamaFixture {
    let coefficients: [Float]
    let batches: [TokenBatch]
    let loss: Float
    let kl: [Float]
    let similarity: Float
    let gradient: [Float]
    let configuration: DAMConfiguration
    /// fixtures/models/<model> is source 0.
    let model: String
    /// The DAM tensors in layout order, as the script lists them (nil for the cases without the list).
    let layerNames: [String]?

    init(_ name: String) throws {
        let file = try SafetensorsFile(path: fixturesDirectory + "/dam/\(name).safetensors")
        let meta = Dictionary(uniqueKeysWithValues: file.metadata.map { ($0.key, $0.value) })
        coefficients = try file.tensor("coefficients").floats()
        batches = try (0..<2).map { k in
            let tokens = try file.tensor("tokens\(k)").floats().map { Int($0) }
            var sequences: [[Int]] = [], start = 0
            for l in try file.tensor("lengths\(k)").floats().map({ Int($0) }) { sequences.append(Array(tokens[start ..< start + l])); start += l }
            return try TokenBatch(sequences)
        }
        loss = try file.tensor("loss").floats()[0]
        kl = try file.tensor("kl").floats()
        similarity = try file.tensor("similarity").floats()[0]
        gradient = try file.tensor("gradient").floats()
        var c = DAMConfiguration()
        c.scaleFunction = DAMScaleFunction(rawValue: meta["f"]!)!
        c.temperature = Double(meta["temperature"]!)!
        c.similarityWeight = Double(meta["lambda_sim"]!)!
        let k = Int(meta["top_k"]!)!
        c.topK = k > 0 ? k : nil
        c.trainEmbeddings = meta["train_embeddings"] == "true"
        c.trainNorms = meta["train_norms"] == "true"
        configuration = c
        model = meta["model"] ?? "llama"
        layerNames = meta["layers"].map { $0.split(separator: ",").map(String.init) }
    }

    /// The family of this case's two sources, with its embedding and norm settings.
    func family() throws -> DAMLlamaFamily {
        try Self.family(model: model, trainEmbeddings: configuration.trainEmbeddings, trainNorms: configuration.trainNorms)
    }

    /// The two source models: fixtures/models/<model> and its perturbed copy fixtures/dam/<model>-source1.
    static func family(model: String = "llama", trainEmbeddings: Bool = false, trainNorms: Bool = false) throws -> DAMLlamaFamily {
        let (folder, other) = try sources(model: model)
        return try DAMLlamaFamily(sources: [(folder.config, folder.weights), (folder.config, other)],
                                  trainEmbeddings: trainEmbeddings, trainNorms: trainNorms)
    }

    static func sources(model: String) throws -> (ModelFolder, SafetensorsCheckpoint) {
        let folder = try ModelFolder(path: fixturesDirectory + "/models/" + model)
        let path = fixturesDirectory + "/dam/\(model)-source1.safetensors"
        return (folder, try SafetensorsCheckpoint(path: path, files: [SafetensorsFile(path: path)]))
    }
}

@Suite struct DAMLlamaTests {
    /// The last three cases train the embedding and norm coefficients too (untied; tied with norms; tied,
    /// embedding only): tied, the merged embedding is also the output head.
    @Test(arguments: ["llama-tanh", "llama-identity-top8", "llama-embed-norms-tanh", "llama-tied-embed-norms-identity",
                      "llama-tied-embed-tanh"])
    func lossAndCoefficientGradientsMatchPyTorch(_ name: String) throws {
        let fixture = try DAMLlamaFixture(name)
        let family = try fixture.family()
        if let names = fixture.layerNames {
            #expect(family.layers.map(\.name) == names)
        } else {
            #expect(family.layers.count == 2 * 7 + 1)
            #expect(family.layers.last?.name == "lm_head")
        }
        let (loss, gradient) = try DAMObjective(configuration: fixture.configuration)
            .evaluate(family: family, coefficients: fixture.coefficients, batches: fixture.batches)
        #expect(abs(Float(loss.total) - fixture.loss) <= 1e-4 * abs(fixture.loss), "loss \(loss.total) vs \(fixture.loss)")
        #expect(close(loss.kl.map { Float($0) }, fixture.kl, relative: 1e-4, floor: 1e-3), "KL \(loss.kl) vs \(fixture.kl)")
        #expect(abs(Float(loss.similarity) - fixture.similarity) <= 1e-5)
        let scale = fixture.gradient.map(abs).max()!
        #expect(close(gradient, fixture.gradient, relative: 1e-4, floor: scale),
                "largest difference \(zip(gradient, fixture.gradient).map { abs($0 - $1) }.max()!) of \(scale)")
    }

    @Test func untrainedMergeIsTheColumnScaledAverage() throws {
        let family = try DAMLlamaFixture.family()
        let layout = DAMLayout(layers: family.layers, sourceCount: 2)
        let m = layout.initialCoefficients(.uniform, biasValue: 0.5, seed: 0)
        try family.merge(scales: layout.scales(of: m, f: .tanh))
        let merged = Dictionary(uniqueKeysWithValues: family.mergedTensors().map { ($0.name, $0.tensor.floats()) })
        let a = try ModelFolder(path: fixturesDirectory + "/models/llama").weights
        let b = try SafetensorsFile(path: fixturesDirectory + "/dam/llama-source1.safetensors")
        let factor = 2 * Float(tanh(0.5))
        for name in ["model.layers.1.mlp.down_proj.weight", "lm_head.weight"] {
            let expected = zip(try a.tensor(name).floats(), try b.tensor(name).floats()).map { factor * ($0 + $1) / 2 }
            #expect(close(merged[name]!, expected, relative: 1e-5, floor: 1e-3), "\(name)")
        }
        let norm = zip(try a.tensor("model.norm.weight").floats(), try b.tensor("model.norm.weight").floats()).map { ($0 + $1) / 2 }
        #expect(close(merged["model.norm.weight"]!, norm, relative: 1e-6, floor: 1e-3))
    }

    /// With embedding and norm coefficients, after a few steps: the exported coefficients name each tensor,
    /// and the merged checkpoint (and the model that computes logits) holds `Σᵢ f(cᵢ) ⊙ Tᵢ` for them.
    @Test(arguments: ["llama", "llama-tied"])
    func trainedEmbeddingAndNormsAreExportedAsTheirMixtures(_ model: String) throws {
        var c = DAMConfiguration()
        c.steps = 3
        c.batchSize = 2
        c.learningRate = 5e-2
        c.trainEmbeddings = true
        c.trainNorms = true
        let family = try DAMLlamaFixture.family(model: model, trainEmbeddings: true, trainNorms: true)
        let trainer = try DAMTrainer(configuration: c, family: family, datasets: [Self.dataset(seed: 1), Self.dataset(seed: 2)])
        try trainer.run()
        try trainer.mergeCurrent()
        let (tensors, _) = DAMRunFolder.coefficientsFile(trainer: trainer)
        let coefficients = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0.tensor) })
        let merged = Dictionary(uniqueKeysWithValues: family.mergedTensors().map { ($0.name, $0.tensor.floats()) })
        let (folder, other) = try DAMLlamaFixture.sources(model: model)
        let names = ["model.embed_tokens", "model.layers.0.input_layernorm", "model.layers.1.post_attention_layernorm", "model.norm"]
        for name in names {
            let m = try #require(coefficients[name + ".weight_coefficients"], "\(name)")
            #expect(m.shape == [2, 32])
            let scales = m.floats().map { Float(tanh(Double($0))) }
            #expect(scales.contains { abs($0 - Float(tanh(0.5))) > 1e-3 }, "\(name) did not train")
            let a = try folder.weights.tensor(name + ".weight").floats(), b = try other.tensor(name + ".weight").floats()
            let expected = a.indices.map { i in scales[i % 32] * a[i] + scales[32 + i % 32] * b[i] }
            #expect(close(merged[name + ".weight"]!, expected, relative: 1e-5, floor: 0.1), "\(name)")
        }
        #expect((coefficients["lm_head.weight_coefficients"] != nil) == (model == "llama"))
        // the model that computes logits reads the same mixtures: its logits are the checkpoint's
        let checkpoint = InMemoryCheckpoint(path: "merged", infos: family.tensorInfos,
                                            tensors: Dictionary(uniqueKeysWithValues: family.mergedTensors().map { ($0.name, $0.tensor) }))
        let reloaded = try LlamaModel(config: folder.config, weights: checkpoint)
        let batch = try TokenBatch([[1, 5, 9, 17], [3, 60]])
        #expect(try family.mergedLogits(batch: batch) == reloaded.logits(batch).values)
    }

    /// Sequences of the tiny vocabulary, drawn from a seeded generator.
    static func dataset(seed: UInt64) -> DAMDataset<TokenBatch> {
        var g = SeededGenerator(seed: seed, stream: 0)
        let sequences = (0..<5).map { _ in (0..<6).map { _ in g.integer(below: 64) } }
        return DAMDataset(count: sequences.count) { indices in try! TokenBatch(indices.map { sequences[$0] }) }
    }

    /// Plain, and with embedding and norm coefficients on the tied model.
    @Test(arguments: [false, true])
    func stoppedAndResumedRunEqualsAStraightRunByteForByte(_ embeddingsAndNorms: Bool) throws {
        var c = DAMConfiguration()
        c.steps = 4
        c.batchSize = 2
        c.learningRate = 1e-2
        c.optimiser = .mofo
        c.trainEmbeddings = embeddingsAndNorms
        c.trainNorms = embeddingsAndNorms
        let model = embeddingsAndNorms ? "llama-tied" : "llama"
        func family() throws -> DAMLlamaFamily {
            try DAMLlamaFixture.family(model: model, trainEmbeddings: embeddingsAndNorms, trainNorms: embeddingsAndNorms)
        }
        let datasets = [Self.dataset(seed: 1), Self.dataset(seed: 2)]
        let straight = try DAMTrainer(configuration: c, family: family(), datasets: datasets)
        try straight.run()

        let folder = NSTemporaryDirectory() + "dam-llama-resume-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let first = try DAMTrainer(configuration: c, family: family(), datasets: datasets)
        try first.run(runFolder: DAMRunFolder(path: folder, trainer: first, resume: false), until: 2)
        #expect(first.step == 2)
        let second = try DAMTrainer(configuration: c, family: family(), datasets: datasets)
        let run = try DAMRunFolder(path: folder, trainer: second, resume: true)
        #expect(second.step == 2)
        try second.run(runFolder: run)
        #expect(second.coefficients == straight.coefficients)
        #expect(second.history == straight.history)
        #expect(second.coefficients != first.coefficients)
    }

    /// A run folder written before `train_embeddings` / `train_norms` existed (its configuration.json lacks
    /// them) resumes as a run with both off, and not as one with them on.
    @Test func aRunFolderFromBeforeTheEmbeddingAndNormOptionsResumes() throws {
        var c = DAMConfiguration()
        c.steps = 2
        c.batchSize = 2
        let datasets = [Self.dataset(seed: 1), Self.dataset(seed: 2)]
        let folder = NSTemporaryDirectory() + "dam-llama-old-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let first = try DAMTrainer(configuration: c, family: DAMLlamaFixture.family(), datasets: datasets)
        try first.run(until: 1)
        try writeLegacyDAMRunFolder(folder, trainer: first)
        let path = folder + "/configuration.json"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let old = text.split(separator: "\n").filter { !$0.contains("trainEmbeddings") && !$0.contains("trainNorms") }.joined(separator: "\n")
        #expect(old != text)
        try old.write(toFile: path, atomically: true, encoding: .utf8)
        let second = try DAMTrainer(configuration: c, family: DAMLlamaFixture.family(), datasets: datasets)
        _ = try DAMRunFolder(path: folder, trainer: second, resume: true)
        #expect(second.step == 1)
        try old.write(toFile: path, atomically: true, encoding: .utf8)
        var on = c
        on.trainNorms = true
        let third = try DAMTrainer(configuration: on, family: DAMLlamaFixture.family(trainNorms: true), datasets: datasets)
        #expect(throws: DAMError.self) { try DAMRunFolder(path: folder, trainer: third, resume: true) }
    }

    @Test func sourcesOfAnotherShapeAreRefused() throws {
        let a = try ModelFolder(path: fixturesDirectory + "/models/llama")
        let b = try ModelFolder(path: fixturesDirectory + "/models/llama-tied")
        #expect(throws: DAMError.self) { try DAMLlamaFamily(sources: [(a.config, a.weights), (b.config, b.weights)]) }
    }
}
