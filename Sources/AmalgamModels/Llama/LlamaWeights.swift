import AmalgamCheckpoint
import AmalgamCore

/// One decoder layer's weights, named as transformers names them under `model.layers.{i}.`.
struct LlamaLayerWeights: Sendable {
    var inputNorm: [Float]?                // input_layernorm.weight [C], before attention (not OLMo-2)
    var q, k, v, o: WeightMatrix           // self_attn.{q,k,v,o}_proj.weight [out × in] (Phi-3: rows of qkv_proj)
    var qBias, kBias, vBias, oBias: FloatBuffer?  // present for qwen2 and attention_bias models
    var qNorm, kNorm: [Float]?             // self_attn.{q,k}_norm.weight: [D] per head (qwen3, gemma3), [H·D] (olmo2)
    var postNorm: [Float]?                 // the norm before the MLP: post_attention_layernorm (Llama), pre_feedforward_layernorm (Gemma)
    var attentionOutputNorm: [Float]?      // a norm on the attention output (Gemma, OLMo-2: post_attention_layernorm)
    var mlpOutputNorm: [Float]?            // a norm on the MLP output (post_feedforward_layernorm)
    var gate: WeightMatrix?                // mlp.gate_proj.weight (Phi-3: rows of gate_up_proj; GPT-2: c_fc); nil in an MoE layer
    var up: WeightMatrix?                  // mlp.up_proj.weight; nil for a plain MLP (GPT-2) and an MoE layer
    var down: WeightMatrix?                // mlp.down_proj.weight (GPT-2: c_proj); nil in an MoE layer
    var gateBias, upBias, downBias: FloatBuffer?  // mlp_bias models
    var window: Int?                       // sliding window of this layer, if any
    var inputNormBias: [Float]? = nil      // LayerNorm biases (GPT-2's ln_1, ln_2)
    var postNormBias: [Float]? = nil
    var moe: MoEWeights? = nil             // the sparse MLP of an MoE layer (mixtral, qwen2_moe, qwen3_moe)
}

/// A SwiGLU MLP's three matrices.
struct SwiGLUWeights: Sendable {
    var gate, up, down: WeightMatrix
}

/// A sparse MoE MLP: a router choosing `topK` experts per token (softmax, then the top k, renormalised
/// over them when `renormalize`), and for Qwen2-MoE a shared expert scaled by sigmoid(sharedGate · x).
struct MoEWeights: Sendable {
    var router: WeightMatrix               // mlp.gate.weight / block_sparse_moe.gate.weight [E × C]
    var experts: [SwiGLUWeights]
    var topK: Int
    var renormalize: Bool
    var shared: SwiGLUWeights?             // mlp.shared_expert.{gate,up,down}_proj
    var sharedGate: [Float]?               // mlp.shared_expert_gate.weight [1 × C]
}

/// Everything a decoder reads from its checkpoint, checked against the config.
struct LlamaWeights: Sendable {
    var embed: WeightMatrix                // model.embed_tokens.weight [V × C]
    var layers: [LlamaLayerWeights]
    var norm: [Float]                      // model.norm.weight [C] (norm offset applied)
    var lmHead: WeightMatrix               // lm_head.weight [V × C], or the embedding when tied
    var positions: WeightMatrix? = nil     // GPT-2's learned positions wpe [n_positions × C]
    var normBias: [Float]? = nil           // GPT-2's ln_f.bias

    init(config: LlamaConfig, raw: ModelConfig, family: DecoderFamily, source: TensorSource,
         precision: WeightPrecision?) throws(ModelError) {
        if family.conv1D {
            try self.init(gpt2: config, source: source, precision: precision)
        } else {
            try self.init(decoder: config, raw: raw, family: family, source: source, precision: precision)
        }
    }

