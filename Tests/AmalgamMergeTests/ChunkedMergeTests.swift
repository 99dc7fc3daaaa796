import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamTestSupport
import Foundation
import Testing

/// Merging a tensor in chunks (the default for linear, slerp and the task-arithmetic family) gives the
/// same bytes as merging it whole, at any thread count: top-k cuts with ties spread over several
/// chunks, DARE's draws, L1 rescales and slerp's norms included.
@Suite struct ChunkedMergeTests {
    /// Four small Llama-shaped models (base, ft1…ft3) whose tensors span several 65,536-element chunks.
    /// bf16 models have quantised task vectors (many equal magnitudes at every threshold); f32 models
    /// continuous ones (the cut's bucket holds many keys, so the low-bits pass runs).
    static func models(_ dtype: DType) throws -> String {
        let root = temporaryFolder("chunked-\(dtype.rawValue)")
        let (vocab, hidden, inter) = (600, 256, 640)
        let infos = [
            TensorInfo(name: "model.embed_tokens.weight", dtype: dtype, shape: [vocab, hidden]),
            TensorInfo(name: "model.layers.0.mlp.up_proj.weight", dtype: dtype, shape: [inter, hidden]),
            // Rows of 640 straddle tiles and chunks (DELLA ranks along rows).
            TensorInfo(name: "model.layers.0.mlp.down_proj.weight", dtype: dtype, shape: [hidden, inter]),
            TensorInfo(name: "model.layers.0.input_layernorm.weight", dtype: dtype, shape: [hidden]),
            TensorInfo(name: "model.norm.weight", dtype: dtype, shape: [hidden]),
            TensorInfo(name: "lm_head.weight", dtype: dtype, shape: [vocab, hidden]),
        ]
        let config = """
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": \(hidden),
         "intermediate_size": \(inter), "num_hidden_layers": 1, "num_attention_heads": 4,
         "num_key_value_heads": 4, "vocab_size": \(vocab), "rms_norm_eps": 1e-05, "torch_dtype": "bfloat16"}
        """
        for (m, name) in ["base", "ft1", "ft2", "ft3"].enumerated() {
            let dir = root + "/" + name
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let writer = try CheckpointWriter(directory: dir, tensors: infos)
            for (t, info) in infos.enumerated() {
                var base = SeededGenerator(seed: UInt64(t + 1))
                var noise = SeededGenerator(seed: UInt64(100 * m + t))
                let values = (0..<info.elementCount).map { _ -> Float in
                    let b = dtype == .bf16 ? Float(base.integer(below: 129) - 64) / 1024 : base.normal() * 0.02
                    guard m > 0, noise.uniform() < 0.3 + 0.2 * Double(m) else { return b }
                    return b + (dtype == .bf16 ? Float(noise.integer(below: 17) - 8) / 1024 : noise.normal() * 0.002 * Float(m))
                }
                try writer.write(info.name, tensor: Tensor(values, shape: info.shape))
            }
            try writer.finish()
            try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        }
        return root
    }

    static let methods: [(String, String)] = [
        ("linear", "merge_method: linear"),
        ("ties", "merge_method: ties"),
        ("ties_rescale", "merge_method: ties\nparameters: {rescale: true}"),
        ("ties_lambda", "merge_method: ties\nparameters: {lambda: 0.8, normalize: false}"),
        ("dare_ties", "merge_method: dare_ties"),
        ("dare_linear", "merge_method: dare_linear"),
        ("breadcrumbs_ties", "merge_method: breadcrumbs_ties"),
        ("breadcrumbs", "merge_method: breadcrumbs"),
        ("task_arithmetic", "merge_method: task_arithmetic"),
        ("ties_dropped", "merge_method: ties"),
        ("della", "merge_method: della"),
        ("della_linear", "merge_method: della_linear\nparameters: {rescale: false}"),
        ("della_dropped", "merge_method: della"),
    ]

    static func config(_ method: String, models root: String) throws -> MergeConfig {
        let body = methods.first { $0.0 == method }!.1
        if method == "linear" {
            return try MergeConfig(yaml: """
                models:
                  - {model: \(root)/base, parameters: {weight: 0.6}}
                  - {model: \(root)/ft1, parameters: {weight: 0.3}}
                  - {model: \(root)/ft2, parameters: {weight: 0.1}}
                \(body)
                """, path: root + "/linear.yml")
        }
        let gamma = method.hasPrefix("breadcrumbs") ? ["", ", gamma: 0.05", ", gamma: 0.02", ", gamma: 0.1"] : ["", "", "", ""]
        let yaml = """
        models:
          - {model: \(root)/ft1, parameters: {weight: 0.5, density: 0.5\(gamma[1])}}
          - {model: \(root)/ft2, parameters: {weight: 0.3, density: \(method.hasSuffix("_dropped") ? 0 : 0.3)\(gamma[2])}}
          - {model: \(root)/ft3, parameters: {weight: -0.2, density: 0.7\(gamma[3])}}
        base_model: \(root)/base
        \(body)
        """
        return try MergeConfig(yaml: yaml, path: root + "/\(method).yml")
    }

