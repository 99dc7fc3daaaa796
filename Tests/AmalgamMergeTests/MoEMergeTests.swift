import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamTestSupport
import Foundation
import Testing

/// MoE checkpoints merged as mergekit 0.1.5 merges them (transformers 5 fuses the experts of a layer into
/// `mlp.experts.gate_up_proj` / `down_proj`, so per-tensor statistics span every expert), against
/// mergekit's own outputs (scripts/fixtures/make_moe_merge_fixtures.py → fixtures/moe-merge/), and the
/// `--moe-experts per-expert` option (each stored tensor alone), which must differ from them.
@Suite struct MoEMergeTests {
    static let folder = fixturesDirectory + "/moe-merge"
    static let record: JSONValue = {
        (try? JSONValue.parse(String(contentsOfFile: folder + "/cases.json", encoding: .utf8))) ?? .null
    }()
    static let smallCases = ["mixtral-ties", "mixtral-slerp", "mixtral-model_stock", "qwen3-moe-ties", "qwen3-moe-slerp", "qwen3-moe-model_stock",
                             "qwen2-moe-ties"]

    /// A case's mergekit config, with the fixture models' paths.
    static func config(_ name: String) throws -> MergeConfig {
        let c = try #require(record["small"]?[name], "missing case \(name): run scripts/fixtures/make_moe_merge_fixtures.py")
        let family = c["family"]!.stringValue!
        func path(_ m: String) -> String { "\(folder)/models/\(family)-\(m)" }
        var yaml = "merge_method: \(c["merge_method"]!.stringValue!)\ndtype: float32\nbase_model: \(path(c["base"]!.stringValue!))\nmodels:\n"
        for entry in c["models"]!.arrayValue! {
            let pair = entry.arrayValue!
            yaml += "  - model: \(path(pair[0].stringValue!))\n"
            let parameters = pair[1].objectValue!.map { "\($0.key): \($0.value.doubleValue!)" }
            if !parameters.isEmpty { yaml += "    parameters: {\(parameters.joined(separator: ", "))}\n" }
        }
        if let parameters = c["parameters"]?.objectValue, parameters.count > 0 {
            yaml += "parameters: {\(parameters.map { "\($0.key): \($0.value.doubleValue!)" }.joined(separator: ", "))}\n"
        }
        return try MergeConfig(yaml: yaml, path: "\(name) (moe-merge)")
    }

    /// The fused tensors of a per-expert output, made as transformers 5 fuses them (experts in order, each
    /// expert's gate rows then its up rows), for comparison with mergekit's.
    static func fused(_ weights: any TensorSource, layer: Int, mixtral: Bool) throws -> (gateUp: [Float], down: [Float]) {
        let p = mixtral ? "model.layers.\(layer).block_sparse_moe.experts." : "model.layers.\(layer).mlp.experts."
        let (g, u, d) = mixtral ? ("w1", "w3", "w2") : ("gate_proj", "up_proj", "down_proj")
        var gateUp: [Float] = [], down: [Float] = []
        var e = 0
        while weights.info(p + "\(e).\(g).weight") != nil {
            gateUp += try weights.tensor(p + "\(e).\(g).weight").floats() + weights.tensor(p + "\(e).\(u).weight").floats()
            down += try weights.tensor(p + "\(e).\(d).weight").floats()
            e += 1
        }
        return (gateUp, down)
    }

    /// Largest |a − b| and the count of elements whose bits differ.
    static func difference(_ a: [Float], _ b: [Float]) -> (max: Float, differing: Int) {
        var worst: Float = 0, differing = 0
        for (x, y) in zip(a, b) {
            worst = max(worst, abs(x - y))
            if x.bitPattern != y.bitPattern { differing += 1 }
        }
        return (worst, differing)
    }