    /// GPT-2: `transformer.` (or un-prefixed) wte, wpe, h.{i}.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc,
    /// mlp.c_proj}, ln_f; Conv1D weights [in × out] are read transposed, c_attn split into q, k, v.
    init(gpt2 config: LlamaConfig, source: TensorSource, precision: WeightPrecision?) throws(ModelError) {
        let C = config.hiddenSize, I = config.intermediateSize, V = config.vocabSize
        let p0 = source.info("transformer.wte.weight") != nil ? "transformer." : ""
        func vector(_ name: String, _ count: Int) throws(ModelError) -> [Float] { try loadVector(source, p0 + name, count: count) }
        func conv(_ name: String, inputs: Int, parts: [Int]) throws(ModelError) -> [WeightMatrix] {
            try loadConv1DRows(source, p0 + name, inputs: inputs, parts: parts, precision: precision)
        }
        embed = try loadMatrix(source, p0 + "wte.weight", rows: V, cols: C, precision: precision)
        positions = try loadMatrix(source, p0 + "wpe.weight", rows: config.maxPositionEmbeddings, cols: C, precision: precision)
        norm = try vector("ln_f.weight", C)
        normBias = try vector("ln_f.bias", C)
        if config.tieWordEmbeddings {
            lmHead = embed
        } else {
            lmHead = try loadMatrix(source, "lm_head.weight", rows: V, cols: C, precision: precision)
        }
        var layers: [LlamaLayerWeights] = []
        for i in 0..<config.numHiddenLayers {
            let p = "h.\(i)."
            let qkv = try conv(p + "attn.c_attn.weight", inputs: C, parts: [C, C, C])
            let b = try vector(p + "attn.c_attn.bias", 3 * C)
            layers.append(LlamaLayerWeights(
                inputNorm: try vector(p + "ln_1.weight", C),
                q: qkv[0], k: qkv[1], v: qkv[2],
                o: try conv(p + "attn.c_proj.weight", inputs: C, parts: [C])[0],
                qBias: FloatBuffer(Array(b[0..<C])), kBias: FloatBuffer(Array(b[C..<(2 * C)])),
                vBias: FloatBuffer(Array(b[(2 * C)...])),
                oBias: FloatBuffer(try vector(p + "attn.c_proj.bias", C)),
                qNorm: nil, kNorm: nil,
                postNorm: try vector(p + "ln_2.weight", C),
                attentionOutputNorm: nil, mlpOutputNorm: nil,
                gate: try conv(p + "mlp.c_fc.weight", inputs: C, parts: [I])[0] as WeightMatrix?,
                up: nil,
                down: try conv(p + "mlp.c_proj.weight", inputs: I, parts: [C])[0],
                gateBias: FloatBuffer(try vector(p + "mlp.c_fc.bias", I)), upBias: nil,
                downBias: FloatBuffer(try vector(p + "mlp.c_proj.bias", C)),
                window: nil,
                inputNormBias: try vector(p + "ln_1.bias", C),
                postNormBias: try vector(p + "ln_2.bias", C)))
        }
        self.layers = layers
    }

