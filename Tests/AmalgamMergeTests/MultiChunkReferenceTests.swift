import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamTestSupport
import Foundation
import Testing

/// mergekit 0.1.5 against our chunked executor on weights of several chunks (the MLP weights have
/// 1024 × 640 = 655,360 elements: three chunks of 2¹⁸, ten tiles of 2¹⁶): top-k cuts, breadcrumbs'
/// bands, sce's variance cut, karcher's and model_stock's Gram passes, slerp's norms, and DARE's and
/// DELLA's draws (by their statistics), all across chunk edges
/// (scripts/fixtures/make_merge_chunk_fixtures.py → fixtures/merge-chunks/).
///
/// The inputs are regenerated here from the script's recipe, checked against its checksums; mergekit's
/// outputs are kept as statistics: the values at a seeded sample of positions and around every tile
/// edge, and per row the sum, the sum of magnitudes, the squared and absolute distance from the base
/// and how many elements differ from it.
@Suite struct MultiChunkReferenceTests {
    static let folder = fixturesDirectory + "/merge-chunks"
    static let models = ["base", "ft1", "ft2", "ft3"]
    static let permutation: [String: (Int, Int)] = ["ft1": (0x9E3B5, 12345), "ft2": (0x5BD1F, 777), "ft3": (0x2C1B3, 424242)]
    static let scale: [String: Float] = ["ft1": 0x1p-26, "ft2": 0x1p-27, "ft3": 0x1p-28]
    static let (hidden, intermediate, vocab, heads, kvHeads) = (640, 1024, 64, 10, 2)

    static var shapes: [(String, [Int])] {
        let kv = hidden / heads * kvHeads
        return [
            ("model.embed_tokens.weight", [vocab, hidden]),
            ("model.layers.0.input_layernorm.weight", [hidden]),
            ("model.layers.0.post_attention_layernorm.weight", [hidden]),
            ("model.layers.0.self_attn.q_proj.weight", [hidden, hidden]),
            ("model.layers.0.self_attn.k_proj.weight", [kv, hidden]),
            ("model.layers.0.self_attn.v_proj.weight", [kv, hidden]),
            ("model.layers.0.self_attn.o_proj.weight", [hidden, hidden]),
            ("model.layers.0.mlp.gate_proj.weight", [intermediate, hidden]),
            ("model.layers.0.mlp.up_proj.weight", [intermediate, hidden]),
            ("model.layers.0.mlp.down_proj.weight", [hidden, intermediate]),
            ("model.norm.weight", [hidden]),
            ("lm_head.weight", [vocab, hidden]),
        ].sorted { $0.0 < $1.0 }
    }