    /// The default gives mergekit's tensors: the same names (fused experts, Mixtral's router under `mlp.`),
    /// shapes and dtypes, values within f32 rounding (mergekit sums in f32 in torch's order, we in f64:
    /// 1e-5 relative, floor 1e-6, as for every f32 merge fixture).
    @Test(arguments: smallCases)
    func fusedByDefaultGivesMergekitsTensors(_ name: String) throws {
        let out = try runMerge(try Self.config(name), into: temporaryFolder("moe-merge-\(name)") + "/out")
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        try expectSameTensors(out, Self.folder + "/expected/\(name)")
        let ours = try ModelFolder.openWeights(folder: out)
        #expect(ours.info("model.layers.1.mlp.experts.gate_up_proj")?.shape == [4, 32, 16])
        #expect(ours.info("model.layers.1.mlp.experts.down_proj")?.shape == [4, 16, 16])
        // TIES has no sum over elements (its cut is a rank, its sign sum adds two terms exactly here):
        // mergekit's bytes. slerp and model_stock differ in the last bit where their f32 norms (torch's
        // order) and our f64 ones round apart (max 1.2e-7 measured, docs/moe.md).
        if name.hasSuffix("-ties") {
            let theirs = try ModelFolder.openWeights(folder: Self.folder + "/expected/\(name)")
            for info in theirs.tensorInfos where info.name.contains(".experts.") {
                #expect(try ours.tensor(info.name).byteArray == theirs.tensor(info.name).byteArray, "\(name) \(info.name): not mergekit's bytes")
            }
        }
    }

    /// `--moe-experts per-expert`: the stored names and each expert merged alone (its tensors are what the
    /// method gives for that tensor by itself), so TIES' cuts and slerp's / model_stock's norms per expert
    /// differ from mergekit's fused ones; every tensor outside the experts is the same as the default's.
    @Test(arguments: smallCases)
    func perExpertMergesEachExpertAloneAndDiffersFromMergekit(_ name: String) throws {
        let root = temporaryFolder("moe-merge-per-expert-\(name)")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let config = try Self.config(name)
        let out = try runMerge(config, moeExperts: .perExpert, into: root + "/out")
        let ours = try ModelFolder.openWeights(folder: out)
        let mixtral = name.hasPrefix("mixtral")
        let theirs = try ModelFolder.openWeights(folder: Self.folder + "/expected/\(name)")
        #expect(ours.info("model.layers.0.mlp.experts.gate_up_proj") == nil)

        // Each expert tensor alone: the plan's step for it has one input per model, of that tensor only.
        let plan = try MergePlan(config: config, moeExperts: .perExpert)
        let expertSteps = plan.steps.filter { $0.outputName.contains(".experts.") }
        #expect(expertSteps.count == 2 * 4 * 3)
        #expect(expertSteps.allSatisfy { s in s.inputs.allSatisfy { $0.segments == [s.outputName] && $0.info.shape.count == 2 } })
        let p = mixtral ? "model.layers.1.block_sparse_moe.experts.2.w1.weight" : "model.layers.1.mlp.experts.2.gate_proj.weight"
        let step = try #require(plan.steps.first { $0.outputName == p })
        let inputs = try step.inputs.map { i in
            MergeInput(model: plan.models[i.model].reference, values: try plan.read(i).floats(), shape: i.info.shape, parameters: i.parameters)
        }
        let alone = try plan.method.merge(inputs, context: MergeContext(tensorName: p, baseIndex: step.baseIndex, parameters: step.parameters,
                                                                       seed: step.seed, isEmbedding: false))
        #expect(alone.values == (try ours.tensor(p).floats()), "\(name): \(p) is not the method's result for that tensor alone")

        var total: Float = 0
        for layer in 0..<2 {
            let (gateUp, down) = try Self.fused(ours, layer: layer, mixtral: mixtral)
            let ref = "model.layers.\(layer).mlp.experts."
            let a = Self.difference(gateUp, try theirs.tensor(ref + "gate_up_proj").floats())
            let b = Self.difference(down, try theirs.tensor(ref + "down_proj").floats())
            total = max(total, a.max, b.max)
        }
        // TIES' top-k per expert keeps other elements than mergekit's cut over all experts; slerp's and
        // model_stock's coefficients come from other norms. Far beyond f32 rounding (the default is within 1e-6).
        #expect(total > 1e-3, "\(name): per-expert is within \(total) of mergekit's fused merge")
        // Outside the experts: the same bytes as the default (router renamed back for Mixtral).
        let fusedOut = try runMerge(config, into: root + "/fused")
        let fusedWeights = try ModelFolder.openWeights(folder: fusedOut)
        for info in fusedWeights.tensorInfos where !info.name.contains(".experts.") {
            let stored = mixtral ? info.name.replacingOccurrences(of: ".mlp.", with: ".block_sparse_moe.") : info.name
            #expect(try ours.tensor(stored).floats() == fusedWeights.tensor(info.name).floats(), "\(name): \(info.name)")
        }
    }

