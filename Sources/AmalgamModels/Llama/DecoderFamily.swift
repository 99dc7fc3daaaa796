import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// What sets a family's decoder apart from Llama's, resolved from config.json in this one place; the one
/// forward pass (`LlamaModel.forward`) reads these options and nothing else about the family.
///
/// - llama, mistral, qwen2, qwen3: the Llama block (every option at its Llama value).
/// - gemma2, gemma3_text (and the text model of a gemma3 checkpoint): embeddings scaled by √hidden,
///   (1 + w) RMSNorms, a norm before and after each block, GeGLU (gelu-tanh), `query_pre_attn_scalar`,
///   attention and final soft-caps, per-layer sliding windows; gemma3 adds per-head q/k norms and a
///   second rotary table for its sliding layers.
/// - olmo2: norms after each block only, q/k norms over the whole projection width.
/// - granite: embedding, attention, residual and logit multipliers.
/// - phi3: fused qkv_proj and gate_up_proj, partial rotary, longrope.
/// - gpt2: LayerNorm with bias, learned absolute positions instead of RoPE, Conv1D weights ([in × out], read
///   transposed), a plain gelu MLP (c_fc, c_proj), biases everywhere, optional 1/(layer + 1) attention scale.
/// - mixtral, qwen2_moe, qwen3_moe: sparse MoE MLPs (`LlamaWeights.moeLayers`, `LlamaModel.sparseMLP`).
public struct DecoderFamily: Sendable, Equatable {
    /// The MLP's gate activation.
    public enum Activation: String, Sendable { case silu, geluTanh = "gelu_tanh" }
    /// RMSNorm, or LayerNorm with a bias (GPT-2).
    public enum NormKind: Sendable { case rms, layer }
    /// Where q/k RMSNorms apply, if anywhere.
    public enum QKNorm: Sendable, Equatable { case none, perHead, fullWidth }

    /// `model_type` of the text decoder.
    public var modelType: String
    /// Prefix of every tensor name (`language_model.` in a Gemma 3 multimodal checkpoint).
    public var tensorPrefix = ""
    /// Added to every stored RMSNorm weight: 1 for Gemma's (1 + w) norms, 0 otherwise.
    public var normOffset: Float = 0
    /// Names under `model.layers.{i}.` of the norms before and after each block (nil: none there).
    public var attentionInputNorm: String? = "input_layernorm"
    public var attentionOutputNorm: String? = nil
    public var mlpInputNorm: String? = "post_attention_layernorm"
    public var mlpOutputNorm: String? = nil
    public var activation = Activation.silu
    public var normKind = NormKind.rms
    /// down(act(gate)·up) when true; down(act(gate)) with no up projection when false (GPT-2's c_fc, c_proj).
    public var gatedMLP = true
    /// RoPE when true; a learned absolute position table (GPT-2's wpe) when false.
    public var rotary = true
    /// GPT-2's layout: `transformer.h.{i}.…` Conv1D weights stored [in × out].
    public var conv1D = false
    /// Per-layer attention scales, when they differ by layer (GPT-2's `scale_attn_by_inverse_layer_idx`).
    public var layerAttentionScales: [Float]? = nil
    public var qkNorm = QKNorm.none
    /// Multiplies q·k (nil: head_dim^-½).
    public var attentionScale: Float? = nil
    /// Attention scores become c·tanh(s/c) before the mask.
    public var attentionSoftCap: Float? = nil
    /// Logits become c·tanh(z/c).
    public var finalSoftCap: Float? = nil
    /// Multiplies the input embeddings.
    public var embeddingScale: Float = 1
    /// Multiplies each block's output before the residual add.
    public var residualScale: Float = 1
    /// Divides the logits.
    public var logitDivisor: Float = 1
    /// q, k and v in one `qkv_proj`, gate and up in one `gate_up_proj` (Phi-3).
    public var fusedProjections = false
    /// Leading dimensions of each head that rotate (the rest pass through).
    public var rotaryDim: Int

    /// Whether this is one of the Llama-family types (the ones the trainer and GGUF export handle).
    public var isLlama: Bool { LlamaConfig.modelTypes.contains(modelType) }

