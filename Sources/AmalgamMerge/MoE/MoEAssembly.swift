import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// Builds a mixture-of-experts checkpoint as mergekit-moe does: every tensor outside the MLPs from the base
/// model, each layer's MLP from every expert, and a router (`mlp.gate.weight`) whose rows are the gate vectors.
/// The gate vectors are computed elsewhere (`RouterGates` in AmalgamEval, which runs the base model) and
/// handed in; this type plans the output, streams it tensor by tensor and writes it atomically.
public struct MoEAssembly: Sendable {
    public let config: MoEConfig
    public let architecture: MoEConfig.Architecture
    public let base: ModelSource
    /// The source of each expert, in `config.experts` order.
    public let experts: [ModelSource]
    /// The source of each shared expert.
    public let sharedExperts: [ModelSource]
    public let outputDType: DType
    public let layers: Int
    public let hiddenSize: Int
    public let intermediateSize: Int

    /// Where the assembly is, for a progress line.
    public struct Progress: Sendable {
        public let done: Int
        public let total: Int
        public let tensor: String
    }

    /// Opens the models the config names (relative paths against the config's folder), checks that every
    /// expert's MLP has the base's shapes and picks the output architecture.
    public init(config: MoEConfig) throws(MergeError) {
        self.config = config
        let folder = (config.path as NSString).deletingLastPathComponent
        func open(_ reference: String) throws(MergeError) -> ModelSource {
            do { return try ModelSource.open(reference, relativeTo: folder.isEmpty ? nil : folder) } catch { throw .checkpoint(error) }
        }
        base = try open(config.baseModel)
        var experts: [ModelSource] = []
        for e in config.experts { experts.append(try open(e.sourceModel)) }
        var shared: [ModelSource] = []
        for e in config.sharedExperts { shared.append(try open(e.sourceModel)) }
        self.experts = experts
        sharedExperts = shared
        let types = ([base] + experts + shared).map { $0.config.modelType ?? "(none)" }
        architecture = try config.chooseArchitecture(modelTypes: types)
        let llama: LlamaConfig
        do { llama = try base.config.llama() } catch { throw .checkpoint(error) }
        layers = llama.numHiddenLayers
        hiddenSize = llama.hiddenSize
        intermediateSize = llama.intermediateSize
        outputDType = config.dtype ?? base.config.dtype ?? .f32
        for (i, source) in (experts + shared).enumerated() {
            for l in 0..<layers {
                for p in ["gate_proj", "up_proj", "down_proj"] {
                    let name = "model.layers.\(l).mlp.\(p).weight"
                    let want = p == "down_proj" ? [hiddenSize, intermediateSize] : [intermediateSize, hiddenSize]
                    guard let info = source.tensors.info(name) else {
                        throw .checkpoint(.tensorNotFound(path: source.path, tensor: name))
                    }
                    if info.shape != want {
                        let role = i < experts.count ? "experts[\(i)]" : "shared_experts[\(i - experts.count)]"
                        throw .config(path: config.path, key: role + ".source_model",
                                      reason: "\(source.path): \(name) is \(info.shape), the base model's MLP is \(want); every expert needs the base's layer count and sizes")
                    }
                }
            }
        }
    }

    /// The number of router rows per layer (experts, then shared experts with gates).
    public var gateRows: Int { config.gatedExperts.count }

    // MARK: - Plan

    /// One output tensor and where its values come from.
    enum Part: Sendable {
        /// A base tensor copied (converted to the output dtype).
        case base(String)
        /// Zeros (qwen2 MoE's q/k/v biases when the base has none).
        case zeros
        /// The router of a layer: rows `range` of the gate vectors.
        case router(layer: Int, rows: Range<Int>)
        /// Expert MLP tensors laid end to end: (source index, expert settings, tensor name).
        case experts([(source: Int, tensor: String)])
    }

    struct PlannedTensor: Sendable {
        let info: TensorInfo
        let part: Part
    }

