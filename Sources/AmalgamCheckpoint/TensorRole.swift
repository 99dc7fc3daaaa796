/// What a tensor does in a transformer, read from its Hugging Face name, so merges and models can
/// ask for "all tensors of layer 7" or "the embeddings".
public enum TensorRole: String, Sendable, Equatable, CaseIterable {
    case embedding, lmHead, finalNorm
    case attentionQ, attentionK, attentionV, attentionO, queryNorm, keyNorm
    case mlpGate, mlpUp, mlpDown
    case inputNorm, postAttentionNorm
    case other

    /// Whether the tensor is embedding-like (rows indexed by token id).
    public var isEmbeddingLike: Bool { self == .embedding || self == .lmHead }
}

/// A tensor name split into its layer index and role.
public struct TensorName: Sendable, Equatable {
    public let name: String
    /// The transformer layer, for names like `model.layers.7.…` (also `.h.7.`, `.blocks.7.`).
    public let layer: Int?
    public let role: TensorRole
    /// Whether this is a bias rather than a weight.
    public let isBias: Bool

    public init(_ name: String) {
        self.name = name
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var layer: Int?
        var layerPart = -1
        for (i, p) in parts.enumerated().dropLast() where ["layers", "h", "blocks", "layer"].contains(p) {
            if let n = Int(parts[i + 1]) { layer = n; layerPart = i + 1; break }
        }
        self.layer = layer
        isBias = parts.last == "bias"
        let module = layerPart >= 0 ? parts[(layerPart + 1)...].dropLast().joined(separator: ".") : parts.dropLast().joined(separator: ".")
        if layer == nil {
            switch module {
            case "model.embed_tokens", "embed_tokens", "transformer.wte", "model.embed": role = .embedding
            case "lm_head", "output": role = .lmHead
            case "model.norm", "norm", "transformer.ln_f": role = .finalNorm
            default: role = .other
            }
        } else {
            switch module {
            case "self_attn.q_proj": role = .attentionQ
            case "self_attn.k_proj": role = .attentionK
            case "self_attn.v_proj": role = .attentionV
            case "self_attn.o_proj": role = .attentionO
            case "self_attn.q_norm": role = .queryNorm
            case "self_attn.k_norm": role = .keyNorm
            case "mlp.gate_proj": role = .mlpGate
            case "mlp.up_proj": role = .mlpUp
            case "mlp.down_proj": role = .mlpDown
            case "input_layernorm": role = .inputNorm
            case "post_attention_layernorm": role = .postAttentionNorm
            default: role = .other
            }
        }
    }

    /// The same name with its layer index replaced (for layer stacking).
    public func withLayer(_ newLayer: Int) -> String {
        guard layer != nil else { return name }
        var parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        for (i, p) in parts.enumerated().dropLast() where ["layers", "h", "blocks", "layer"].contains(p) && Int(parts[i + 1]) != nil {
            parts[i + 1] = String(newLayer)
            break
        }
        return parts.joined(separator: ".")
    }
}
