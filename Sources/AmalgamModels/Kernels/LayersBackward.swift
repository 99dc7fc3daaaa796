import Foundation

/// Backward passes of `Layers`' element-wise kernels, llm.c style: gradients accumulate with `+=`, and
/// each reads only what its forward kept.
extension Layers {
    /// RMSNorm backward. dinp[N × C] += ∂L/∂inp, dweight[C] += ∂L/∂weight, from dout[N × C], the forward's
    /// input inp[N × C], weight[C] and rstd[N].
    public static func rmsnormBackward(_ dinp: UnsafeMutablePointer<Float>, _ dweight: UnsafeMutablePointer<Float>,
                                       _ dout: UnsafePointer<Float>, _ inp: UnsafePointer<Float>,
                                       _ weight: UnsafePointer<Float>, _ rstd: UnsafePointer<Float>,
                                       rows N: Int, cols C: Int) {
        for n in 0..<N {
            let x = inp + n * C, dy = dout + n * C, dx = dinp + n * C
            let s = rstd[n]
            // y = w·x·s with s = (mean(x²) + eps)^(-1/2): ∂s/∂x_i = −s³·x_i / C
            var dot: Float = 0
            for c in 0..<C { dot += weight[c] * dy[c] * x[c] }
            let k = s * s * s * dot / Float(C)
            for c in 0..<C {
                dx[c] += s * weight[c] * dy[c] - k * x[c]
                dweight[c] += dy[c] * x[c] * s
            }
        }
    }

    /// SwiGLU backward. dgate, dup [count] += gradients, from dout and the forward's gate and up.
    public static func swigluBackward(_ dgate: UnsafeMutablePointer<Float>, _ dup: UnsafeMutablePointer<Float>,
                                      _ dout: UnsafePointer<Float>, _ gate: UnsafePointer<Float>,
                                      _ up: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let g = gate[i]
            let sigmoid = 1 / (1 + Foundation.exp(-g))
            dgate[i] += dout[i] * up[i] * sigmoid * (1 + g * (1 - sigmoid))
            dup[i] += dout[i] * g * sigmoid
        }
    }

    /// Rotary embedding backward, in place: turns dout [N × heads·D] into ∂L/∂x by the inverse rotation.
    public static func ropeBackward(_ d: UnsafeMutablePointer<Float>, rows N: Int, heads H: Int, headDim D: Int,
                                    cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let half = D / 2
        for n in 0..<N {
            let c = cos + n * half, s = sin + n * half
            for h in 0..<H {
                let v = d + (n * H + h) * D
                for i in 0..<half {
                    let d1 = v[i], d2 = v[i + half]
                    v[i] = d1 * c[i] + d2 * s[i]
                    v[i + half] = d2 * c[i] - d1 * s[i]
                }
            }
        }
    }
}
