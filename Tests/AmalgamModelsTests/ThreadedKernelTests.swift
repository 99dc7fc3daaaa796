import AmalgamCore
import AmalgamModels
import Foundation
import Testing

/// The engine's kernels at sizes where they split their work over the cores: the other kernel tests use shapes so
/// small that every kernel stays on the calling thread. These are the tests the ThreadSanitizer package (TSan/)
/// runs over the matrix products and attention, so they must reach the concurrent paths.
@Suite("Engine kernels split over threads")
struct ThreadedKernelTests {
    /// Deterministic values in [-1, 1).
    static func values(_ n: Int, seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<n).map { _ in Float(g.uniform() * 2 - 1) }
    }

    /// One-row and few-row products (decoding) over a group of three weights (q, k, v), split by rows into more
    /// chunks than there are cores (1,536 rows of 256 columns: six chunks of 256 rows), with a bias on one of
    /// them, against the f64 sum of the definition. bf16 weights are compared with their own rounded values.
    @Test(arguments: [DType.f32, .bf16], [1, 3])
    func rowSplitProductsMatchTheDefinition(dtype: DType, rows T: Int) throws {
        let cols = 256
        let shapes = [1024, 256, 256]
        #expect(parallelChunkCount(shapes.reduce(0, +), minimumChunk: max(16, 65536 / cols)) > 1, "the GEMV must split")
        let x = Self.values(T * cols, seed: 1)
        let weights = try shapes.enumerated().map { i, r in
            try WeightMatrix(Tensor(Self.values(r * cols, seed: UInt64(10 + i)), shape: [r, cols]).converted(to: dtype),
                             name: "w\(i)", path: "test", rows: r, cols: cols)
        }
        let bias = Self.values(shapes[1], seed: 20)
        var out0 = [Float](repeating: .nan, count: T * shapes[0])
        var out1 = [Float](repeating: .nan, count: T * shapes[1])
        var out2 = [Float](repeating: .nan, count: T * shapes[2])
        out0.withUnsafeMutableBufferPointer { o0 in
            out1.withUnsafeMutableBufferPointer { o1 in
                out2.withUnsafeMutableBufferPointer { o2 in
                    bias.withUnsafeBufferPointer { b in
                        let products = [MatMul.Product(out: o0.baseAddress!, weight: weights[0], bias: nil),
                                        MatMul.Product(out: o1.baseAddress!, weight: weights[1], bias: b.baseAddress!),
                                        MatMul.Product(out: o2.baseAddress!, weight: weights[2], bias: nil)]
                        MatMul.forwardGroup(products, x, rows: T, scratch: nil)
                    }
                }
            }
        }
        let outs = [out0, out1, out2]
        for (i, w) in weights.enumerated() {
            let wf = w.tensor.floats()
            var wrong: [String] = []
            for t in 0..<T {
                for r in 0..<w.rows {
                    var sum = i == 1 ? Double(bias[r]) : 0
                    for c in 0..<cols { sum += Double(x[t * cols + c]) * Double(wf[r * cols + c]) }
                    let ours = outs[i][t * w.rows + r]
                    // f32 sums of 256 terms of magnitude ≤ 1: rounding stays far below 1e-4 (NaN, an unwritten
                    // row, fails too).
                    if !(abs(Double(ours) - sum) <= 1e-4) { wrong.append("[\(t), \(r)] \(ours) vs \(sum)") }
                }
            }
            #expect(wrong.isEmpty, "weight \(i), \(dtype), \(T) rows: \(wrong.count) outputs off, first \(wrong.prefix(3))")
        }
    }

    /// Attention over enough work to run its (segment, head, query block) tasks concurrently gives the bytes of
    /// the same queries computed one at a time (each such call is below the serial threshold, so it runs on the
    /// calling thread): two packed sequences, grouped-query heads, with and without a sliding window.
    @Test(arguments: [nil, 37] as [Int?])
    func concurrentAttentionEqualsQueryByQuery(window: Int?) {
        let Hq = 4, Hkv = 2, D = 32
        let lengths = [160, 75]
        let N = lengths.reduce(0, +)
        #expect(lengths.reduce(0) { $0 + $1 * $1 } * Hq * D >= 1 << 18, "attention must run its tasks concurrently")
        var segments: [Attention.Segment] = []
        var start = 0
        for l in lengths { segments.append(.init(queryRow: start, keyRow: start, position: 0, count: l)); start += l }
        let q = Self.values(N * Hq * D, seed: 3), k = Self.values(N * Hkv * D, seed: 4), v = Self.values(N * Hkv * D, seed: 5)
        var alone = [Float](repeating: .nan, count: N * Hq * D)
        for s in segments {
            for t in 0..<s.count {
                let one = Attention.Segment(queryRow: s.queryRow + t, keyRow: s.keyRow, position: t, count: 1)
                Attention.forward(&alone, q: q, k: k, v: v, segments: [one], heads: Hq, kvHeads: Hkv, headDim: D, window: window)
            }
        }
        // Several calls: each is one chance for the tasks to meet on two threads (what ThreadSanitizer needs to see).
        for call in 0..<4 {
            var together = [Float](repeating: .nan, count: N * Hq * D)
            Attention.forward(&together, q: q, k: k, v: v, segments: segments, heads: Hq, kvHeads: Hkv, headDim: D, window: window)
            let differing = zip(together, alone).filter { $0.0.bitPattern != $0.1.bitPattern }.count
            #expect(differing == 0, "window \(window.map(String.init) ?? "none"), call \(call): \(differing) of \(together.count) values differ")
        }
    }
}
