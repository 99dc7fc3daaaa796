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
        if context.rounding.followsMergekit {
            return (Karcher.mergekitMean(tensors, maxIterations: Int(try globalNumber("max_iter", context)),
                                         tol: try globalNumber("tol", context), context.rounding), aligned.shape)
        }
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

    /// mergekit's iterations on the vectors themselves, as torch computes them in the working dtype (the
    /// coefficient form above never forms the vectors, so it cannot round where torch does): norms in f32,
    /// the unit vectors, the running mean, each dot product (f32 accumulation, rounded once), θ, θ/sin θ,
    /// each step of the tangent and of the exponential map rounded. Where a 0-dim f32 tensor multiplies a
    /// tensor of the working dtype from the left (`cos(‖τ‖)·m`, `sin(‖τ‖)·…`, `scale·m`) torch first
    /// converts it to that dtype; as a divisor it stays f32.
    static func mergekitMean(_ tensors: [[Float]], maxIterations: Int, tol: Double, _ r: Rounding) -> [Float] {
        let n = tensors[0].count, k = tensors.count
        let alphas = [Double](repeating: 1.0 / Double(k), count: k)
        func norm(_ v: [Float]) -> Float { Float(Kernels.norm(v)) }
        let norms = tensors.map(norm)
        let units = zip(tensors, norms).map { t, length in length == 0 ? [Float](repeating: 0, count: n) : t.map { r($0 / length) } }
        let valid = (0..<k).filter { Double(norms[$0]) > tol }
        if valid.isEmpty { return [Float](repeating: 0, count: n) }
        let alphaSum = valid.reduce(0.0) { $0 + alphas[$1] }
        let weights = valid.map { Float(alphas[$0] / alphaSum) }

        var mean = [Float](repeating: 0, count: n)
        for (a, i) in zip(weights, valid) { for j in 0..<n { mean[j] = r(mean[j] + r(a * units[i][j])) } }
        let meanNorm = norm(mean)
        mean = Double(meanNorm) < tol ? units[valid[0]] : mean.map { r($0 / meanNorm) }
        for _ in 0..<maxIterations {
            var tangent = [Float](repeating: 0, count: n)
            for (a, i) in zip(weights, valid) {
                let u = units[i]
                var d = 0.0
                for j in 0..<n { d += Double(mean[j]) * Double(u[j]) }
                let dot = min(max(r(Float(d)), -1), 1)
                let theta = r(Float(acos(Double(dot))))
                if Double(theta) < tol { continue }
                let q = r(a * r(theta / r(Float(sin(Double(theta))))))
                for j in 0..<n { tangent[j] = r(tangent[j] + r(q * r(u[j] - r(dot * mean[j])))) }
            }
            let tangentNorm = norm(tangent)
            if Double(tangentNorm) < tol { break }
            let c = r(Float(cos(Double(tangentNorm)))), s = r(Float(sin(Double(tangentNorm))))
            for j in 0..<n { mean[j] = r(r(c * mean[j]) + r(s * r(tangent[j] / tangentNorm))) }
            let unitNorm = norm(mean)
            if Double(unitNorm) > tol { mean = mean.map { r($0 / unitNorm) } }
        }
        // The scale uses the original 1/N weights, zero-norm inputs included (an f32 sum).
        var scale: Float = 0
        for (a, length) in zip(alphas, norms) { scale += Float(a) * length }
        let rounded = r(scale)
        return mean.map { r(rounded * $0) }
    }
}