    static func splitmix64(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The script's `make_tensor`: the same f32 values, bit for bit.
    static func values(_ model: String, tensor: Int, count n: Int) -> [Float] {
        let key = UInt64(tensor) << 32
        let base = (0..<n).map { i in Float(Int(splitmix64(key | UInt64(i)) >> 41) - (1 << 22)) * 0x1p-28 }
        guard model != "base", let (a, b) = permutation[model], let s = scale[model], let m = models.firstIndex(of: model) else { return base }
        let modelKey = UInt64(m * 64 + tensor) << 32
        return (0..<n).map { i in
            let magnitude = Float((i * a + b) % (1 << 20) + 1)
            let sign: Float = splitmix64(modelKey | UInt64(i)) >> 63 == 1 ? -1 : 1
            return base[i] + sign * magnitude * s
        }
    }

    /// The script's `checksum`.
    static func checksum(_ values: [Float]) -> String {
        var sum: UInt64 = 0
        for (i, v) in values.enumerated() { sum = sum &+ UInt64(v.bitPattern) &* (splitmix64(UInt64(i)) | 1) }
        let hex = String(sum, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    static let record: JSONValue = {
        (try? JSONValue.parse(String(contentsOfFile: folder + "/cases.json", encoding: .utf8))) ?? .null
    }()

    /// Writes the four models into `root`.
    static func writeInputs(into root: String) throws {
        let config = """
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": \(hidden), "intermediate_size": \(intermediate),
             "num_hidden_layers": 1, "num_attention_heads": \(heads), "num_key_value_heads": \(kvHeads), "vocab_size": \(vocab),
             "rms_norm_eps": 1e-05, "tie_word_embeddings": false, "max_position_embeddings": 64, "torch_dtype": "float32"}
            """
        for model in models {
            let dir = root + "/" + model
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let infos = shapes.map { TensorInfo(name: $0.0, dtype: .f32, shape: $0.1) }
            let writer = try CheckpointWriter(directory: dir, tensors: infos)
            for (t, (name, shape)) in shapes.enumerated() {
                try writer.write(name, tensor: Tensor(values(model, tensor: t, count: shape.reduce(1, *)), shape: shape))
            }
            try writer.finish()
            try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        }
    }

    static func floats(_ file: SafetensorsFile, _ name: String) throws -> [Float] { try file.tensor(name).floats() }

    static func indices(_ file: SafetensorsFile, _ name: String) throws -> [Int] {
        let bytes = try file.tensor(name).byteArray
        return stride(from: 0, to: bytes.count, by: 8).map { start in
            (0..<8).reduce(0) { $0 | Int(bytes[start + $1]) << (8 * $1) }
        }
    }

    /// Runs a case through the YAML → plan → chunked executor path (the models and the output in
    /// `root`); (case record, our output folder, mergekit's statistics).
    static func run(_ name: String, in root: String) throws -> (JSONValue, String, SafetensorsFile) {
        let c = try #require(record["cases"]?[name], "missing case \(name): run scripts/fixtures/make_merge_chunk_fixtures.py")
        try writeInputs(into: root)
        var yaml = "merge_method: \(c["merge_method"]!.stringValue!)\ndtype: float32\nmodels:\n"
        for entry in c["models"]!.arrayValue! {
            let pair = entry.arrayValue!
            yaml += "  - model: \(root)/\(pair[0].stringValue!)\n"
            let parameters = pair[1].objectValue!.map { "\($0.key): \($0.value.doubleValue!)" }
            if !parameters.isEmpty { yaml += "    parameters: {\(parameters.joined(separator: ", "))}\n" }
        }
        if let base = c["base"]?.stringValue { yaml += "base_model: \(root)/\(base)\n" }
        if let parameters = c["parameters"]?.objectValue {
            yaml += "parameters: {\(parameters.map { "\($0.key): \($0.value.doubleValue!)" }.joined(separator: ", "))}\n"
        }
        let out = try runMerge(try MergeConfig(yaml: yaml, path: "\(name) (merge-chunks)"), seed: 7, into: root + "/out")
        return (c, out, try SafetensorsFile(path: folder + "/\(name).safetensors"))
    }

    @Test func theRegeneratedInputsAreTheScriptsBitForBit() throws {
        let sums = try #require(Self.record["input_checksums"], "run scripts/fixtures/make_merge_chunk_fixtures.py")
        for model in Self.models {
            for (t, (name, shape)) in Self.shapes.enumerated() {
                #expect(Self.checksum(Self.values(model, tensor: t, count: shape.reduce(1, *))) == sums[model]?[name]?.stringValue,
                        "\(model) \(name)")
            }
        }
        // Several chunks: the point of these cases.
        #expect(Self.shapes.filter { $0.1.reduce(1, *) > 1 << 19 }.count == 3)
    }

    /// Deterministic methods: the sampled values within f32 tolerance; per row the sum and the sum of
    /// magnitudes within it, the squared distance from the base within 0.1 % (a top-k cut that took
    /// another element of a row moves it by more), and, for the sparsifying methods, the count of
    /// elements changed exactly (the task vectors' magnitudes are distinct: no ties).
    @Test(arguments: ["ties", "breadcrumbs_ties", "sce_topk", "karcher", "model_stock", "slerp", "nuslerp"])
    func matchesMergekitAcrossChunks(_ name: String) throws {
        let root = temporaryFolder("merge-chunks-\(name)")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (c, out, stats) = try Self.run(name, in: root)
        let ours = try ModelFolder.openWeights(folder: out)
        let reference = c["reference"]!.stringValue!
        let countsMustMatch = ["ties", "breadcrumbs_ties", "sce_topk"].contains(name)
        for (t, (tensor, shape)) in Self.shapes.enumerated() {
            let x = try ours.tensor(tensor).floats()
            let base = Self.values(reference, tensor: t, count: x.count)
            var bad: [String] = []
            let index = try Self.indices(stats, tensor + ":index"), value = try Self.floats(stats, tensor + ":value")
            for (i, v) in zip(index, value) where !(abs(x[i] - v) <= 1e-5 * abs(v) + 1e-6) {
                bad.append("[\(i)] ours \(x[i]) mergekit \(v)")
            }
            let rows = shape.count == 2 ? shape[0] : 1, width = x.count / rows
            let sums = try Self.floats(stats, tensor + ":row_sum"), magnitudes = try Self.floats(stats, tensor + ":row_abs")
            let distances = try Self.floats(stats, tensor + ":row_dsq"), kept = try Self.floats(stats, tensor + ":row_kept")
            for r in 0..<rows {
                var sum = 0.0, magnitude = 0.0, distance = 0.0, changed = 0
                for j in r * width..<(r + 1) * width {
                    sum += Double(x[j]); magnitude += Double(abs(x[j]))
                    distance += Double(x[j] - base[j]) * Double(x[j] - base[j])
                    if x[j] != base[j] { changed += 1 }
                }
                let tolerance = 1e-5 * Double(magnitudes[r]) + 1e-6
                if !(abs(sum - Double(sums[r])) <= tolerance) { bad.append("row \(r): sum \(sum) vs \(sums[r])") }
                if !(abs(magnitude - Double(magnitudes[r])) <= tolerance) { bad.append("row \(r): Σ|x| \(magnitude) vs \(magnitudes[r])") }
                if !(abs(distance - Double(distances[r])) <= 1e-3 * Double(distances[r]) + 1e-12) {
                    bad.append("row \(r): Σ(x − base)² \(distance) vs \(distances[r])")
                }
                if countsMustMatch && changed != Int(kept[r]) { bad.append("row \(r): \(changed) elements changed, mergekit \(Int(kept[r]))") }
            }
            #expect(bad.isEmpty, "\(name) \(tensor): \(bad.count) differences, first \(bad.prefix(4))")
        }
    }

    /// The draws differ (our generator, PyTorch's), the statistics must not: each keeps `density` of
    /// every tensor's task vector within 5σ, restores its L1 norm, and DELLA keeps low- and
    /// high-probability elements (its ranks along rows, across chunk edges) at their rates — both ours
    /// and mergekit's.
    @Test(arguments: ["dare_ties_seeded", "della_linear_seeded"])
    func randomMethodsKeepWhatMergekitKeepsAcrossChunks(_ name: String) throws {
        let root = temporaryFolder("merge-chunks-\(name)")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (c, out, stats) = try Self.run(name, in: root)
        let ours = try ModelFolder.openWeights(folder: out)
        let parameters = c["models"]!.arrayValue![1].arrayValue![1]
        let density = parameters["density"]!.doubleValue!, epsilon = parameters["epsilon"]?.doubleValue
        for (t, (tensor, shape)) in Self.shapes.enumerated() {
            let x = try ours.tensor(tensor).floats()
            let base = Self.values("base", tensor: t, count: x.count), other = Self.values("ft1", tensor: t, count: x.count)
            let delta = zip(other, base).map { $0 - $1 }
            let packed = try stats.tensor(tensor + ":kept").byteArray
            let keptByMergekit = (0..<x.count).map { packed[$0 / 8] >> (7 - UInt8($0 % 8)) & 1 == 1 }
            let keptByUs = (0..<x.count).map { x[$0] != base[$0] }
            let n = Double(x.count), sd = (n * density * (1 - density)).squareRoot()
            for (who, kept) in [("ours", keptByUs), ("mergekit", keptByMergekit)] {
                let count = Double(kept.filter { $0 }.count)
                #expect(abs(count - n * density) < 5 * sd, "\(name) \(tensor): \(who) kept \(count) of \(n)")
            }
            // L1: ours from the output, mergekit's from its per-row Σ|x − base|.
            let l1 = delta.reduce(0.0) { $0 + Double(abs($1)) }
            let oursL1 = zip(x, base).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) }
            let theirsL1 = try Self.floats(stats, tensor + ":row_dabs").reduce(0.0) { $0 + Double($1) }
            #expect(abs(oursL1 - l1) <= 1e-3 * l1, "\(name) \(tensor): our L1 \(oursL1) vs \(l1)")
            #expect(abs(theirsL1 - l1) <= 1e-3 * l1, "\(name) \(tensor): mergekit's L1 \(theirsL1) vs \(l1)")
            guard let epsilon else { continue }
            let probabilities = Sparsification.dellaProbabilities(delta, shape: shape, density: density, epsilon: epsilon)
            for low in [true, false] {
                let group = probabilities.indices.filter { (probabilities[$0] < density) == low }
                let expected = group.reduce(0.0) { $0 + probabilities[$1] }
                let spread = group.reduce(0.0) { $0 + probabilities[$1] * (1 - probabilities[$1]) }.squareRoot()
                for (who, kept) in [("ours", keptByUs), ("mergekit", keptByMergekit)] {
                    let count = Double(group.filter { kept[$0] }.count)
                    #expect(abs(count - expected) < 5 * spread, "\(name) \(tensor) low \(low): \(who) kept \(count), expected \(expected)")
                }
            }
        }
    }
}
