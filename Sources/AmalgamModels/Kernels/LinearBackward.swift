import AmalgamCore
import CAmalgamBLAS

/// Backward of `MatMul.forward` (y[T × out] = x[T × in] · Wᵀ + b), over OpenBLAS `sgemm`:
/// dx = dy · W, dW = dyᵀ · x, db = Σ_rows dy. Gradients accumulate (`+=`).
extension MatMul {
    /// dx[T × W.cols] += dy[T × W.rows] · W. f32 weights are read in place; bf16/f16 weights are decoded
    /// one panel of rows at a time into `scratch` (`scratchCount(for:)` floats), as in the forward pass.
    public static func backwardInput(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, rows T: Int,
                                     weight w: WeightMatrix, scratch: UnsafeMutablePointer<Float>?) {
        guard T > 0 else { return }
        if w.tensor.dtype == .f32 {
            let wp = w.tensor.storage.base!.assumingMemoryBound(to: Float.self)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(w.cols), Int32(w.rows),
                        1, dy, Int32(w.rows), wp, Int32(w.cols), 1, dx, Int32(w.cols))
            return
        }
        let panel = panelRows(w)
        var r0 = 0
        while r0 < w.rows {
            let n = min(panel, w.rows - r0)
            w.decodeRows(r0..<(r0 + n), into: scratch!)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(w.cols), Int32(n),
                        1, dy + r0, Int32(w.rows), scratch!, Int32(w.cols), 1, dx, Int32(w.cols))
            r0 += n
        }
    }

    /// dw[out × in] += dy[T × out]ᵀ · x[T × in].
    public static func backwardWeight(_ dw: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                      rows T: Int, outFeatures out: Int, inFeatures inp: Int) {
        guard T > 0 else { return }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(out), Int32(inp), Int32(T),
                    1, dy, Int32(out), x, Int32(inp), 1, dw, Int32(inp))
    }

    /// db[out] += Σ over rows of dy[T × out] (rows in order).
    public static func backwardBias(_ db: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, rows T: Int, outFeatures out: Int) {
        for t in 0..<T {
            let row = dy + t * out
            for o in 0..<out { db[o] += row[o] }
        }
    }
}

extension Layers {
    /// Embedding lookup: out[N × C] = table[tokens[n]] for each n (table [V × C], any engine dtype).
    public static func embeddingForward(_ out: UnsafeMutablePointer<Float>, tokens: [Int], table: WeightMatrix) {
        for (n, t) in tokens.enumerated() { table.decodeRows(t..<(t + 1), into: out + n * table.cols) }
    }

    /// Embedding backward, a scatter-add of rows in token order: dtable[tokens[n]] += dout[n] (dtable [V × C]).
    public static func embeddingBackward(_ dtable: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>,
                                         tokens: [Int], cols C: Int) {
        for (n, t) in tokens.enumerated() {
            let d = dtable + t * C, g = dout + n * C
            for c in 0..<C { d[c] += g[c] }
        }
    }
}
