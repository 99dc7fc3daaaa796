import Foundation

/// The Karcher (Riemannian) mean of all inputs on the unit hypersphere, each weighted 1/N, scaled by
/// the mean norm. Ignores `weight` and `base_model` (every input counts), as mergekit does.
public struct Karcher: MergeMethod {
    public init() {}
    public var name: String { "karcher" }
    public var globalParameters: [ParameterSpec] {
        [ParameterSpec("max_iter", default: .number(10)), ParameterSpec("tol", default: .number(1e-5))]
    }
    public var perModelParameters: [ParameterSpec] { [] }

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

        // uᵢ = xᵢ/‖xᵢ‖ stays implicit: every use is a dot product or an axpy with xᵢ scaled by 1/‖xᵢ‖.
        var mean = [Double](repeating: 0, count: n)
        for i in valid {
            let c = validAlpha / norms[i]
            for j in 0..<n { mean[j] += c * Double(tensors[i][j]) }
        }
        let meanNorm = Karcher.norm(mean)
        if meanNorm < tol {
            let first = valid[0]
            for j in 0..<n { mean[j] = Double(tensors[first][j]) / norms[first] }
        } else {
            for j in 0..<n { mean[j] /= meanNorm }
        }

        var tangent = [Double](repeating: 0, count: n)
        for _ in 0..<maxIterations {
            for j in 0..<n { tangent[j] = 0 }
            var alongMean = 0.0
            for i in valid {
                var d = 0.0
                for j in 0..<n { d += mean[j] * Double(tensors[i][j]) }
                let dot = min(max(d / norms[i], -1), 1)
                let theta = acos(dot)
                if theta < tol { continue }
                // α·θ/sin θ·(uᵢ − dot·m)
                let c = validAlpha * theta / sin(theta)
                let cx = c / norms[i]
                for j in 0..<n { tangent[j] += cx * Double(tensors[i][j]) }
                alongMean += c * dot
            }
            for j in 0..<n { tangent[j] -= alongMean * mean[j] }
            let tangentNorm = Karcher.norm(tangent)
            if tangentNorm < tol { break }
            let c = cos(tangentNorm), s = sin(tangentNorm) / tangentNorm
            for j in 0..<n { mean[j] = c * mean[j] + s * tangent[j] }
            let unitNorm = Karcher.norm(mean)
            if unitNorm > tol { for j in 0..<n { mean[j] /= unitNorm } }
        }
        // The scale uses the original 1/N weights, zero-norm inputs included.
        let scale = norms.reduce(0) { $0 + alpha * $1 }
        return (mean.map { Float(scale * $0) }, aligned.shape)
    }

    static func norm(_ v: [Double]) -> Double { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
}
