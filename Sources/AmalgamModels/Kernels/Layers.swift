import Foundation

/// The decoder's element-wise layers as plain loops, llm.c style: each forward keeps what its backward
/// will need (noted per kernel), and buffer shapes are written beside each pointer.
public enum Layers {
    /// RMSNorm: out[N × C] = inp / sqrt(mean(inp²) + eps) · weight[C].
    /// Keeps rstd[N] (1 / rms per row) for the backward pass when `rstd` is given.
    public static func rmsnormForward(_ out: UnsafeMutablePointer<Float>, _ rstd: UnsafeMutablePointer<Float>?,
                                      _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                                      rows N: Int, cols C: Int, eps: Float) {
        for n in 0..<N {
            let x = inp + n * C
            let o = out + n * C
            var acc = SIMD16<Float>()
            var c = 0
            while c + 16 <= C {
                let v = UnsafeRawPointer(x + c).loadUnaligned(as: SIMD16<Float>.self)
                acc.addProduct(v, v)
                c += 16
            }
            var sumSquares = acc.sum()
            while c < C { sumSquares += x[c] * x[c]; c += 1 }
            let s = 1 / (sumSquares / Float(C) + eps).squareRoot()
            rstd?[n] = s
            for c in 0..<C { o[c] = weight[c] * (x[c] * s) }
        }
    }

    /// Rotary position embedding in place, Hugging Face's `rotate_half` convention: within each head of
    /// `headDim` D, element i pairs with i + D/2.
    /// x[N × heads·D]; cos, sin [N × D/2] (the row's position already applied). Backward is the same
    /// rotation with sin negated, so nothing is kept.
    public static func ropeForward(_ x: UnsafeMutablePointer<Float>, rows N: Int, heads H: Int, headDim D: Int,
                                   cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        partialRopeForward(x, rows: N, heads: H, headDim: D, rotaryDim: D, cos: cos, sin: sin)
    }

    /// SwiGLU: out[N × I] = silu(gate[N × I]) · up[N × I]. Backward needs gate and up (keep them).
    public static func swigluForward(_ out: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>,
                                     _ up: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let g = gate[i]
            out[i] = g / (1 + Foundation.exp(-g)) * up[i]
        }
    }

    /// Residual: x[count] += delta[count].
    public static func residualForward(_ x: UnsafeMutablePointer<Float>, _ delta: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { x[i] += delta[i] }
    }

    /// Log-softmax of one row of logits, evaluated at `target`: logits[target] − logsumexp(logits).
    public static func logProbability(_ logits: UnsafePointer<Float>, count V: Int, target: Int) -> Float {
        var m = -Float.infinity
        for v in 0..<V { m = max(m, logits[v]) }
        var sum: Double = 0
        for v in 0..<V { sum += Double(Foundation.exp(logits[v] - m)) }
        return logits[target] - m - Float(Foundation.log(sum))
    }
}
