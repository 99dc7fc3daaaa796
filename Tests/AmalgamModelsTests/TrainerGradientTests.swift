import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import AmalgamTestSupport
import Foundation
import Testing

/// A fixture of `scripts/fixtures/make_backward_fixtures.py`: PyTorch's loss and parameter gradients (f64).
struct BackwardFixture {
    let file: SafetensorsFile
    let batch: TokenBatch
    let teacher: [Float]

    init(_ model: String) throws {
        file = try SafetensorsFile(path: fixturesDirectory + "/backward/\(model).safetensors")
        let tokens = try file.tensor("tokens").floats().map { Int($0) }
        let lengths = try file.tensor("lengths").floats().map { Int($0) }
        var sequences: [[Int]] = []
        var start = 0
        for l in lengths { sequences.append(Array(tokens[start..<(start + l)])); start += l }
        batch = try TokenBatch(sequences)
        teacher = try file.tensor("teacher").floats()
    }

    func loss(_ name: String) throws -> Double { try file.tensor("\(name).loss").withUnsafeBytes { $0.load(as: Double.self) } }
    func gradient(_ loss: String, _ tensor: String) throws -> [Float]? {
        file.info("\(loss).grad.\(tensor)") == nil ? nil : try file.tensor("\(loss).grad.\(tensor)").floats()
    }
    /// Names of the parameters PyTorch has gradients for.
    func parameterNames(_ loss: String) -> [String] {
        let prefix = "\(loss).grad."
        return file.tensorInfos.map(\.name).filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }
}

/// Per-tensor criterion: ‖ours − torch‖ / ‖torch‖ ≤ 1e-4 for every parameter gradient.
let gradientTolerance = 1e-4

@Suite("Backward passes of the Llama family match PyTorch autograd")
struct TrainerGradientTests {
    func check(_ modelName: String, _ lossName: String) throws {
        let fixture = try BackwardFixture(modelName)
        let model = try LlamaModel(folder: modelFixture(modelName))
        let trainer = try LlamaTrainer(model: model, trainable: .all)
        let N = fixture.batch.tokenCount, V = model.config.vocabSize
        let objective: TrainingObjective
        switch lossName {
        case "ce": objective = .nextToken
        case "kl": objective = .distillation(teacher: Matrix(rows: N, cols: V, values: fixture.teacher), temperature: 2, topK: nil, counted: nil)
        default: objective = .distillation(teacher: Matrix(rows: N, cols: V, values: fixture.teacher), temperature: 2, topK: 8, counted: nil)
        }
        let count = LlamaTrainer.countedRows(fixture.batch, objective)
        let total = try trainer.accumulateGradients(fixture.batch, objective: objective, gradientScale: 1 / Float(count))
        let expectedLoss = try fixture.loss(lossName)
        #expect(abs(total.mean - expectedLoss) < 1e-5 * expectedLoss, "\(modelName) \(lossName) loss \(total.mean) vs \(expectedLoss)")
        let names = fixture.parameterNames(lossName)
        #expect(Set(names) == Set(trainer.parameters.map(\.name)), "\(modelName): the trainable tensors are the model's parameters")
        for p in trainer.parameters {
            guard let expected = try fixture.gradient(lossName, p.name) else { continue }
            let err = relativeError(p.gradients, expected)
            #expect(err < gradientTolerance, "\(modelName) \(lossName) \(p.name): relative error \(err)")
        }
    }

    @Test("llama with grouped-query attention: cross-entropy", arguments: ["llama", "llama-tied", "mistral", "qwen2", "qwen3"])
    func crossEntropy(model: String) throws { try check(model, "ce") }

    @Test("distillation KL at T = 2, full vocabulary and teacher top-8", arguments: [("llama", "kl"), ("llama", "kl_topk"), ("qwen2", "kl")])
    func distillation(model: String, loss: String) throws { try check(model, loss) }

    @Test("the per-layer observer's input and output gradient give each weight's gradient (DAM's path)")
    func observer() throws {
        let fixture = try BackwardFixture("llama")
        let model = try LlamaModel(folder: modelFixture("llama"))
        let trainer = try LlamaTrainer(model: model, trainable: .none)
        #expect(trainer.parameters.isEmpty)
        var observed: [String: [Float]] = [:]
        trainer.linearObserver = { a in
            var dw = observed[a.name] ?? [Float](repeating: 0, count: a.outFeatures * a.inFeatures)
            MatMul.backwardWeight(&dw, a.outputGradient, a.input, rows: a.rows, outFeatures: a.outFeatures, inFeatures: a.inFeatures)
            observed[a.name] = dw
        }
        let count = LlamaTrainer.countedRows(fixture.batch, .nextToken)
        _ = try trainer.accumulateGradients(fixture.batch, gradientScale: 1 / Float(count))
        #expect(observed.count == 2 * 7 + 1)
        for (name, dw) in observed {
            let err = relativeError(dw, try #require(try fixture.gradient("ce", name)))
            #expect(err < gradientTolerance, "\(name): relative error \(err)")
        }
    }

    @Test("training only layer 1's MLP gives those tensors the same gradients as training everything")
    func selection() throws {
        let fixture = try BackwardFixture("qwen2")
        let model = try LlamaModel(folder: modelFixture("qwen2"))
        let trainer = try LlamaTrainer(model: model, trainable: .pattern(#"layers\.1\.mlp\."#))
        #expect(trainer.parameters.map(\.name) == ["gate", "up", "down"].map { "model.layers.1.mlp.\($0)_proj.weight" })
        let count = LlamaTrainer.countedRows(fixture.batch, .nextToken)
        _ = try trainer.accumulateGradients(fixture.batch, gradientScale: 1 / Float(count))
        for p in trainer.parameters {
            #expect(relativeError(p.gradients, try #require(try fixture.gradient("ce", p.name))) < gradientTolerance)
        }
        #expect(throws: TrainingError.self) { try LlamaTrainer(model: model, trainable: .pattern("no_such_tensor")) }
    }

    @Test("the trainer's loss is the engine's scoring: same log-likelihood as LlamaModel.score")
    func lossMatchesScoring() throws {
        let fixture = try BackwardFixture("llama")
        let model = try LlamaModel(folder: modelFixture("llama"))
        let trainer = try LlamaTrainer(model: model, trainable: .none)
        let total = try trainer.loss(fixture.batch)
        let scores = try model.score(fixture.batch)
        let ll = scores.reduce(0) { $0 + $1.logLikelihood }
        #expect(abs(total.sum + ll) < 1e-4 * abs(ll))
        #expect(total.count == scores.reduce(0) { $0 + $1.tokenCount })
    }
}
