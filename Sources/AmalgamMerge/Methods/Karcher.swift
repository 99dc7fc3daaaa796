import Foundation

/// The Karcher (Riemannian) mean of all inputs on the unit hypersphere, each weighted 1/N, scaled by
/// the mean norm. Ignores `weight` and `base_model` (every input counts), as mergekit does.
///
/// The mean and the tangent of every iteration are combinations of the inputs, so the iterations run on
/// their coefficients, from the inputs' Gram matrix (f64 dot products): the tensor is read once for
/// the Gram matrix and once for the output `Σ cᵢ·xᵢ`, whole or in chunks (`KarcherChunks`).
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
        let coefficients = Karcher.coefficients(gram: Gram.of(tensors), maxIterations: Int(try globalNumber("max_iter", context)),
                                                tol: try globalNumber("tol", context))
        return (Gram.combine(tensors, coefficients: coefficients, base: nil), aligned.shape)
    }

    /// The coefficients `cᵢ` of the result `Σ cᵢ·xᵢ`, from the inputs' Gram matrix `gram[i][j] = xᵢ·xⱼ`:
    /// mergekit's iterations with the mean m = Σ aᵢ·xᵢ and the tangent kept as coefficient vectors
    /// (‖Σ aᵢ·xᵢ‖² = aᵀ·G·a, xᵢ·m = (G·a)ᵢ), all in f64.
    static func coefficients(gram: [[Double]], maxIterations: Int, tol: Double) -> [Float] {
        let k = gram.count
        let alpha = 1.0 / Double(k)
        let norms = (0..<k).map { gram[$0][$0].squareRoot() }
        let valid = (0..<k).filter { norms[$0] > tol }
        if valid.isEmpty { return [Float](repeating: 0, count: k) }
        let validAlpha = 1.0 / Double(valid.count)

        var mean = [Double](repeating: 0, count: k)
        for i in valid { mean[i] = validAlpha / norms[i] }
        let meanNorm = Gram.norm(gram, mean)
        if meanNorm < tol {
            mean = [Double](repeating: 0, count: k)
            mean[valid[0]] = 1 / norms[valid[0]]
        } else {
            for i in 0..<k { mean[i] /= meanNorm }
        }
        for _ in 0..<maxIterations {
            let projections = Gram.products(gram, mean)
            var tangent = [Double](repeating: 0, count: k)
            var alongMean = 0.0
            for i in valid {
                let dot = min(max(projections[i] / norms[i], -1), 1)
                let theta = acos(dot)
                if theta < tol { continue }
                // α·θ/sin θ·(uᵢ − dot·m): the uᵢ part now, the m part summed and applied once below.
                let c = validAlpha * theta / sin(theta)
                tangent[i] += c / norms[i]
                alongMean += c * dot
            }
            for i in 0..<k { tangent[i] -= alongMean * mean[i] }
            let tangentNorm = Gram.norm(gram, tangent)
            if tangentNorm < tol { break }
            for i in 0..<k { mean[i] = mean[i] * cos(tangentNorm) + tangent[i] * (sin(tangentNorm) / tangentNorm) }
            let unitNorm = Gram.norm(gram, mean)
            if unitNorm > tol { for i in 0..<k { mean[i] /= unitNorm } }
        }
        // The scale uses the original 1/N weights, zero-norm inputs included.
        let scale = norms.reduce(0) { $0 + alpha * $1 }
        return mean.map { Float($0 * scale) }
    }
}