    static func merge(_ config: MergeConfig, chunkElements: Int, threads: Int) throws -> [UInt8] {
        let out = temporaryFolder("chunked-out") + "/out"
        let plan = try MergePlan(config: config, seed: 7)
        try MergeExecutor(plan: plan).run(MergeOptions(outputPath: out, overwrite: true, concurrentTensors: threads,
                                                       chunkElements: chunkElements))
        return Array(try Data(contentsOf: URL(fileURLWithPath: out + "/model.safetensors")))
    }

    /// Merging in chunks of 2¹⁶ elements, at 2 threads and at 1, gives the whole-tensor path's bytes.
    static func expectChunksGiveTheWholeTensorsBytes(_ config: MergeConfig, _ label: String) throws {
        let whole = try merge(config, chunkElements: 0, threads: 2)
        #expect(try merge(config, chunkElements: 1 << 16, threads: 2) == whole, "\(label), 2 threads")
        #expect(try merge(config, chunkElements: 1 << 16, threads: 1) == whole, "\(label), 1 thread")
    }

    @Test(arguments: methods.map(\.0), [DType.bf16, .f32])
    func chunksGiveTheWholeTensorsBytes(_ method: String, _ dtype: DType) throws {
        let config = try Self.config(method, models: try Self.models(dtype))
        try Self.expectChunksGiveTheWholeTensorsBytes(config, "\(method) \(dtype)")
    }

    /// Task vectors large exactly where the top-k cut's sample looks (512 runs of 32 at evenly spaced
    /// places) and small elsewhere: the range the sample guesses misses the cut, and the full histogram
    /// pass must find it (for one model, while the other's guess holds). Same bytes as the whole path.
    @Test(arguments: [DType.bf16, .f32])
    func cutsWhoseSampleMissesGiveTheWholeTensorsBytes(_ dtype: DType) throws {
        let root = temporaryFolder("chunked-miss-\(dtype.rawValue)")
        let (rows, hidden) = (600, 256)
        let n = rows * hidden
        var sampled = [Bool](repeating: false, count: n)
        for i in 0..<512 { let start = i * (n - 32) / 511; for j in start..<start + 32 { sampled[j] = true } }
        let infos = [TensorInfo(name: "model.embed_tokens.weight", dtype: dtype, shape: [rows, hidden]),
                     TensorInfo(name: "model.norm.weight", dtype: dtype, shape: [hidden])]
        for (m, name) in ["base", "ft1", "ft2"].enumerated() {
            let dir = root + "/" + name
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let writer = try CheckpointWriter(directory: dir, tensors: infos)
            var g = SeededGenerator(seed: UInt64(10 + m))
            let values = (0..<n).map { i -> Float in
                let b = Float(i % 97 - 48) / 1024
                if m == 0 { return b }
                // ft1: large deltas only where the sample looks; ft2: an ordinary spread.
                if m == 1 { return b + (sampled[i] ? 0.5 : Float(g.integer(below: 9) - 4) / 4096) }
                return b + Float(g.integer(below: 33) - 16) / 2048
            }
            try writer.write(infos[0].name, tensor: Tensor(values, shape: infos[0].shape))
            try writer.write(infos[1].name, tensor: Tensor([Float](repeating: 1, count: hidden), shape: [hidden]))
            try writer.finish()
            try "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": \(hidden), \"num_hidden_layers\": 0, \"vocab_size\": \(rows)}"
                .write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        }
        for method in ["ties", "breadcrumbs"] {
            let gammas = method == "breadcrumbs" ? [", gamma: 0.05", ", gamma: 0.1"] : ["", ""]
            let config = try MergeConfig(yaml: """
                models:
                  - {model: \(root)/ft1, parameters: {weight: 0.6, density: 0.4\(gammas[0])}}
                  - {model: \(root)/ft2, parameters: {weight: 0.4, density: 0.5\(gammas[1])}}
                base_model: \(root)/base
                merge_method: \(method)
                """, path: root + "/\(method).yml")
            try Self.expectChunksGiveTheWholeTensorsBytes(config, "\(method) \(dtype)")
        }
    }

