import AmalgamCore

/// The few vector loops the methods share. Reductions accumulate in Double so that long tensors do not
/// drift from mergekit's (pairwise) f32 reductions; element-wise work stays in f32.
enum Kernels {
    /// Σ aᵢ·bᵢ.
    static func dot(_ a: [Float], _ b: [Float]) -> Double {
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in dot(pa, pb) } }
    }

    static func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Double {
        precondition(a.count == b.count)
        // Eight f32 products summed into Double lanes keep the loop vectorised and the sum exact enough.
        var acc = SIMD8<Double>()
        let n = a.count, whole = n & ~7
        var i = 0
        while i < whole {
            let x = SIMD8<Double>(SIMD8<Float>(a[i..<i + 8]))
            let y = SIMD8<Double>(SIMD8<Float>(b[i..<i + 8]))
            acc += x * y
            i += 8
        }
        var total = acc.sum()
        while i < n { total += Double(a[i]) * Double(b[i]); i += 1 }
        return total
    }

    /// Σ aᵢ².
    static func sumOfSquares(_ a: [Float]) -> Double { dot(a, a) }

    /// ‖a‖₂.
    static func norm(_ a: [Float]) -> Double { sumOfSquares(a).squareRoot() }

    /// Σ |aᵢ|.
    static func l1(_ a: UnsafeBufferPointer<Float>) -> Double {
        var acc = SIMD8<Double>()
        let n = a.count, whole = n & ~7
        var i = 0
        while i < whole {
            let v = SIMD8<Double>(SIMD8<Float>(a[i..<i + 8]))
            acc += v.replacing(with: -v, where: v .< 0)
            i += 8
        }
        var total = acc.sum()
        while i < n { total += Double(abs(a[i])); i += 1 }
        return total
    }

    /// out = Σ wᵢ·xᵢ in f32, accumulated in input order as mergekit's `addcmul_` loop does; `fused`:
    /// each step one fused multiply-add, as torch's vectorised `addcmul_` computes it.
    static func weightedSum(_ tensors: [[Float]], weights: [Float], count: Int, fused: Bool = false) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { o in
            for (x, w) in zip(tensors, weights) {
                x.withUnsafeBufferPointer { xs in
                    if fused { for i in 0..<count { o[i].addProduct(xs[i], w) } }
                    else { for i in 0..<count { o[i] += xs[i] * w } }
                }
            }
        }
        return out
    }

    /// a − b element-wise.
    static func difference(_ a: [Float], _ b: [Float]) -> [Float] {
        [Float](unsafeUninitializedCapacity: a.count) { out, n in
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    for i in 0..<pa.count { out[i] = pa[i] - pb[i] }
                }
            }
            n = a.count
        }
    }

    /// a + b element-wise.
    static func sum(_ a: [Float], _ b: [Float]) -> [Float] {
        [Float](unsafeUninitializedCapacity: a.count) { out, n in
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    for i in 0..<pa.count { out[i] = pa[i] + pb[i] }
                }
            }
            n = a.count
        }
    }
}

extension Kernels {
    /// y += a·x.
    static func axpy(_ a: Float, _ x: [Float], into y: inout [Float]) {
        x.withUnsafeBufferPointer { xs in
            y.withUnsafeMutableBufferPointer { ys in
                for i in 0..<ys.count { ys[i] += a * xs[i] }
            }
        }
    }

    /// x *= a.
    static func scale(_ x: inout [Float], by a: Float) {
        x.withUnsafeMutableBufferPointer { xs in
            for i in 0..<xs.count { xs[i] *= a }
        }
    }
}
