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
    var gate, up, down: WeightMatrix       // mlp.{gate,up,down}_proj.weight (Phi-3: rows of gate_up_proj)
    var gateBias, upBias, downBias: FloatBuffer?  // mlp_bias models
    var window: Int?                       // sliding window of this layer, if any
}

/// Everything a decoder reads from its checkpoint, checked against the config.
struct LlamaWeights: Sendable {
    var embed: WeightMatrix                // model.embed_tokens.weight [V × C]
    var layers: [LlamaLayerWeights]
    var norm: [Float]                      // model.norm.weight [C] (norm offset applied)
    var lmHead: WeightMatrix               // lm_head.weight [V × C], or the embedding when tied

    init(config: LlamaConfig, raw: ModelConfig, family: DecoderFamily, source: TensorSource,
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
        var layers: [LlamaLayerWeights] = []
        for i in 0..<config.numHiddenLayers {
            let p = "model.layers.\(i)."
            let a = p + "self_attn.", m = p + "mlp."
            let q, k, v, gate, up: WeightMatrix
            if family.fusedProjections {
                let qkv = [qDim, kvDim, kvDim]
                let parts = try loadMatrixRows(source, prefix + a + "qkv_proj.weight", parts: qkv, cols: C, precision: precision)
                (q, k, v) = (parts[0], parts[1], parts[2])
                let mlp = try loadMatrixRows(source, prefix + m + "gate_up_proj.weight", parts: [I, I], cols: C, precision: precision)
                (gate, up) = (mlp[0], mlp[1])
            } else {
                q = try matrix(a + "q_proj.weight", rows: qDim, cols: C)
                k = try matrix(a + "k_proj.weight", rows: kvDim, cols: C)
                v = try matrix(a + "v_proj.weight", rows: kvDim, cols: C)
                gate = try matrix(m + "gate_proj.weight", rows: I, cols: C)
                up = try matrix(m + "up_proj.weight", rows: I, cols: C)
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
                gate: gate, up: up,
                down: try matrix(m + "down_proj.weight", rows: C, cols: I),
                gateBias: try optional(m + "gate_proj.bias", I),
                upBias: try optional(m + "up_proj.bias", I),
                downBias: try optional(m + "down_proj.bias", C),
                window: windows[i]))
        }
        self.layers = layers
    }

    /// The sliding window of each layer, as transformers decides it: `layer_types` when the config has
    /// it; otherwise every layer for mistral, and layers ≥ `max_window_layers` for qwen2/qwen3 with
    /// `use_sliding_window`; Gemma's own patterns; every layer for phi3 and mixtral.
    static func layerWindows(config: LlamaConfig, raw: ModelConfig) throws(ModelError) -> [Int?] {
        let n = config.numHiddenLayers
        guard let window = config.slidingWindow else { return Array(repeating: nil, count: n) }
        if let types = raw.raw["layer_types"]?.arrayValue {
            guard types.count == n else {
                throw .unsupportedConfig(path: raw.path, key: "layer_types", reason: "has \(types.count) entries for \(n) layers")
            }
            return types.map { $0.stringValue == "sliding_attention" ? window : nil }
        }
        switch config.modelType {
        case "gemma2":  // alternating, the first layer sliding
            return (0..<n).map { ($0 + 1) % 2 != 0 ? window : nil }
        case "gemma3_text":  // every `sliding_window_pattern`-th layer global
            let pattern = (raw.raw["sliding_window_pattern"] ?? raw.raw["_sliding_window_pattern"])?.intValue ?? 6
            return (0..<n).map { ($0 + 1) % pattern != 0 ? window : nil }
        case "olmo2", "granite":
            return Array(repeating: nil, count: n)
        case "mistral":
            return Array(repeating: window, count: n)
        case "qwen2", "qwen3":
            guard raw.raw["use_sliding_window"]?.boolValue == true else { return Array(repeating: nil, count: n) }
            let first = raw.raw["max_window_layers"]?.intValue ?? n
            return (0..<n).map { $0 >= first ? window : nil }
        default:
            return Array(repeating: window, count: n)
        }
    }
}

/// A fused weight [Σ parts × cols] (Phi-3's qkv_proj, gate_up_proj) as one matrix per row range, each a
/// copy of its rows held as `precision` asks (nil: as stored). Throws naming the tensor if its shape is wrong.
func loadMatrixRows(_ source: TensorSource, _ name: String, parts: [Int], cols: Int,
                    precision: WeightPrecision?) throws(ModelError) -> [WeightMatrix] {
    let tensor = try loadTensor(source, name)
    let rows = parts.reduce(0, +)
    guard tensor.shape == [rows, cols] else {
        throw .shapeMismatch(path: source.path, tensor: name, expected: [rows, cols], actual: tensor.shape)
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