    /// Every output tensor in write order.
    func plan() -> [PlannedTensor] {
        var out: [PlannedTensor] = []
        let H = hiddenSize, I = intermediateSize, E = experts.count
        for info in base.tensors.tensorInfos where !info.name.contains(".mlp.") {
            out.append(PlannedTensor(info: TensorInfo(name: info.name, dtype: outputDType, shape: info.shape), part: .base(info.name)))
        }
        if architecture == .qwen2MoE, let llama = try? base.config.llama() {
            let headDim = llama.hiddenSize / llama.numAttentionHeads  // as mergekit sizes the biases it adds
            for l in 0..<layers {
                for (p, heads) in [("q_proj", llama.numAttentionHeads), ("k_proj", llama.numKeyValueHeads), ("v_proj", llama.numKeyValueHeads)] {
                    let name = "model.layers.\(l).self_attn.\(p).bias"
                    if base.tensors.info(name) == nil {
                        out.append(PlannedTensor(info: TensorInfo(name: name, dtype: outputDType, shape: [heads * headDim]), part: .zeros))
                    }
                }
            }
        }
        let shared = E  // source index of the first shared expert
        for l in 0..<layers {
            let mlp = "model.layers.\(l).mlp."
            func t(_ p: String) -> String { mlp + p + ".weight" }
            switch architecture {
            case .mixtral, .qwen3MoE:
                // transformers 5's fused layout: gate_up_proj [E, 2I, H] (each expert's gate rows, then its up
                // rows), down_proj [E, H, I].
                out.append(PlannedTensor(info: TensorInfo(name: mlp + "experts.gate_up_proj", dtype: outputDType, shape: [E, 2 * I, H]),
                                         part: .experts((0..<E).flatMap { [($0, t("gate_proj")), ($0, t("up_proj"))] })))
                out.append(PlannedTensor(info: TensorInfo(name: mlp + "experts.down_proj", dtype: outputDType, shape: [E, H, I]),
                                         part: .experts((0..<E).map { ($0, t("down_proj")) })))
                out.append(PlannedTensor(info: TensorInfo(name: mlp + "gate.weight", dtype: outputDType, shape: [E, H]),
                                         part: .router(layer: l, rows: 0..<E)))
            case .qwen2MoE:
                for e in 0..<E {
                    for p in ["gate_proj", "up_proj", "down_proj"] {
                        let shape = p == "down_proj" ? [H, I] : [I, H]
                        out.append(PlannedTensor(info: TensorInfo(name: mlp + "experts.\(e).\(p).weight", dtype: outputDType, shape: shape),
                                                 part: .experts([(e, t(p))])))
                    }
                }
                for p in ["gate_proj", "up_proj", "down_proj"] {
                    let shape = p == "down_proj" ? [H, I] : [I, H]
                    out.append(PlannedTensor(info: TensorInfo(name: mlp + "shared_expert.\(p).weight", dtype: outputDType, shape: shape),
                                             part: .experts([(shared, t(p))])))
                }
                out.append(PlannedTensor(info: TensorInfo(name: mlp + "gate.weight", dtype: outputDType, shape: [E, H]),
                                         part: .router(layer: l, rows: 0..<E)))
                out.append(PlannedTensor(info: TensorInfo(name: mlp + "shared_expert_gate.weight", dtype: outputDType, shape: [1, H]),
                                         part: .router(layer: l, rows: E..<(E + 1))))
            }
        }
        return out
    }

    // MARK: - Write

    /// Writes the MoE model into `output` (a folder that appears only when complete): config.json, the
    /// weights (sharded above `maxShardSize`), the base's tokenizer (padding on the left, pad = BOS, as
    /// mergekit-moe saves it) and the config as `mergekit_moe_config.yml`.
    ///
    /// `gates[layer]` holds `gateRows` rows of `hiddenSize` values. `seed` drives `noise_scale`'s draws
    /// (one stream per output tensor and expert). `durability`: what the finished folder survives (see `Durability`).
    public func write(to output: String, gates: [[Float]], configText: String, seed: UInt64, overwrite: Bool,
                      maxShardSize: Int = 5_000_000_000, durability: Durability = .machine, progress: (Progress) -> Void = { _ in }) throws(MergeError) {
        guard gates.count == layers, gates.allSatisfy({ $0.count == gateRows * hiddenSize }) else {
            throw .config(path: config.path, key: "(gates)", reason: "expected \(layers) layers of \(gateRows)×\(hiddenSize) gate values")
        }
        let out: AtomicOutput
        do {
            out = try AtomicOutput(path: output, overwrite: overwrite)
            try out.makeWorkingDirectory()
        } catch { throw .config(path: output, key: "(output)", reason: "\(error)") }
        do {
            try writeFolder(out.workingPath, gates: gates, configText: configText, seed: seed, maxShardSize: maxShardSize, durability: durability, progress: progress)
            try out.commit()
        } catch let error as MergeError {
            out.abandon()
            throw error
        } catch let error as CheckpointError {
            out.abandon()
            throw .checkpoint(error)
        } catch {
            out.abandon()
            throw .config(path: output, key: "(output)", reason: "\(error)")
        }
    }

