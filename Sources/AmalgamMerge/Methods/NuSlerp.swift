import Foundation

/// NuSLERP: spherical interpolation of exactly two non-base models with `t = w₂/(w₁+w₂)`; with a base,
/// of their task vectors (then added back). Over the whole tensor (`nuslerp_flatten`, default), or
/// per row of the last dim, or per column (`nuslerp_row_wise`).
public struct NuSlerp: MergeMethod {
    /// The method; it has no configuration of its own.
    public init() {}
    /// The name configs use.
    public var name: String { "nuslerp" }
    /// Parameters read once per tensor, with mergekit 0.1.5's defaults.
    public var globalParameters: [ParameterSpec] {
        [ParameterSpec("nuslerp_flatten", default: .bool(true)), ParameterSpec("nuslerp_row_wise", default: .bool(false))]
    }
    /// Parameters read for each model, with mergekit 0.1.5's defaults.
    public var perModelParameters: [ParameterSpec] { [ParameterSpec("weight", default: nil, nonBaseOnly: true)] }
    /// A tensor only one model has passes through unchanged.
    public var missingTensorPolicy: MissingTensorPolicy { .passthroughSingleton }

    /// Merges one tensor as the type's summary describes.
    public func merge(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (values: [Float], shape: [Int]) {
        let aligned = try align(inputs, context)
        let others = aligned.nonBaseIndices
        if inputs.count == 1 { return (aligned.tensors[0], aligned.shape) }
        guard others.count == 2 else {
            throw fail(context, "interpolates exactly two models besides the base, got \(others.count): "
                + others.map { aligned.models[$0] }.joined(separator: ", ") + "; use multislerp for more")
        }
        let w1 = try modelNumber("weight", inputs[others[0]], context)
        let w2 = try modelNumber("weight", inputs[others[1]], context)
        let total = w1 + w2
        let t = abs(total) < 1e-6 ? 0.5 : w2 / total
        var v0 = aligned.tensors[others[0]], v1 = aligned.tensors[others[1]]
        let r = context.rounding
        if let base = aligned.base {
            v0 = Kernels.difference(v0, base)
            v1 = Kernels.difference(v1, base)
            r.apply(&v0)
            r.apply(&v1)
        }
        let flatten = try globalBool("nuslerp_flatten", context)
        let rowWise = try globalBool("nuslerp_row_wise", context)
        let shape = aligned.shape
        let n = v0.count
        // The vectors interpolated: `count` of them, each `length` long with elements `stride` apart.
        let (count, length, stride): (Int, Int, Int)
        if flatten || shape.count < 2 {
            (count, length, stride) = (1, n, 1)
        } else if rowWise {
            (count, length, stride) = (n / shape[0], shape[0], n / shape[0])
        } else {
            (count, length, stride) = (n / shape[shape.count - 1], shape[shape.count - 1], 1)
        }
        var out = [Float](repeating: 0, count: n)
        var a = [Float](repeating: 0, count: length), b = a
        for v in 0..<count {
            let start = stride == 1 ? v * length : v
            for j in 0..<length { a[j] = v0[start + j * stride]; b[j] = v1[start + j * stride] }
            if r.followsMergekit {
                let result = NuSlerp.mergekitInterpolation(t: t, a, b, r)
                for j in 0..<length { out[start + j * stride] = result[j] }
                continue
            }
            let (c0, c1) = NuSlerp.coefficients(t: t, a, b)
            for j in 0..<length { out[start + j * stride] = c0 * a[j] + c1 * b[j] }
        }
        if let base = aligned.base {
            out = Kernels.sum(base, out)
            r.apply(&out)
        }
        return (out, shape)
    }

    /// The coefficients of `a` and `b`: `sin((1−t)θ)/sin θ` and `sin(tθ)/sin θ` with θ the angle between
    /// them (norms clamped at 1e-7), or `1−t` and `t` when they are colinear (`1 − cos²θ ≤ 1e-16`).
    static func coefficients(t: Double, _ a: [Float], _ b: [Float]) -> (Float, Float) {
        coefficients(t: t, squaresA: Kernels.sumOfSquares(a), squaresB: Kernels.sumOfSquares(b), dot: Kernels.dot(a, b))
    }

    /// The coefficients from `Σa²`, `Σb²` and `Σa·b`.
    static func coefficients(t: Double, squaresA: Double, squaresB: Double, dot: Double) -> (Float, Float) {
        let na = max(squaresA.squareRoot(), 1e-7), nb = max(squaresB.squareRoot(), 1e-7)
        let cosTheta = min(max(dot / (na * nb), -1), 1)
        if 1 - cosTheta * cosTheta <= 1e-16 { return (Float(1 - t), Float(t)) }
        let theta = acos(cosTheta)
        let s = sin(theta)
        return (Float(sin((1 - t) * theta) / s), Float(sin(t * theta) / s))
    }

    /// mergekit's `nuslerp` of one vector pair in the working dtype, each torch operation rounded: the
    /// norms (clamped at 1e-7), the unit vectors, their products and the dot product (a sum, rounded once),
    /// `1 − cos²` against 1e-16 for colinearity, θ = acos, sin θ, sin((1−t)θ), sin(tθ), then
    /// `(sin((1−t)θ)·a + sin(tθ)·b) / sin θ` element by element (`(1−t)·a + t·b` when colinear).
    /// Reductions are accumulated in f64 (torch: f32 in its own order), then rounded.
    static func mergekitInterpolation(t: Double, _ a: [Float], _ b: [Float], _ r: Rounding) -> [Float] {
        let n = a.count
        let floor = r(1e-7)
        let na = max(r(Float(Kernels.sumOfSquares(a).squareRoot())), floor)
        let nb = max(r(Float(Kernels.sumOfSquares(b).squareRoot())), floor)
        var dot = 0.0
        for j in 0..<n { dot += Double(r(r(a[j] / na) * r(b[j] / nb))) }
        let cosTheta = min(max(r(Float(dot)), -1), 1)
        let u = Float(1 - t), v = Float(t)
        var out = [Float](repeating: 0, count: n)
        if r(1 - r(cosTheta * cosTheta)) <= 1e-16 {
            for j in 0..<n { out[j] = r(r(u * a[j]) + r(v * b[j])) }
            return out
        }
        let theta = r(Float(acos(Double(cosTheta))))
        let sinTheta = r(Float(sin(Double(theta))))
        let s0 = r(Float(sin(Double(r(u * theta))))), s1 = r(Float(sin(Double(r(v * theta)))))
        for j in 0..<n { out[j] = r(r(r(s0 * a[j]) + r(s1 * b[j])) / sinTheta) }
        return out
    }
}
