import AmalgamCheckpoint
import AmalgamCore

/// One decoder layer's weights, named as transformers names them under `model.layers.{i}.`.
struct LlamaLayerWeights: Sendable {
    var inputNorm: [Float]                 // input_layernorm.weight [C]
    var q, k, v, o: WeightMatrix           // self_attn.{q,k,v,o}_proj.weight [out × in]
    var qBias, kBias, vBias, oBias: FloatBuffer?  // present for qwen2 and attention_bias models
    var qNorm, kNorm: [Float]?             // qwen3: self_attn.{q,k}_norm.weight [D]
    var postNorm: [Float]                  // post_attention_layernorm.weight [C]
    var gate, up, down: WeightMatrix       // mlp.{gate,up,down}_proj.weight
    var gateBias, upBias, downBias: FloatBuffer?  // mlp_bias models
    var window: Int?                       // sliding window of this layer, if any
}

/// Everything a Llama-family decoder reads from its checkpoint, checked against the config.
struct LlamaWeights: Sendable {
    var embed: WeightMatrix                // model.embed_tokens.weight [V × C]
    var layers: [LlamaLayerWeights]
    var norm: [Float]                      // model.norm.weight [C]
    var lmHead: WeightMatrix               // lm_head.weight [V × C], or the embedding when tied

    init(config: LlamaConfig, raw: ModelConfig, source: TensorSource, precision: WeightPrecision?) throws(ModelError) {
        let C = config.hiddenSize, I = config.intermediateSize, V = config.vocabSize
        let qDim = config.numAttentionHeads * config.headDim
        let kvDim = config.numKeyValueHeads * config.headDim
        func optional(_ name: String, _ count: Int) throws(ModelError) -> FloatBuffer? {
            source.info(name) == nil ? nil : FloatBuffer(try loadVector(source, name, count: count))
        }
        embed = try loadMatrix(source, "model.embed_tokens.weight", rows: V, cols: C, precision: precision)
        norm = try loadVector(source, "model.norm.weight", count: C)
        if source.info("lm_head.weight") != nil && !config.tieWordEmbeddings {
            lmHead = try loadMatrix(source, "lm_head.weight", rows: V, cols: C, precision: precision)
        } else if config.tieWordEmbeddings {
            lmHead = embed
        } else {
            throw .missingTensor(path: source.path, tensor: "lm_head.weight")
        }
        let windows = try LlamaWeights.layerWindows(config: config, raw: raw)
        let hasQKNorm = config.modelType == "qwen3"
        var layers: [LlamaLayerWeights] = []
        for i in 0..<config.numHiddenLayers {
            let p = "model.layers.\(i)."
            let a = p + "self_attn.", m = p + "mlp."
            layers.append(LlamaLayerWeights(
                inputNorm: try loadVector(source, p + "input_layernorm.weight", count: C),
                q: try loadMatrix(source, a + "q_proj.weight", rows: qDim, cols: C, precision: precision),
                k: try loadMatrix(source, a + "k_proj.weight", rows: kvDim, cols: C, precision: precision),
                v: try loadMatrix(source, a + "v_proj.weight", rows: kvDim, cols: C, precision: precision),
                o: try loadMatrix(source, a + "o_proj.weight", rows: C, cols: qDim, precision: precision),
                qBias: try optional(a + "q_proj.bias", qDim),
                kBias: try optional(a + "k_proj.bias", kvDim),
                vBias: try optional(a + "v_proj.bias", kvDim),
                oBias: try optional(a + "o_proj.bias", C),
                qNorm: hasQKNorm ? try loadVector(source, a + "q_norm.weight", count: config.headDim) : nil,
                kNorm: hasQKNorm ? try loadVector(source, a + "k_norm.weight", count: config.headDim) : nil,
                postNorm: try loadVector(source, p + "post_attention_layernorm.weight", count: C),
                gate: try loadMatrix(source, m + "gate_proj.weight", rows: I, cols: C, precision: precision),
                up: try loadMatrix(source, m + "up_proj.weight", rows: I, cols: C, precision: precision),
                down: try loadMatrix(source, m + "down_proj.weight", rows: C, cols: I, precision: precision),
                gateBias: try optional(m + "gate_proj.bias", I),
                upBias: try optional(m + "up_proj.bias", I),
                downBias: try optional(m + "down_proj.bias", C),
                window: windows[i]))
        }
        self.layers = layers
    }

    /// The sliding window of each layer, as transformers decides it: `layer_types` when the config has
    /// it; otherwise every layer for mistral, and layers ≥ `max_window_layers` for qwen2/qwen3 with
    /// `use_sliding_window`.
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
