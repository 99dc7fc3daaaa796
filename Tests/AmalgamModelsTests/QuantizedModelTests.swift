import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import AmalgamTestSupport
import Foundation
import Testing

/// Logits of a GGUF run with its weights quantized in place against the same file dequantized to f32.
/// Per position: ‖native − f32‖ / ‖f32 − mean(f32)‖ (the logit error relative to the logits' spread), and
/// whether the top-1 tokens agree. The native path quantizes every matmul input to 8 bits per value
/// (an error up to max|x|/254 per value, ≈ 0.5 % of a block's RMS); over two or three layers of a tiny
/// model that stays near 1–2 %, so 5 % leaves a margin while a wrong block layout, scale or row order
/// (q/k are stored interleaved in a GGUF) gives errors of order 100 %.
private func compare(_ path: String, tokens: [Int], expecting types: Set<GGMLType>) throws -> (maxError: Double, agreement: Double) {
    let native = try LlamaModel(folder: path, precision: .native)
    let f32 = try LlamaModel(folder: path, precision: .f32)
    #expect(native.weightBlockType.map { types.contains($0) } == true, "\(path): q_proj is \(String(describing: native.weightBlockType))")
    #expect(f32.weightBlockType == nil && f32.weightDType == .f32)
    let batch = try TokenBatch([tokens])
    let a = try native.logits(batch), b = try f32.logits(batch)
    let V = a.cols
    var worst = 0.0, agree = 0
    for r in 0..<a.rows {
        let x = a.values[(r * V)..<((r + 1) * V)], y = b.values[(r * V)..<((r + 1) * V)]
        let mean = y.reduce(0.0) { $0 + Double($1) } / Double(V)
        var diff = 0.0, spread = 0.0
        for i in x.indices {
            diff += pow(Double(x[i]) - Double(y[i]), 2)
            spread += pow(Double(y[i]) - mean, 2)
        }
        worst = max(worst, (diff / spread).squareRoot())
        if x.indices.max(by: { x[$0] < x[$1] }) == y.indices.max(by: { y[$0] < y[$1] }) { agree += 1 }
    }
    return (worst, Double(agree) / Double(a.rows))
}

@Test("the tiny GGUF fixtures (Q8_0, Q4_0, Q5_1 and F16 tensors) run quantized in place as they do dequantized to f32",
      arguments: ["tiny-llama.gguf", "tiny-llama-q8_0.gguf"])
func tinyGGUFNativeMatchesF32(file: String) throws {
    let ids = try JSONValue.parse(String(contentsOfFile: fixturesDirectory + "/gguf/tiny-llama-tokens.json", encoding: .utf8))["ids"]!
        .arrayValue!.compactMap(\.intValue)
    let (maxError, agreement) = try compare(fixturesDirectory + "/gguf/" + file, tokens: ids, expecting: [.q8_0, .q4_0, .q5_1])
    #expect(maxError <= 0.05, "\(file): relative logit error \(maxError)")
    #expect(agreement >= 0.9, "\(file): top-1 agreement \(agreement)")
}