    /// nearswap, ram, ramplus_tl, passthrough (with a scale), model_stock and nuslerp merge in chunks too.
    @Test(arguments: ["nearswap", "ram", "ramplus_tl", "passthrough", "model_stock", "nuslerp", "nuslerp_nobase"], [DType.bf16, .f32])
    func elementwiseMethodsChunksGiveTheWholeTensorsBytes(_ method: String, _ dtype: DType) throws {
        let root = try Self.models(dtype)
        let yaml: String
        switch method {
        case "nearswap":
            yaml = """
                models:
                  - model: \(root)/base
                  - model: \(root)/ft2
                base_model: \(root)/base
                merge_method: nearswap
                parameters: {t: 0.004}
                """
        case "nuslerp", "nuslerp_nobase":
            yaml = """
                models:
                  - {model: \(root)/ft1, parameters: {weight: 0.7}}
                  - {model: \(root)/ft3, parameters: {weight: 0.4}}
                \(method == "nuslerp" ? "base_model: \(root)/base" : "")
                merge_method: nuslerp
                """
        case "passthrough":
            yaml = """
                slices:
                  - sources:
                      - model: \(root)/ft1
                        layer_range: [0, 1]
                        parameters: {scale: 0.75}
                merge_method: passthrough
                dtype: bfloat16
                """
        default:
            yaml = """
                models:
                  - model: \(root)/ft1
                  - model: \(root)/ft2
                  - model: \(root)/ft3
                base_model: \(root)/base
                merge_method: \(method)
                \(method == "model_stock" ? "" : "parameters: {epsilon: 0.003}")
                """
        }
        let config = try MergeConfig(yaml: yaml, path: root + "/\(method).yml")
        try Self.expectChunksGiveTheWholeTensorsBytes(config, "\(method) \(dtype)")
    }

    @Test func slerpChunksGiveTheWholeTensorsBytes() throws {
        let root = try Self.models(.bf16)
        let config = try MergeConfig(yaml: """
            slices:
              - sources:
                  - model: \(root)/base
                    layer_range: [0, 1]
                  - model: \(root)/ft3
                    layer_range: [0, 1]
            merge_method: slerp
            base_model: \(root)/base
            parameters: {t: 0.3}
            """, path: root + "/slerp.yml")
        try Self.expectChunksGiveTheWholeTensorsBytes(config, "slerp")
    }

    /// karcher and multislerp (coefficients from a Gram-matrix pass), sce (a non-zero count, the top-k
    /// variance cut's passes, a pass of weights) and arcee_fusion (quantile cuts of the importances, whose
    /// rows of 640 straddle tiles in down_proj) merge in chunks too.
    @Test(arguments: ["karcher", "multislerp", "multislerp_nobase", "sce", "sce_topk", "sce_none", "arcee_fusion"], [DType.bf16, .f32])
    func gramAndSCEChunksGiveTheWholeTensorsBytes(_ method: String, _ dtype: DType) throws {
        let root = try Self.models(dtype)
        let yaml: String
        switch method {
        case "karcher":
            yaml = """
                models:
                  - model: \(root)/base
                  - model: \(root)/ft1
                  - model: \(root)/ft2
                  - model: \(root)/ft3
                merge_method: karcher
                parameters: {max_iter: 20, tol: 1e-9}
                """
        case "arcee_fusion":
            yaml = """
                models:
                  - model: \(root)/base
                  - model: \(root)/ft2
                base_model: \(root)/base
                merge_method: arcee_fusion
                """
        case "multislerp", "multislerp_nobase":
            yaml = """
                models:
                  - {model: \(root)/ft1, parameters: {weight: 0.5}}
                  - {model: \(root)/ft2, parameters: {weight: 0.3}}
                  - {model: \(root)/ft3, parameters: {weight: 0.4}}
                \(method == "multislerp" ? "base_model: \(root)/base" : "")
                merge_method: multislerp
                """
        default:
            let topk = ["sce": "1", "sce_topk": "0.4", "sce_none": "0"][method]!
            yaml = """
                models:
                  - model: \(root)/ft1
                  - model: \(root)/ft2
                  - model: \(root)/ft3
                base_model: \(root)/base
                merge_method: sce
                parameters: {select_topk: \(topk)}
                """
        }
        let config = try MergeConfig(yaml: yaml, path: root + "/\(method).yml")
        try Self.expectChunksGiveTheWholeTensorsBytes(config, "\(method) \(dtype)")
    }
}
