import AmalgamCore

/// llama.cpp's Llama tensor names and q/k row order, and their Hugging Face counterparts. This file and
/// the other `GGUFLlama*` files are the only model-specific part of the GGUF code.
public enum GGUFLlamaNames {
    private static let global: [(gguf: String, hf: String)] = [
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("output_norm.weight", "model.norm.weight"),
        ("output.weight", "lm_head.weight"),
    ]
    private static let perLayer: [(gguf: String, hf: String)] = [
        ("attn_norm.weight", "input_layernorm.weight"),
        ("ffn_norm.weight", "post_attention_layernorm.weight"),
        ("attn_q.weight", "self_attn.q_proj.weight"),
        ("attn_k.weight", "self_attn.k_proj.weight"),
        ("attn_v.weight", "self_attn.v_proj.weight"),
        ("attn_output.weight", "self_attn.o_proj.weight"),
        ("ffn_gate.weight", "mlp.gate_proj.weight"),
        ("ffn_up.weight", "mlp.up_proj.weight"),
        ("ffn_down.weight", "mlp.down_proj.weight"),
        ("attn_q.bias", "self_attn.q_proj.bias"),
        ("attn_k.bias", "self_attn.k_proj.bias"),
        ("attn_v.bias", "self_attn.v_proj.bias"),
    ]

    /// The Hugging Face name of a GGUF tensor (`blk.3.attn_q.weight` → `model.layers.3.self_attn.q_proj.weight`).
    public static func hfName(_ name: String) -> String? {
        if let g = global.first(where: { $0.gguf == name }) { return g.hf }
        guard name.hasPrefix("blk.") else { return nil }
        let rest = name.dropFirst(4)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        let suffix = String(rest[rest.index(after: dot)...])
        return perLayer.first(where: { $0.gguf == suffix }).map { "model.layers.\(layer).\($0.hf)" }
    }

    /// The GGUF name of a Hugging Face tensor (the inverse of `hfName`).
    public static func ggufName(_ name: String) -> String? {
        if let g = global.first(where: { $0.hf == name }) { return g.gguf }
        guard name.hasPrefix("model.layers.") else { return nil }
        let rest = name.dropFirst("model.layers.".count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        let suffix = String(rest[rest.index(after: dot)...])
        return perLayer.first(where: { $0.hf == suffix }).map { "blk.\(layer).\($0.gguf)" }
    }

    /// How many heads' rows llama.cpp interleaved in this HF tensor, nil when it is not q or k.
    static func permutedHeads(hfName: String, heads: Int, kvHeads: Int) -> Int? {
        if hfName.hasSuffix("self_attn.q_proj.weight") || hfName.hasSuffix("self_attn.q_proj.bias") { return heads }
        if hfName.hasSuffix("self_attn.k_proj.weight") || hfName.hasSuffix("self_attn.k_proj.bias") { return kvHeads }
        return nil
    }

    /// Reorders the rows of a `[rows, columns]` f32 tensor between llama.cpp's rope layout and
    /// Hugging Face's. Within each head of `2·half` rows, llama.cpp stores HF row `j·half + i` at `2i + j`
    /// (convert_hf_to_gguf.py's `permute`); `toHF` undoes it (transformers' `reverse_permute`).
    public static func permuteRows(_ values: UnsafeMutableBufferPointer<Float>, rows: Int, heads: Int, toHF: Bool) {
        guard heads > 0, rows % (2 * heads) == 0, rows > 0 else { return }
        let columns = values.count / rows
        let headRows = rows / heads, half = headRows / 2
        let copy = [Float](values)
        copy.withUnsafeBufferPointer { src in
            for h in 0..<heads {
                for i in 0..<half {
                    for j in 0..<2 {
                        let ggufRow = h * headRows + 2 * i + j
                        let hfRow = h * headRows + j * half + i
                        let (from, to) = toHF ? (ggufRow, hfRow) : (hfRow, ggufRow)
                        (values.baseAddress! + to * columns).update(from: src.baseAddress! + from * columns, count: columns)
                    }
                }
            }
        }
    }
}