/// A Llama-shaped GGUF without a vocabulary (hidden 256, 2 layers, 4 query and 2 key/value heads of 64,
/// FFN 512, vocabulary 64) whose matrices are random blocks of `type` and whose embedding is random f32:
/// for the block types no fixture covers (Amalgam's writer quantizes only Q8_0).
private func writeRandomLlama(_ path: String, type: GGMLType, seed: UInt64) throws {
    var g = SeededGenerator(seed: seed)
    let hidden = 256, ffn = 512, vocab = 64, layers = 2, heads = 4, kvHeads = 2, headDim = 64
    // Scales chosen so that weights are of order 0.1, as in a trained model.
    let scale: (d: Float, min: Float) = switch type {
    case .q5_0: (0.01, 0)
    case .q4_1: (0.02, 0.15)
    case .q4_K: (0.0004, 0.0005)
    case .q5_K: (0.0002, 0.0005)
    case .q6_K: (0.00004, 0)
    default: (0.01, 0.01)
    }
    func f16(_ v: Float) -> [UInt8] { let b = Float16(v).bitPattern; return [UInt8(truncatingIfNeeded: b), UInt8(truncatingIfNeeded: b >> 8)] }
    func blocks(rows: Int, cols: Int) -> [UInt8] {
        let (per, size) = type.blockLayout
        var out: [UInt8] = []
        for _ in 0..<(rows * cols / per) {
            var block = (0..<size).map { _ in UInt8.random(in: 0...255, using: &g) }
            let d = f16(Float.random(in: 0.5...1.5, using: &g) * scale.d), m = f16(Float.random(in: 0.5...1.5, using: &g) * scale.min)
            switch type {
            case .q6_K: block.replaceSubrange(208..<210, with: d)
            case .q4_1, .q5_1: block.replaceSubrange(0..<2, with: d); block.replaceSubrange(2..<4, with: f16(-scale.min))
            case .q4_K, .q5_K: block.replaceSubrange(0..<2, with: d); block.replaceSubrange(2..<4, with: m)
            default: block.replaceSubrange(0..<2, with: d)
            }
            out += block
        }
        return out
    }
    func f32(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }
    var tensors: [GGUFWriter.Entry] = []
    func add(_ name: String, _ t: GGMLType, rows: Int, cols: Int, _ bytes: [UInt8]) {
        tensors.append(GGUFWriter.Entry(name: name, type: t, ne: rows == 1 ? [cols] : [cols, rows], produce: { bytes }))
    }
    add("token_embd.weight", .f32, rows: vocab, cols: hidden, f32((0..<(vocab * hidden)).map { _ in Float.random(in: -1...1, using: &g) }))
    add("output_norm.weight", .f32, rows: 1, cols: hidden, f32([Float](repeating: 1, count: hidden)))
    add("output.weight", type, rows: vocab, cols: hidden, blocks(rows: vocab, cols: hidden))
    for l in 0..<layers {
        let p = "blk.\(l)."
        add(p + "attn_norm.weight", .f32, rows: 1, cols: hidden, f32([Float](repeating: 1, count: hidden)))
        add(p + "ffn_norm.weight", .f32, rows: 1, cols: hidden, f32([Float](repeating: 1, count: hidden)))
        add(p + "attn_q.weight", type, rows: heads * headDim, cols: hidden, blocks(rows: heads * headDim, cols: hidden))
        add(p + "attn_k.weight", type, rows: kvHeads * headDim, cols: hidden, blocks(rows: kvHeads * headDim, cols: hidden))
        add(p + "attn_v.weight", type, rows: kvHeads * headDim, cols: hidden, blocks(rows: kvHeads * headDim, cols: hidden))
        add(p + "attn_output.weight", type, rows: hidden, cols: heads * headDim, blocks(rows: hidden, cols: heads * headDim))
        add(p + "ffn_gate.weight", type, rows: ffn, cols: hidden, blocks(rows: ffn, cols: hidden))
        add(p + "ffn_up.weight", type, rows: ffn, cols: hidden, blocks(rows: ffn, cols: hidden))
        add(p + "ffn_down.weight", type, rows: hidden, cols: ffn, blocks(rows: hidden, cols: ffn))
    }
    let metadata: [(key: String, value: GGUFValue)] = [
        ("general.architecture", .string("llama")),
        ("llama.embedding_length", .uint32(UInt32(hidden))),
        ("llama.feed_forward_length", .uint32(UInt32(ffn))),
        ("llama.block_count", .uint32(UInt32(layers))),
        ("llama.attention.head_count", .uint32(UInt32(heads))),
        ("llama.attention.head_count_kv", .uint32(UInt32(kvHeads))),
        ("llama.vocab_size", .uint32(UInt32(vocab))),
        ("llama.context_length", .uint32(256)),
        ("tokenizer.ggml.model", .string("none")),
    ]
    try GGUFWriter(path: path).write(metadata: metadata, tensors: tensors)
}

@Test("a Llama GGUF whose matrices are Q4_1, Q5_0, Q4_K, Q5_K or Q6_K runs quantized in place as it does dequantized to f32",
      arguments: [GGMLType.q4_1, .q5_0, .q4_K, .q5_K, .q6_K])
func randomGGUFNativeMatchesF32(type: GGMLType) throws {
    let dir = temporaryFolder("quantized-\(type.name)")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/random.gguf"
    try writeRandomLlama(path, type: type, seed: 77 + UInt64(type.rawValue))
    let (maxError, agreement) = try compare(path, tokens: [1, 5, 9, 33, 2, 60, 17, 17, 42, 8, 3, 63, 0, 21, 30, 11],
                                            expecting: [type])
    #expect(maxError <= 0.05, "\(type.name): relative logit error \(maxError)")
    #expect(agreement >= 0.9, "\(type.name): top-1 agreement \(agreement)")
}

@Test("--weights bf16 holds a GGUF's matrices in bf16 and stays within bf16 rounding of f32")
func bf16WeightsFromGGUF() throws {
    let path = fixturesDirectory + "/gguf/tiny-llama-q8_0.gguf"
    let bf16 = try LlamaModel(folder: path, precision: .bf16)
    let f32 = try LlamaModel(folder: path, precision: .f32)
    #expect(bf16.weightDType == .bf16 && bf16.weightBlockType == nil)
    let batch = try TokenBatch([[75, 104, 111, 111, 114, 268, 47]])
    let a = try bf16.logits(batch), b = try f32.logits(batch)
    var diff = 0.0, norm = 0.0
    for i in a.values.indices { diff += pow(Double(a.values[i] - b.values[i]), 2); norm += pow(Double(b.values[i]), 2) }
    // bf16 keeps 8 significant bits: each weight moves by ≤ 2⁻⁹ relative, so the logits by about that.
    #expect((diff / norm).squareRoot() < 0.01)
    #expect(a != b)
}