    private func writeFolder(_ folder: String, gates: [[Float]], configText: String, seed: UInt64, maxShardSize: Int, durability: Durability,
                             progress: (Progress) -> Void) throws {
        let planned = plan()
        let writer = try CheckpointWriter(directory: folder, tensors: planned.map(\.info), maxShardSize: maxShardSize, durability: durability)
        let sources = experts + sharedExperts
        let settings = config.experts + config.sharedExperts
        let H = hiddenSize
        for (i, p) in planned.enumerated() {
            switch p.part {
            case let .base(name):
                try writer.write(p.info.name, tensor: try base.tensors.tensor(name).converted(to: outputDType))
                base.tensors.release(name)
            case .zeros:
                try writer.write(p.info.name, tensor: Tensor(zeros: outputDType, shape: p.info.shape))
            case let .router(layer, rows):
                let values = Array(gates[layer][(rows.lowerBound * H)..<(rows.upperBound * H)])
                try writer.write(p.info.name, tensor: Tensor(values, shape: p.info.shape).converted(to: outputDType))
            case let .experts(pieces):
                var offset = 0
                for (k, piece) in pieces.enumerated() {
                    let source = sources[piece.source], expert = settings[piece.source]
                    var tensor = try source.tensors.tensor(piece.tensor)
                    if expert.noiseScale != nil || (expert.residualScale != nil && piece.tensor.hasSuffix("down_proj.weight")) {
                        var values = tensor.floats()
                        if let scale = expert.noiseScale {
                            var rng = SeededGenerator(seed: SeedDerivation.seed(SeedDerivation.seed(run: seed, tensor: p.info.name), stream: k))
                            values.withUnsafeMutableBufferPointer { rng.addNormals(scale: Float(scale), to: $0) }
                        }
                        if let scale = expert.residualScale, piece.tensor.hasSuffix("down_proj.weight") {
                            for j in values.indices { values[j] *= Float(scale) }
                        }
                        tensor = Tensor(values, shape: tensor.shape)
                    }
                    let converted = tensor.converted(to: outputDType)
                    try converted.withUnsafeBytes { (bytes) throws(CheckpointError) in
                        try writer.write(p.info.name, bytes: bytes, at: offset)
                    }
                    offset += converted.byteCount
                    source.tensors.release(piece.tensor)
                }
            }
            progress(Progress(done: i + 1, total: planned.count, tensor: p.info.name))
        }
        try writer.finish()
        try writeFileAtomically(JSONValue.object(outputConfig()).pythonText() + "\n", to: folder + "/config.json")
        try writeTokenizer(into: folder)
        try writeFileAtomically(configText, to: folder + "/mergekit_moe_config.yml")
    }

    /// config.json: the base's, turned into the output architecture's (the keys mergekit-moe sets).
    func outputConfig() -> JSONObject {
        var c = base.config.raw
        let E = experts.count
        switch architecture {
        case .mixtral:
            c["architectures"] = .array([.string("MixtralForCausalLM")])
            c["model_type"] = .string("mixtral")
            c["num_local_experts"] = .int(E)
            c["num_experts_per_tok"] = .int(config.expertsPerToken)
            c["sliding_window"] = .null
            c["router_aux_loss_coef"] = .double(0.001)
            c["router_jitter_noise"] = .double(0.0)
            c["output_router_logits"] = .bool(false)
        case .qwen2MoE:
            c["architectures"] = .array([.string("Qwen2MoeForCausalLM")])
            c["model_type"] = .string("qwen2_moe")
            c["num_experts"] = .int(E)
            c["num_experts_per_tok"] = .int(config.expertsPerToken)
            c["decoder_sparse_step"] = .int(1)
            c["norm_topk_prob"] = .bool(true)
            c["sliding_window"] = .null
            c["use_sliding_window"] = .bool(false)
            c["shared_expert_intermediate_size"] = .int(intermediateSize)
            c["moe_intermediate_size"] = .int(intermediateSize)
            c["mlp_only_layers"] = .array([])
            c["router_aux_loss_coef"] = .double(0.001)
            c["output_router_logits"] = .bool(false)
            // Qwen2MoeConfig's defaults, which mergekit's saved config spells out.
            c["qkv_bias"] = .bool(true)
            if c["max_window_layers"] == nil { c["max_window_layers"] = .int(28) }
            if c["layer_types"] == nil { c["layer_types"] = .array(Array(repeating: .string("full_attention"), count: layers)) }
        case .qwen3MoE:
            c["architectures"] = .array([.string("Qwen3MoeForCausalLM")])
            c["model_type"] = .string("qwen3_moe")
            c["num_local_experts"] = .int(E)  // transformers 5 serialises Qwen3MoeConfig's expert count so
            c["num_experts_per_tok"] = .int(config.expertsPerToken)
            c["decoder_sparse_step"] = .int(1)
            c["norm_topk_prob"] = .bool(true)
            c["moe_intermediate_size"] = .int(intermediateSize)
            c["mlp_only_layers"] = .array([])
            c["router_aux_loss_coef"] = .double(0.001)
            c["output_router_logits"] = .bool(false)
        }
        c[c["torch_dtype"] != nil && c["dtype"] == nil ? "torch_dtype" : "dtype"] = .string(outputDType.torchName)
        return c
    }

    /// The base's tokenizer and generation files; tokenizer_config.json gets `padding_side: left` and the BOS
    /// token as pad token (the EOS token when there is no BOS), as mergekit-moe saves the tokenizer.
    private func writeTokenizer(into folder: String) throws {
        try base.writeCompanions(into: folder, skipping: ["tokenizer_config.json", "config.json"])
        guard let text = base.companionText("tokenizer_config.json"), var tc = try JSONValue.parse(text).objectValue else { return }
        tc["padding_side"] = .string("left")
        if let pad = tc["bos_token"] ?? tc["eos_token"], !pad.isNull { tc["pad_token"] = pad }
        try writeFileAtomically(JSONValue.object(tc).pythonText(indent: 2, sortKeys: false) + "\n", to: folder + "/tokenizer_config.json")
    }
}