    /// Every family but GPT-2: `model.embed_tokens`, `model.layers.{i}.…`, `model.norm`, `lm_head`.
    init(decoder config: LlamaConfig, raw: ModelConfig, family: DecoderFamily, source: TensorSource,
         precision: WeightPrecision?) throws(ModelError) {
        let C = config.hiddenSize, I = config.intermediateSize, V = config.vocabSize, D = config.headDim
        let qDim = config.numAttentionHeads * D
        let kvDim = config.numKeyValueHeads * D
        let prefix = family.tensorPrefix
        func optional(_ name: String, _ count: Int) throws(ModelError) -> FloatBuffer? {
            source.info(prefix + name) == nil ? nil : FloatBuffer(try loadVector(source, prefix + name, count: count))
        }
        func norm(_ name: String, _ count: Int) throws(ModelError) -> [Float] {
            let w = try loadVector(source, prefix + name, count: count)
            return family.normOffset == 0 ? w : w.map { $0 + family.normOffset }
        }
        func matrix(_ name: String, rows: Int, cols: Int) throws(ModelError) -> WeightMatrix {
            try loadMatrix(source, prefix + name, rows: rows, cols: cols, precision: precision)
        }
        embed = try matrix("model.embed_tokens.weight", rows: V, cols: C)
        self.norm = try norm("model.norm.weight", C)
        if source.info(prefix + "lm_head.weight") != nil && !config.tieWordEmbeddings {
            lmHead = try matrix("lm_head.weight", rows: V, cols: C)
        } else if config.tieWordEmbeddings {
            lmHead = embed
        } else {
            throw .missingTensor(path: source.path, tensor: prefix + "lm_head.weight")
        }
        let windows = try LlamaWeights.layerWindows(config: config, raw: raw)
        let moeLayers = try LlamaWeights.moeLayers(config: config, raw: raw)
        var layers: [LlamaLayerWeights] = []
        for i in 0..<config.numHiddenLayers {
            let p = "model.layers.\(i)."
            let a = p + "self_attn.", m = p + "mlp."
            let q, k, v: WeightMatrix
            let gate, up, down: WeightMatrix?
            var moe: MoEWeights? = nil
            if let spec = moeLayers[i] {
                q = try matrix(a + "q_proj.weight", rows: qDim, cols: C)
                k = try matrix(a + "k_proj.weight", rows: kvDim, cols: C)
                v = try matrix(a + "v_proj.weight", rows: kvDim, cols: C)
                func swiglu(_ p: String, _ names: (String, String, String), width: Int) throws(ModelError) -> SwiGLUWeights {
                    SwiGLUWeights(gate: try matrix(p + names.0 + ".weight", rows: width, cols: C),
                                  up: try matrix(p + names.1 + ".weight", rows: width, cols: C),
                                  down: try matrix(p + names.2 + ".weight", rows: C, cols: width))
                }
                // Mixtral's router and experts under `block_sparse_moe.` (as transformers saves them) or
                // `mlp.` (as mergekit writes them); the experts per expert, or fused as transformers 5 holds
                // them in memory: gate_up_proj [E, 2·width, C] (each expert's gate rows, then up), down_proj [E, C, width].
                let mixtral = config.modelType == "mixtral"
                let block = mixtral && source.info(prefix + p + "block_sparse_moe.gate.weight") != nil ? p + "block_sparse_moe." : m
                let names = mixtral ? ("w1", "w3", "w2") : ("gate_proj", "up_proj", "down_proj")
                var experts: [SwiGLUWeights] = []
                if source.info(prefix + block + "experts.gate_up_proj") != nil {
                    let E = spec.experts, w = spec.width
                    let gateUp = try loadMatrixRows(source, prefix + block + "experts.gate_up_proj", parts: Array(repeating: w, count: 2 * E), cols: C,
                                                    precision: precision, shape: [E, 2 * w, C])
                    let down = try loadMatrixRows(source, prefix + block + "experts.down_proj", parts: Array(repeating: C, count: E), cols: w,
                                                  precision: precision, shape: [E, C, w])
                    for e in 0..<E { experts.append(SwiGLUWeights(gate: gateUp[2 * e], up: gateUp[2 * e + 1], down: down[e])) }
                } else {
                    for e in 0..<spec.experts { experts.append(try swiglu(block + "experts.\(e).", names, width: spec.width)) }
                }
                let shared = try spec.sharedWidth.map { w throws(ModelError) in try swiglu(m + "shared_expert.", ("gate_proj", "up_proj", "down_proj"), width: w) }
                var sharedGate: [Float]? = nil
                if spec.sharedWidth != nil {
                    sharedGate = try loadMatrix(source, prefix + m + "shared_expert_gate.weight", rows: 1, cols: C, precision: .f32).tensor.floats()
                }
                moe = MoEWeights(router: try matrix(block + "gate.weight", rows: spec.experts, cols: C), experts: experts,
                                 topK: spec.topK, renormalize: spec.renormalize, shared: shared, sharedGate: sharedGate)
                gate = nil
                up = nil
                down = nil
            } else if family.fusedProjections {
                let qkv = [qDim, kvDim, kvDim]
                let parts = try loadMatrixRows(source, prefix + a + "qkv_proj.weight", parts: qkv, cols: C, precision: precision)
                (q, k, v) = (parts[0], parts[1], parts[2])
                let mlp = try loadMatrixRows(source, prefix + m + "gate_up_proj.weight", parts: [I, I], cols: C, precision: precision)
                gate = mlp[0]
                up = mlp[1]
                down = try matrix(m + "down_proj.weight", rows: C, cols: I)
            } else {
                q = try matrix(a + "q_proj.weight", rows: qDim, cols: C)
                k = try matrix(a + "k_proj.weight", rows: kvDim, cols: C)
                v = try matrix(a + "v_proj.weight", rows: kvDim, cols: C)
                gate = try matrix(m + "gate_proj.weight", rows: I, cols: C)
                up = try matrix(m + "up_proj.weight", rows: I, cols: C)
                down = try matrix(m + "down_proj.weight", rows: C, cols: I)
            }
            let qkNormWidths: (Int, Int)? = switch family.qkNorm {
            case .none: nil
            case .perHead: (D, D)
            case .fullWidth: (qDim, kvDim)
            }
            layers.append(LlamaLayerWeights(
                inputNorm: try family.attentionInputNorm.map { name throws(ModelError) in try norm(p + name + ".weight", C) },
                q: q, k: k, v: v,
                o: try matrix(a + "o_proj.weight", rows: C, cols: qDim),
                qBias: try optional(a + "q_proj.bias", qDim),
                kBias: try optional(a + "k_proj.bias", kvDim),
                vBias: try optional(a + "v_proj.bias", kvDim),
                oBias: try optional(a + "o_proj.bias", C),
                qNorm: try qkNormWidths.map { w throws(ModelError) in try norm(a + "q_norm.weight", w.0) },
                kNorm: try qkNormWidths.map { w throws(ModelError) in try norm(a + "k_norm.weight", w.1) },
                postNorm: try family.mlpInputNorm.map { name throws(ModelError) in try norm(p + name + ".weight", C) },
                attentionOutputNorm: try family.attentionOutputNorm.map { name throws(ModelError) in try norm(p + name + ".weight", C) },
                mlpOutputNorm: try family.mlpOutputNorm.map { name throws(ModelError) in try norm(p + name + ".weight", C) },
                gate: gate, up: up, down: down,
                gateBias: try optional(m + "gate_proj.bias", I),
                upBias: try optional(m + "up_proj.bias", I),
                downBias: try optional(m + "down_proj.bias", C),
                window: windows[i], moe: moe))
        }
        self.layers = layers
    }