    /// Resolves the options of `text` (the text decoder's config; `outer` the file's own, which differs
    /// for a Gemma 3 multimodal checkpoint). Throws naming the key when a setting is not supported.
    init(config: LlamaConfig, text: ModelConfig, outer: ModelConfig) throws(ModelError) {
        let m = text.fields(as: ModelError.self)
        modelType = config.modelType
        rotaryDim = config.headDim
        func fail(_ key: String, _ reason: String) -> ModelError { m.fail(key, reason) }
        if outer.modelType == "gemma3" { tensorPrefix = "language_model." }
        let act = try m.value(anyOf: "hidden_activation", "hidden_act")?.string()
        switch config.modelType {
        case "gemma2", "gemma3_text":
            normOffset = 1
            attentionOutputNorm = "post_attention_layernorm"
            mlpInputNorm = "pre_feedforward_layernorm"
            mlpOutputNorm = "post_feedforward_layernorm"
            // gemma2 and gemma3 default to gelu_pytorch_tanh when the key is absent
            activation = .geluTanh
            if let act, !["gelu_pytorch_tanh", "gelu_new"].contains(act) {
                throw fail("hidden_activation", "'\(act)' is not supported; Gemma runs gelu_pytorch_tanh")
            }
            attentionScale = Float(Foundation.pow(try m.double("query_pre_attn_scalar") ?? 256, -0.5))
            embeddingScale = Float(Double(config.hiddenSize).squareRoot())
            // transformers applies it in Gemma2/Gemma3ForCausalLM; Gemma3ForConditionalGeneration (a gemma3
            // checkpoint) never does, whatever text_config says
            finalSoftCap = outer.modelType == "gemma3" ? nil : try m.double("final_logit_softcapping").map(Float.init)
            if config.modelType == "gemma2" {
                attentionSoftCap = try m.double("attn_logit_softcapping").map(Float.init)
            } else {
                qkNorm = .perHead  // gemma3 reads attn_logit_softcapping but never applies it
            }
        case "olmo2":
            attentionInputNorm = nil
            mlpInputNorm = nil
            attentionOutputNorm = "post_attention_layernorm"
            mlpOutputNorm = "post_feedforward_layernorm"
            qkNorm = .fullWidth
        case "granite":
            embeddingScale = Float(try m.double("embedding_multiplier") ?? 1)
            attentionScale = Float(try m.double("attention_multiplier") ?? 1)
            residualScale = Float(try m.double("residual_multiplier") ?? 1)
            logitDivisor = Float(try m.double("logits_scaling") ?? 1)
        case "phi3":
            fusedProjections = true
            let factor = try m.double("partial_rotary_factor") ?? 1
            rotaryDim = Int(Double(config.headDim) * factor)
            guard rotaryDim > 0, rotaryDim % 2 == 0, rotaryDim <= config.headDim else {
                throw fail("partial_rotary_factor", "\(factor) gives \(rotaryDim) rotary dimensions of head_dim \(config.headDim); it must give an even number in 2...head_dim")
            }
        case "gpt2":
            normKind = .layer
            attentionInputNorm = "ln_1"
            mlpInputNorm = "ln_2"
            let function = try m.string("activation_function") ?? "gelu_new"
            guard ["gelu_new", "gelu_pytorch_tanh"].contains(function) else {
                throw fail("activation_function", "'\(function)' is not supported; the engine runs gelu_new (the tanh GELU)")
            }
            activation = .geluTanh
            gatedMLP = false
            rotary = false
            conv1D = true
            // reorder_and_upcast_attn only changes the precision of the scores below f32
            let base = try m.bool("scale_attn_weights") == false ? 1 : 1 / Double(config.headDim).squareRoot()
            let byLayer = try m.bool("scale_attn_by_inverse_layer_idx") ?? false
            layerAttentionScales = (0..<config.numHiddenLayers).map { Float(byLayer ? base / Double($0 + 1) : base) }
        case "qwen3", "qwen3_moe":
            qkNorm = .perHead
        default:
            break
        }
        if !config.modelType.hasPrefix("gemma") && config.modelType != "gpt2" {
            if let act, act != "silu" {
                throw fail("hidden_act", "'\(act)' is not supported; \(config.modelType) runs SwiGLU (silu)")
            }
            if config.modelType != "phi3", let factor = try m.double("partial_rotary_factor"), factor != 1 {
                throw fail("partial_rotary_factor", "\(factor) is not supported for \(config.modelType); rotary embedding covers the whole head")
            }
        }
    }

