import Foundation

/// The Karcher (Riemannian) mean of all inputs on the unit hypersphere, each weighted 1/N, scaled by
/// the mean norm. Ignores `weight` and `base_model` (every input counts), as mergekit does.
public struct Karcher: MergeMethod {
    /// The method; it has no configuration of its own.
    public init() {}
    /// "karcher".
    public var name: String { "karcher" }
    /// `max_iter` (10) and `tol` (1e-5).
    public var globalParameters: [ParameterSpec] {
        [ParameterSpec("max_iter", default: .number(10)), ParameterSpec("tol", default: .number(1e-5))]
    }
    /// None: every input weighs 1/N.
    public var perModelParameters: [ParameterSpec] { [] }

    /// Merges one tensor as the type's summary describes.
    public func merge(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (values: [Float], shape: [Int]) {
        let aligned = try align(inputs, context)
        let tensors = aligned.tensors
        if tensors.count == 1 { return (tensors[0], aligned.shape) }
        let maxIterations = Int(try globalNumber("max_iter", context))
        let tol = try globalNumber("tol", context)
        let n = aligned.elementCount
        let alpha = 1.0 / Double(tensors.count)
        let norms = tensors.map(Kernels.norm)
        let valid = tensors.indices.filter { norms[$0] > tol }
        if valid.isEmpty { return ([Float](repeating: 0, count: n), aligned.shape) }
        let validAlpha = 1.0 / Double(valid.count)

        // Vectors are f32 like mergekit's; every reduction is in Double. uᵢ = xᵢ/‖xᵢ‖ stays implicit:
        // each use is a dot product or an axpy with xᵢ scaled by 1/‖xᵢ‖.
        var mean = [Float](repeating: 0, count: n)
        for i in valid { Kernels.axpy(Float(validAlpha / norms[i]), tensors[i], into: &mean) }
        let meanNorm = Kernels.norm(mean)
        if meanNorm < tol {
            let first = valid[0]
            mean = tensors[first]
            Kernels.scale(&mean, by: Float(1 / norms[first]))
        } else {
            Kernels.scale(&mean, by: Float(1 / meanNorm))
        }

        var tangent = [Float](repeating: 0, count: n)
        for _ in 0..<maxIterations {
            Kernels.scale(&tangent, by: 0)
            var alongMean = 0.0
            for i in valid {
                let dot = min(max(Kernels.dot(mean, tensors[i]) / norms[i], -1), 1)
                let theta = acos(dot)
                if theta < tol { continue }
                // α·θ/sin θ·(uᵢ − dot·m): the uᵢ part now, the m part summed and applied once below.
                let c = validAlpha * theta / sin(theta)
                Kernels.axpy(Float(c / norms[i]), tensors[i], into: &tangent)
                alongMean += c * dot
            }
            Kernels.axpy(Float(-alongMean), mean, into: &tangent)
            let tangentNorm = Kernels.norm(tangent)
            if tangentNorm < tol { break }
            Kernels.scale(&mean, by: Float(cos(tangentNorm)))
            Kernels.axpy(Float(sin(tangentNorm) / tangentNorm), tangent, into: &mean)
            let unitNorm = Kernels.norm(mean)
            if unitNorm > tol { Kernels.scale(&mean, by: Float(1 / unitNorm)) }
        }
        // The scale uses the original 1/N weights, zero-norm inputs included.
        Kernels.scale(&mean, by: Float(norms.reduce(0) { $0 + alpha * $1 }))
        return (mean, aligned.shape)
    }
}