    /// Which layers are sparse MoE and how: every layer of mixtral (`num_local_experts` experts of
    /// `intermediate_size`, renormalised top-k); for qwen2_moe/qwen3_moe layer i when i ∉ `mlp_only_layers`
    /// and (i + 1) % `decoder_sparse_step` == 0 (`num_experts` or `num_local_experts` experts of
    /// `moe_intermediate_size`, renormalised when `norm_topk_prob`; qwen2_moe adds its shared expert).
    struct MoESpec { var experts, topK, width: Int; var renormalize: Bool; var sharedWidth: Int? }

    static func moeLayers(config: LlamaConfig, raw: ModelConfig) throws(ModelError) -> [MoESpec?] {
        let n = config.numHiddenLayers
        guard ["mixtral", "qwen2_moe", "qwen3_moe"].contains(config.modelType) else { return Array(repeating: nil, count: n) }
        let m = raw.fields(as: ModelError.self)
        guard let experts = try m.value(anyOf: "num_experts", "num_local_experts")?.int(minimum: 1) else {
            throw .unsupportedConfig(path: raw.path, key: "num_experts", reason: "missing; an MoE config.json needs num_experts or num_local_experts")
        }
        let topK = try m.int("num_experts_per_tok") ?? 2
        guard topK > 0, topK <= experts else {
            throw .unsupportedConfig(path: raw.path, key: "num_experts_per_tok", reason: "\(topK) must be in 1...\(experts)")
        }
        if config.modelType == "mixtral" {
            return Array(repeating: MoESpec(experts: experts, topK: topK, width: config.intermediateSize, renormalize: true, sharedWidth: nil), count: n)
        }
        let width = try m.int("moe_intermediate_size") ?? config.intermediateSize
        let step = try m.int("decoder_sparse_step") ?? 1
        var dense = Set<Int>()
        for item in try m.value("mlp_only_layers")?.items() ?? [] { dense.insert(try item.int()) }
        let renormalize = try m.bool("norm_topk_prob") ?? false
        let shared = config.modelType == "qwen2_moe" ? try m.int("shared_expert_intermediate_size") : nil
        return (0..<n).map { i in
            !dense.contains(i) && step > 0 && (i + 1) % step == 0
                ? MoESpec(experts: experts, topK: topK, width: width, renormalize: renormalize, sharedWidth: shared) : nil
        }
    }

