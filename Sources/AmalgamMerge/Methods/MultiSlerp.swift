import Foundation

/// Multi-SLERP: barycentric interpolation on the hypersphere of any number of models (their task
/// vectors if there is a base): project onto the tangent space at the weighted mean direction, mix
/// there, map back with the exponential map and scale by the weighted mean norm.
///
/// Every vector involved is a combination of the task vectors, so the result is `base + Σ cᵢ·τᵢ` with
/// coefficients from the task vectors' Gram matrix (f64): one read for the Gram matrix, one for the
/// output, whole or in chunks (`MultiSlerpChunks`).
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
        if context.rounding.followsMergekit {
            return (try mergekitMerge(inputs, aligned.tensors, others: others, base: aligned.base, context: context), aligned.shape)
        }
        let weights = try self.weights(inputs, others: others, context: context)
        let base = aligned.base
        let models = others.map { aligned.tensors[$0] }
        let gram = Gram.of(base.map { b in models.map { Kernels.difference($0, b) } } ?? models)
        let coefficients = try self.coefficients(gram: gram, weights: weights, eps: try globalNumber("eps", context), context: context)
        return (Gram.combine(models, coefficients: coefficients, base: base), aligned.shape)
    }

    /// The non-base models' weights, normalised to sum 1 when `normalize_weights` is set.
    func weights(_ inputs: [MergeInput], others: [Int], context: MergeContext) throws(MergeError) -> [Double] {
        var weights: [Double] = []
        for index in others { weights.append(try modelNumber("weight", inputs[index], context)) }
        if try globalBool("normalize_weights", context) {
            let total = weights.reduce(0, +)
            weights = weights.map { $0 / total }
        }
        return weights
    }

    /// The coefficients `cᵢ` of the result `base + Σ cᵢ·τᵢ`, from the Gram matrix of the task vectors:
    /// m = Σ wᵢ·τᵢ/(‖τᵢ‖+eps) (the weighted mean of the unit vectors), τ = m − (Σ wᵢ(uᵢ·m̂))·m̂, and
    /// out = (m̂·cos‖τ‖ + τ·sin‖τ‖/‖τ‖)·Σ wᵢ‖τᵢ‖, all kept as multiples of the coefficient vector of m.
    func coefficients(gram: [[Double]], weights: [Double], eps: Double, context: MergeContext) throws(MergeError) -> [Float] {
        let k = gram.count
        let norms = (0..<k).map { gram[$0][$0].squareRoot() }
        let mean = (0..<k).map { weights[$0] / (norms[$0] + eps) }
        let meanNorm = Gram.norm(gram, mean)
        if meanNorm < eps {
            guard k == 2 else {
                throw fail(context, "the weighted sum of the unit task vectors is zero (antipodal models with "
                    + "balancing weights); change the weights")
            }
            return weights.map { Float($0) }
        }
        let dots = Gram.products(gram, mean)
        var projection = 0.0
        for i in 0..<k { projection += weights[i] * dots[i] / meanNorm / (norms[i] + eps) }
        // τ = (1 − projection/‖m‖)·m.
        let along = 1 - projection / meanNorm
        let tangentNorm = abs(along) * meanNorm + eps
        let scale = zip(norms, weights).reduce(0.0) { $0 + $1.0 * $1.1 }
        let factor = cos(tangentNorm) / meanNorm * scale + along * sin(tangentNorm) / tangentNorm * scale
        return mean.map { Float($0 * factor) }
    }

    /// mergekit's `multislerp` in the working dtype, on the vectors themselves (the Gram form above never
    /// forms them, so it cannot round where torch does): task vectors, weights (a tensor of that dtype,
    /// normalised by their sum), norms, unit vectors `τ/(‖τ‖+eps)`, the weighted mean and its norm, the
    /// unit mean, each unit vector's dot with it, the tangent vectors and their weighted sum, its norm
    /// `+ eps`, the exponential map, the weighted mean norm and the scaled result, each rounded as one
    /// torch operation (sums accumulated in f64 here, f32 in torch, then rounded).
    func mergekitMerge(_ inputs: [MergeInput], _ tensors: [[Float]], others: [Int], base: [Float]?,
                       context: MergeContext) throws(MergeError) -> [Float] {
        let r = context.rounding
        let eps = Float(try globalNumber("eps", context))
        var weights: [Float] = []
        for index in others { weights.append(r(Float(try modelNumber("weight", inputs[index], context)))) }
        if try globalBool("normalize_weights", context) {
            let total = r(Float(weights.reduce(0.0) { $0 + Double($1) }))
            weights = weights.map { r($0 / total) }
        }
        let vectors = others.map { i in
            guard let base else { return tensors[i] }
            var v = Kernels.difference(tensors[i], base)
            r.apply(&v)
            return v
        }
        let n = vectors[0].count
        func norm(_ v: [Float]) -> Float { r(Float(Kernels.norm(v))) }
        /// Σ over the models of `term(model, j)`, accumulated wide and rounded once.
        func sum(_ term: (Int, Int) -> Float) -> [Float] {
            (0..<n).map { j in r(Float(vectors.indices.reduce(0.0) { $0 + Double(term($1, j)) })) }
        }
        func withBase(_ v: [Float]) -> [Float] {
            guard let base else { return v }
            return (0..<n).map { r(v[$0] + base[$0]) }
        }
        let norms = vectors.map(norm)
        let units = vectors.indices.map { m in vectors[m].map { r($0 / r(norms[m] + eps)) } }
        var mean = sum { m, j in r(units[m][j] * weights[m]) }
        let meanNorm = norm(mean)
        if meanNorm < eps {
            guard vectors.count == 2 else {
                throw fail(context, "the weighted sum of the unit task vectors is zero (antipodal models with "
                    + "balancing weights); change the weights")
            }
            return withBase((0..<n).map { r(r(vectors[0][$0] * weights[0]) + r(vectors[1][$0] * weights[1])) })
        }
        mean = mean.map { r($0 / meanNorm) }
        let dots = units.map { u in r(Float((0..<n).reduce(0.0) { $0 + Double(r(u[$1] * mean[$1])) })) }
        let tangents = units.indices.map { m in (0..<n).map { r(units[m][$0] - r(dots[m] * mean[$0])) } }
        let tangent = sum { m, j in r(tangents[m][j] * weights[m]) }
        let tangentNorm = r(norm(tangent) + eps)
        let cosine = r(Float(cos(Double(tangentNorm))))
        let sineRatio = r(r(Float(sin(Double(tangentNorm)))) / tangentNorm)
        let averageNorm = r(Float(zip(norms, weights).reduce(0.0) { $0 + Double(r($1.0 * $1.1)) }))
        return withBase((0..<n).map { r(r(r(mean[$0] * cosine) + r(tangent[$0] * sineRatio)) * averageNorm) })
    }
}