    /// The plan of the default: one step per fused tensor, its inputs the per-expert tensors in
    /// transformers' order; the dry-run's view of it.
    @Test func theFusedPlanReadsEachExpertInTransformersOrder() throws {
        let plan = try MergePlan(config: try Self.config("mixtral-ties"))
        let step = try #require(plan.steps.first { $0.outputName == "model.layers.1.mlp.experts.gate_up_proj" })
        #expect(step.outputShape == [4, 32, 16])
        let p = "model.layers.1.block_sparse_moe.experts."
        #expect(step.inputs[0].segments == (0..<4).flatMap { [p + "\($0).w1.weight", p + "\($0).w3.weight"] })
        let down = try #require(plan.steps.first { $0.outputName == "model.layers.1.mlp.experts.down_proj" })
        #expect(down.inputs[0].segments == (0..<4).map { p + "\($0).w2.weight" })
        #expect(plan.steps.contains { $0.outputName == "model.layers.1.mlp.gate.weight" })
        #expect(!plan.steps.contains { $0.outputName.contains("block_sparse_moe") })
    }

    /// A checkpoint whose experts cannot be fused (an expert missing a projection) is an error naming
    /// the file and tensor and the option that merges it as stored.
    @Test func expertsThatCannotBeFusedAreAClearError() throws {
        let root = temporaryFolder("moe-merge-broken")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let source = Self.folder + "/models/qwen3-moe-ft1"
        let weights = try ModelFolder.openWeights(folder: source)
        let dir = root + "/broken"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let kept = weights.tensorInfos.filter { $0.name != "model.layers.1.mlp.experts.3.up_proj.weight" }
        let writer = try CheckpointWriter(directory: dir, tensors: kept)
        for info in kept { try writer.write(info.name, tensor: try weights.tensor(info.name)) }
        try writer.finish()
        try FileManager.default.copyItem(atPath: source + "/config.json", toPath: dir + "/config.json")
        let config = try MergeConfig(yaml: "merge_method: linear\nmodels:\n  - model: \(dir)\n    parameters: {weight: 1.0}\n", path: "broken.yml")
        #expect {
            _ = try MergePlan(config: config)
        } throws: { error in
            let text = "\(error)"
            return text.contains(dir) && text.contains("model.layers.1.mlp.experts.3") && text.contains("up") && text.contains("--moe-experts per-expert")
        }
        // As stored it merges.
        _ = try MergePlan(config: config, moeExperts: .perExpert)
    }

    /// Inputs already fused (a merge's output) and stored per expert mix: the same logical tensors, so a
    /// linear merge of a fused copy of ft1 with ft2 gives the bytes of the merge of ft1 with ft2.
    @Test func fusedAndPerExpertInputsMix() throws {
        let root = temporaryFolder("moe-merge-mixed")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let models = Self.folder + "/models"
        let copy = try runMerge(try MergeConfig(yaml: "merge_method: linear\ndtype: float32\nmodels:\n  - model: \(models)/mixtral-ft1\n    parameters: {weight: 1.0}\n",
                                                path: "copy.yml"), into: root + "/ft1-fused")
        #expect(try ModelFolder.openWeights(folder: copy).info("model.layers.0.mlp.experts.gate_up_proj") != nil)
        func linear(_ first: String) throws -> String {
            let yaml = "merge_method: linear\ndtype: float32\nmodels:\n  - model: \(first)\n    parameters: {weight: 0.3}\n  - model: \(models)/mixtral-ft2\n    parameters: {weight: 0.7}\n"
            return try runMerge(try MergeConfig(yaml: yaml, path: "mixed.yml"), into: root + "/out-" + (first as NSString).lastPathComponent)
        }
        let mixed = try ModelFolder.openWeights(folder: try linear(copy))
        let stored = try ModelFolder.openWeights(folder: try linear(models + "/mixtral-ft1"))
        #expect(Set(mixed.tensorNames) == Set(stored.tensorNames))
        for info in stored.tensorInfos { #expect(try mixed.tensor(info.name).byteArray == stored.tensor(info.name).byteArray, "\(info.name)") }
    }

    // MARK: - Larger than a chunk

    static let large = (experts: 4, hidden: 320, intermediate: 256, vocab: 64, heads: 4, kv: 2)
    static let largeModels = ["base", "ft1", "ft2"]
    static let largePermutation: [String: (Int, Int)] = ["ft1": (0x9E3B5, 12345), "ft2": (0x5BD1F, 777)]
    static let largeScale: [String: Float] = ["ft1": 0x1p-26, "ft2": 0x1p-27]

    /// The script's `large_layout`: (name, shape, offset of its elements within its fused tensor), by name.
    static var largeLayout: [(String, [Int], Int)] {
        let (E, H, I, V) = (large.experts, large.hidden, large.intermediate, large.vocab)
        let kv = H / large.heads * large.kv, p = "model.layers.0."
        var out: [(String, [Int], Int)] = [
            ("model.embed_tokens.weight", [V, H], 0), (p + "input_layernorm.weight", [H], 0), (p + "post_attention_layernorm.weight", [H], 0),
            (p + "self_attn.q_proj.weight", [H, H], 0), (p + "self_attn.k_proj.weight", [kv, H], 0), (p + "self_attn.v_proj.weight", [kv, H], 0),
            (p + "self_attn.o_proj.weight", [H, H], 0), (p + "block_sparse_moe.gate.weight", [E, H], 0), ("model.norm.weight", [H], 0),
            ("lm_head.weight", [V, H], 0),
        ]
        let block = I * H
        for e in 0..<E {
            out.append((p + "block_sparse_moe.experts.\(e).w1.weight", [I, H], 2 * e * block))
            out.append((p + "block_sparse_moe.experts.\(e).w3.weight", [I, H], (2 * e + 1) * block))
            out.append((p + "block_sparse_moe.experts.\(e).w2.weight", [H, I], e * block))
        }
        return out.sorted { $0.0 < $1.0 }
    }

    /// The script's `large_tensor`: the make_merge_chunk_fixtures.py recipe with the magnitude index
    /// counted within the fused tensor (distinct across all experts: no ties at TIES' cut).
    static func largeValues(_ model: String, tensor: Int, count n: Int, offset: Int) -> [Float] {
        let key = UInt64(tensor) << 32
        let split = MultiChunkReferenceTests.splitmix64
        let base = (0..<n).map { i in Float(Int(split(key | UInt64(i)) >> 41) - (1 << 22)) * 0x1p-28 }
        guard let (a, b) = largePermutation[model], let s = largeScale[model], let m = largeModels.firstIndex(of: model) else { return base }
        let modelKey = UInt64(m * 64 + tensor) << 32
        return (0..<n).map { i in
            let magnitude = Float(((i + offset) * a + b) % (1 << 20) + 1)
            let sign: Float = split(modelKey | UInt64(i)) >> 63 == 1 ? -1 : 1
            return base[i] + sign * magnitude * s
        }
    }

    static func writeLargeInputs(into root: String) throws {
        let l = large
        let config = """
            {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": \(l.hidden), "intermediate_size": \(l.intermediate),
             "num_hidden_layers": 1, "num_attention_heads": \(l.heads), "num_key_value_heads": \(l.kv), "vocab_size": \(l.vocab),
             "num_local_experts": \(l.experts), "num_experts_per_tok": 2, "rms_norm_eps": 1e-05, "tie_word_embeddings": false,
             "max_position_embeddings": 64, "dtype": "float32"}
            """
        let sums = try #require(record["large"]?["input_checksums"], "run scripts/fixtures/make_moe_merge_fixtures.py")
        for model in largeModels {
            let dir = root + "/" + model
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let layout = largeLayout
            let writer = try CheckpointWriter(directory: dir, tensors: layout.map { TensorInfo(name: $0.0, dtype: .f32, shape: $0.1) })
            for (t, (name, shape, offset)) in layout.enumerated() {
                let v = largeValues(model, tensor: t, count: shape.reduce(1, *), offset: offset)
                #expect(MultiChunkReferenceTests.checksum(v) == sums[model]?[name]?.stringValue, "\(model) \(name): not the script's values")
                try writer.write(name, tensor: Tensor(v, shape: shape))
            }
            try writer.finish()
            try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        }
    }

    /// Per row of H elements of a fused tensor [E·rows, H]: elements that differ from the base.
    static func keptPerRow(_ x: [Float], _ base: [Float], width: Int) -> [Int] {
        stride(from: 0, to: x.count, by: width).map { r in (r..<(r + width)).reduce(0) { $0 + (x[$1] != base[$1] ? 1 : 0) } }
    }

    /// TIES over a fused gate_up_proj of 655,360 elements (three chunks of the executor's 2¹⁸, the stored
    /// expert tensors of 81,920 elements crossing chunk and tile edges) against mergekit's statistics:
    /// sampled values within f32 tolerance, per row the sum within it and the kept count exactly (the
    /// magnitudes are distinct, so the cut over all experts has one answer); per-expert cuts keep other
    /// counts.
    @Test func fusedTiesAcrossChunksMatchesMergekit() throws {
        let root = temporaryFolder("moe-merge-large")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.writeLargeInputs(into: root)
        let c = try #require(Self.record["large"])
        var yaml = "merge_method: ties\ndtype: float32\nbase_model: \(root)/base\nmodels:\n"
        for entry in c["models"]!.arrayValue! {
            let pair = entry.arrayValue!
            yaml += "  - model: \(root)/\(pair[0].stringValue!)\n"
            let parameters = pair[1].objectValue!.map { "\($0.key): \($0.value.doubleValue!)" }
            if !parameters.isEmpty { yaml += "    parameters: {\(parameters.joined(separator: ", "))}\n" }
        }
        let config = try MergeConfig(yaml: yaml, path: "large-ties (moe-merge)")
        let plan = try MergePlan(config: config)
        let gateUpStep = try #require(plan.steps.first { $0.outputName == "model.layers.0.mlp.experts.gate_up_proj" })
        #expect(Tensor.elementCount(gateUpStep.outputShape) > 1 << 19)
        #expect(Tensor.elementCount(gateUpStep.outputShape) > 2 * MergeOptions(outputPath: "").chunkElements, "fewer than three chunks")
        let out = try runMerge(config, into: root + "/out")
        let perExpert = try runMerge(config, moeExperts: .perExpert, into: root + "/per-expert")
        let ours = try ModelFolder.openWeights(folder: out)
        #expect(Set(ours.tensorNames) == Set(c["output_tensors"]!.arrayValue!.map { $0.stringValue! }))
        let stats = try SafetensorsFile(path: Self.folder + "/large-ties.safetensors")
        let base = try ModelFolder.openWeights(folder: root + "/base")
        let (baseGateUp, baseDown) = try Self.fused(base, layer: 0, mixtral: true)
        let (perGateUp, perDown) = try Self.fused(try ModelFolder.openWeights(folder: perExpert), layer: 0, mixtral: true)
        for (tensor, b, per) in [("model.layers.0.mlp.experts.gate_up_proj", baseGateUp, perGateUp),
                                 ("model.layers.0.mlp.experts.down_proj", baseDown, perDown)] {
            let x = try ours.tensor(tensor).floats()
            let width = try ours.tensor(tensor).shape.last!
            var bad: [String] = []
            let index = try MultiChunkReferenceTests.indices(stats, tensor + ":index"), value = try MultiChunkReferenceTests.floats(stats, tensor + ":value")
            for (i, v) in zip(index, value) where !(abs(x[i] - v) <= 1e-5 * abs(v) + 1e-6) { bad.append("[\(i)] ours \(x[i]) mergekit \(v)") }
            let kept = try MultiChunkReferenceTests.floats(stats, tensor + ":row_kept").map { Int($0) }
            let sums = try MultiChunkReferenceTests.floats(stats, tensor + ":row_sum"), magnitudes = try MultiChunkReferenceTests.floats(stats, tensor + ":row_abs")
            let ourKept = Self.keptPerRow(x, b, width: width)
            for r in kept.indices {
                if ourKept[r] != kept[r] { bad.append("row \(r): \(ourKept[r]) kept, mergekit \(kept[r])") }
                let sum = x[(r * width)..<((r + 1) * width)].reduce(0.0) { $0 + Double($1) }
                if !(abs(sum - Double(sums[r])) <= 1e-5 * Double(magnitudes[r]) + 1e-6) { bad.append("row \(r): sum \(sum) vs \(sums[r])") }
            }
            #expect(bad.isEmpty, "\(tensor): \(bad.count) differences, first \(bad.prefix(4))")
            // The recipe's experts have one magnitude distribution, so per-expert cuts fall near the fused
            // one: the kept counts differ in a few rows only, but they do differ.
            let perKept = Self.keptPerRow(per, b, width: width)
            let rowsDiffering = zip(perKept, kept).filter { $0 != $1 }.count
            #expect(rowsDiffering > 0, "\(tensor): per-expert kept counts are mergekit's in every row")
            print("moe-merge large \(tensor): per-expert kept counts differ from mergekit's in \(rowsDiffering) of \(kept.count) rows")
        }
    }
}