    /// The sliding window of each layer, as transformers decides it: `layer_types` when the config has
    /// it; otherwise every layer for mistral, and layers ≥ `max_window_layers` for qwen2/qwen3 with
    /// `use_sliding_window`; Gemma's own patterns; every layer for phi3 and mixtral.
    static func layerWindows(config: LlamaConfig, raw: ModelConfig) throws(ModelError) -> [Int?] {
        let n = config.numHiddenLayers
        guard let window = config.slidingWindow else { return Array(repeating: nil, count: n) }
        let m = raw.fields(as: ModelError.self)
        if let types = try m.strings("layer_types") {
            guard types.count == n else {
                throw .unsupportedConfig(path: raw.path, key: "layer_types", reason: "has \(types.count) entries for \(n) layers")
            }
            return types.map { $0 == "sliding_attention" ? window : nil }
        }
        switch config.modelType {
        case "gemma2":  // alternating, the first layer sliding
            return (0..<n).map { ($0 + 1) % 2 != 0 ? window : nil }
        case "gemma3_text":  // every `sliding_window_pattern`-th layer global
            let pattern = try m.value(anyOf: "sliding_window_pattern", "_sliding_window_pattern")?.int(minimum: 1) ?? 6
            return (0..<n).map { ($0 + 1) % pattern != 0 ? window : nil }
        case "olmo2", "granite":
            return Array(repeating: nil, count: n)
        case "mistral":
            return Array(repeating: window, count: n)
        case "qwen2", "qwen3", "qwen2_moe", "qwen3_moe":
            guard try m.bool("use_sliding_window") == true else { return Array(repeating: nil, count: n) }
            let first = try m.int("max_window_layers") ?? n
            return (0..<n).map { $0 >= first ? window : nil }
        default:
            return Array(repeating: window, count: n)
        }
    }
}

/// A fused weight [Σ parts × cols] (Phi-3's qkv_proj, gate_up_proj) as one matrix per row range, each a
/// copy of its rows held as `precision` asks (nil: as stored). Throws naming the tensor if its shape is wrong
/// (`shape`, when given, is the stored shape, e.g. fused experts [E, rows/E, cols]).
func loadMatrixRows(_ source: TensorSource, _ name: String, parts: [Int], cols: Int,
                    precision: WeightPrecision?, shape: [Int]? = nil) throws(ModelError) -> [WeightMatrix] {
    let tensor = try loadTensor(source, name)
    let rows = parts.reduce(0, +)
    let expected = shape ?? [rows, cols]
    guard tensor.shape == expected, Tensor.elementCount(expected) == rows * cols else {
        throw .shapeMismatch(path: source.path, tensor: name, expected: expected, actual: tensor.shape)
    }
    guard [.f32, .bf16, .f16].contains(tensor.dtype) else { throw .unsupportedDType(path: source.path, tensor: name, dtype: tensor.dtype) }
    let rowBytes = cols * tensor.dtype.byteSize
    var first = 0
    var out: [WeightMatrix] = []
    for count in parts {
        let storage = TensorStorage(zeroedByteCount: count * rowBytes)
        storage.mutableBase!.copyMemory(from: tensor.storage.base! + first * rowBytes, byteCount: count * rowBytes)
        var part = Tensor(dtype: tensor.dtype, shape: [count, cols], storage: storage)
        switch precision {
        case .bf16 where part.dtype != .bf16: part = part.converted(to: .bf16)
        case .f32 where part.dtype != .f32: part = part.converted(to: .f32)
        default: break
        }
        out.append(try WeightMatrix(part, name: name, path: source.path, rows: count, cols: cols))
        first += count
    }
    return out
}

/// A Conv1D weight [inputs × Σ parts] (GPT-2: y = x·W + b) as one `nn.Linear`-layout matrix
/// [part × inputs] per column range, transposed into a copy in the stored dtype (or as `precision` asks).
func loadConv1DRows(_ source: TensorSource, _ name: String, inputs: Int, parts: [Int],
                    precision: WeightPrecision?) throws(ModelError) -> [WeightMatrix] {
    let tensor = try loadTensor(source, name)
    let outputs = parts.reduce(0, +)
    guard tensor.shape == [inputs, outputs] else {
        throw .shapeMismatch(path: source.path, tensor: name, expected: [inputs, outputs], actual: tensor.shape)
    }
    guard [.f32, .bf16, .f16].contains(tensor.dtype) else { throw .unsupportedDType(path: source.path, tensor: name, dtype: tensor.dtype) }
    let w = tensor.floats()
    let target: DType = switch precision {
    case .f32: .f32
    case .bf16: .bf16
    default: tensor.dtype
    }
    var first = 0
    var out: [WeightMatrix] = []
    for count in parts {
        var t = [Float](repeating: 0, count: count * inputs)
        for r in 0..<count {
            for c in 0..<inputs { t[r * inputs + c] = w[c * outputs + first + r] }
        }
        var part = Tensor(t, shape: [count, inputs])
        if target != .f32 { part = part.converted(to: target) }
        out.append(try WeightMatrix(part, name: name, path: source.path, rows: count, cols: inputs))
        first += count
    }
    return out
}
