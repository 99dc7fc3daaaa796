import Foundation

/// Multi-SLERP: barycentric interpolation on the hypersphere of any number of models (their task
/// vectors if there is a base): project onto the tangent space at the weighted mean direction, mix
/// there, map back with the exponential map and scale by the weighted mean norm.
public struct MultiSlerp: MergeMethod {
    /// The method; it has no configuration of its own.
    public init() {}
    /// The name configs use.
    public var name: String { "multislerp" }
    /// Parameters read once per tensor, with mergekit 0.1.5's defaults.
    public var globalParameters: [ParameterSpec] {
        [ParameterSpec("normalize_weights", default: .bool(true)), ParameterSpec("eps", default: .number(1e-8))]
    }
    /// Parameters read for each model, with mergekit 0.1.5's defaults.
    public var perModelParameters: [ParameterSpec] { [ParameterSpec("weight", default: nil, nonBaseOnly: true)] }

    /// Merges one tensor as the type's summary describes.
    public func merge(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (values: [Float], shape: [Int]) {
        let aligned = try align(inputs, context)
        let others = aligned.nonBaseIndices
        guard !others.isEmpty else { throw fail(context, "needs at least one model besides the base") }
        // mergekit returns a lone non-base model as it is, base or not.
        if others.count == 1 { return (aligned.tensors[others[0]], aligned.shape) }
        var weights: [Double] = []
        for index in others { weights.append(try modelNumber("weight", inputs[index], context)) }
        if try globalBool("normalize_weights", context) {
            let total = weights.reduce(0, +)
            weights = weights.map { $0 / total }
        }
        let eps = try globalNumber("eps", context)
        let base = aligned.base
        let vectors = others.map { index in base.map { Kernels.difference(aligned.tensors[index], $0) } ?? aligned.tensors[index] }
        let norms = vectors.map(Kernels.norm)
        let n = aligned.elementCount

        // m = Σ wᵢ·xᵢ/(‖xᵢ‖+eps): the weighted mean of the unit vectors (f32 vectors, Double reductions).
        var mean = [Float](repeating: 0, count: n)
        for (x, (w, norm)) in zip(vectors, zip(weights, norms)) { Kernels.axpy(Float(w / (norm + eps)), x, into: &mean) }
        let meanNorm = Kernels.norm(mean)
        if meanNorm < eps {
            guard vectors.count == 2 else {
                throw fail(context, "the weighted sum of the unit task vectors is zero (antipodal models with "
                    + "balancing weights); change the weights")
            }
            var out = [Float](repeating: 0, count: n)
            Kernels.axpy(Float(weights[0]), vectors[0], into: &out)
            Kernels.axpy(Float(weights[1]), vectors[1], into: &out)
            return (base.map { Kernels.sum($0, out) } ?? out, aligned.shape)
        }
        // τ = Σ wᵢ(uᵢ − (uᵢ·m̂)m̂) = m − (Σ wᵢ(uᵢ·m̂))·m̂ with m̂ = m/‖m‖.
        var projection = 0.0
        for (x, (w, norm)) in zip(vectors, zip(weights, norms)) {
            projection += w * Kernels.dot(x, mean) / meanNorm / (norm + eps)
        }
        var tangent = mean
        Kernels.axpy(Float(-projection / meanNorm), mean, into: &tangent)
        let tangentNorm = Kernels.norm(tangent) + eps
        let scale = zip(norms, weights).reduce(0.0) { $0 + $1.0 * $1.1 }
        // out = (m̂·cos‖τ‖ + τ·sin‖τ‖/‖τ‖)·Σ wᵢ‖xᵢ‖
        var out = mean
        Kernels.scale(&out, by: Float(cos(tangentNorm) / meanNorm * scale))
        Kernels.axpy(Float(sin(tangentNorm) / tangentNorm * scale), tangent, into: &out)
        return (base.map { Kernels.sum($0, out) } ?? out, aligned.shape)
    }
}