    /// The distinct rotary embeddings and which one each layer uses. Gemma 3 has two tables: its sliding layers use
    /// `rope_local_base_freq` (or `rope_parameters.sliding_attention`) unscaled, its full-attention layers
    /// `rope_theta` with the rope scaling (or `rope_parameters.full_attention`). Every other family has one.
    static func rotaryEmbeddings(config: LlamaConfig, text: ModelConfig, family: DecoderFamily,
                                 windows: [Int?]) throws(ModelError) -> (tables: [RotaryEmbedding], layerTable: [Int]) {
        let raw = text.raw
        let m = text.fields(as: ModelError.self)
        var rotary = config
        rotary.headDim = family.rotaryDim
        let topOriginal = try m.int("original_max_position_embeddings")
        guard config.modelType == "gemma3_text" else {
            let rope = try RotaryEmbedding(rotary, path: text.path,
                                           section: m["rope_scaling"] != nil ? "rope_scaling" : "rope_parameters",
                                           topLevelOriginalMaxPositions: topOriginal)
            return ([rope], Array(repeating: 0, count: config.numHiddenLayers))
        }
        var global = rotary, local = rotary
        let parameters = try m.value("rope_parameters")?.mapping()
        if let full = try parameters?.value("full_attention")?.mapping(), let sliding = try parameters?.value("sliding_attention")?.mapping(),
           let fullObject = raw["rope_parameters"]?["full_attention"]?.objectValue, let slidingObject = raw["rope_parameters"]?["sliding_attention"]?.objectValue {
            global.ropeTheta = try full.double("rope_theta") ?? 1_000_000
            global.ropeScaling = (try full.string("rope_type") ?? "default") == "default" ? nil : fullObject
            local.ropeTheta = try sliding.double("rope_theta") ?? 10_000
            local.ropeScaling = (try sliding.string("rope_type") ?? "default") == "default" ? nil : slidingObject
        } else {
            global.ropeTheta = try (m.value("rope_theta") ?? parameters?.value("rope_theta"))?.double() ?? 1_000_000
            local.ropeTheta = try m.double("rope_local_base_freq") ?? 10_000
            local.ropeScaling = nil
        }
        let globalRope = try RotaryEmbedding(global, path: text.path, section: "rope_parameters.full_attention",
                                             topLevelOriginalMaxPositions: topOriginal)
        let localRope = try RotaryEmbedding(local, path: text.path, section: "rope_parameters.sliding_attention",
                                            topLevelOriginalMaxPositions: topOriginal)
        return ([globalRope, localRope], windows.map { $0 == nil ? 0 : 1 })
    }
}

extension Layers {
    /// GeGLU with the tanh approximation (`gelu_pytorch_tanh`, `gelu_new`):
    /// out[N × I] = ½g(1 + tanh(√(2/π)(g + 0.044715g³))) · up[N × I].
    public static func gegluTanhForward(_ out: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>,
                                        _ up: UnsafePointer<Float>, count: Int) {
        let k = Float((2 / Double.pi).squareRoot())
        for i in 0..<count {
            let g = gate[i]
            out[i] = 0.5 * g * (1 + Foundation.tanh(k * (g + 0.044715 * g * g * g))) * up[i]
        }
    }

    /// The tanh GELU in place (`gelu_new`): x = ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
    public static func geluTanhForward(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let k = Float((2 / Double.pi).squareRoot())
        for i in 0..<count {
            let g = x[i]
            x[i] = 0.5 * g * (1 + Foundation.tanh(k * (g + 0.044715 * g * g * g)))
        }
    }

    /// SiLU in place: x = x / (1 + e^−x).
    public static func siluForward(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { x[i] = x[i] / (1 + Foundation.exp(-x[i])) }
    }

    /// LayerNorm with bias: out[N × C] = (x − mean) / sqrt(var + eps) · weight + bias (biased variance).
    public static func layerNormForward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
                                        _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                        rows N: Int, cols C: Int, eps: Float) {
        for n in 0..<N {
            let x = inp + n * C, o = out + n * C
            var sum: Float = 0
            for c in 0..<C { sum += x[c] }
            let mean = sum / Float(C)
            var squares: Float = 0
            for c in 0..<C { let d = x[c] - mean; squares += d * d }
            let rstd = 1 / (squares / Float(C) + eps).squareRoot()
            for c in 0..<C { o[c] = (x[c] - mean) * rstd * weight[c] + (bias?[c] ?? 0) }
        }
    }

    /// Soft-cap in place: x = c·tanh(x / c).
    public static func softCapForward(_ x: UnsafeMutablePointer<Float>, count: Int, cap: Float) {
        for i in 0..<count { x[i] = cap * Foundation.tanh(x[i] / cap) }
    }

    /// Scales in place: x *= s.
    public static func scaleForward(_ x: UnsafeMutablePointer<Float>, count: Int, by s: Float) {
        for i in 0..<count { x[i] *= s }
    }

    /// Rotary position embedding on the first `rotaryDim` dimensions of each head (rotate-half within
    /// them); the others pass through. x[N × heads·D]; cos, sin [N × rotaryDim/2].
    public static func partialRopeForward(_ x: UnsafeMutablePointer<Float>, rows N: Int, heads H: Int, headDim D: Int,
                                          rotaryDim R: Int, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let half = R / 2
        for n in 0..<N {
            let c = cos + n * half
            let s = sin + n * half
            for h in 0..<H {
                let v = x + (n * H + h) * D
                for i in 0..<half {
                    let x1 = v[i], x2 = v[i + half]
                    v[i] = x1 * c[i] - x2 * s[i]
                    v[i + half] = x2 * c[i] + x1 * s[i]
                }
            }
        }
    }
}
