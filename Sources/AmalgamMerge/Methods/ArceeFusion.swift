import Foundation

/// Arcee Fusion: take the other model's value only where its importance `|b − a|·KL(softmax b ‖ softmax a)`
/// (KL per row of the last dim) is an outlier: at least `median + 1.5·IQR` of all importances.
public struct ArceeFusion: MergeMethod {
    /// The method; it has no configuration of its own.
    public init() {}
    /// The name configs use.
    public var name: String { "arcee_fusion" }
    /// Parameters read once per tensor, with mergekit 0.1.5's defaults.
    public var globalParameters: [ParameterSpec] { [] }
    /// Parameters read for each model, with mergekit 0.1.5's defaults.
    public var perModelParameters: [ParameterSpec] { [] }
    /// The config must name a `base_model`.
    public var requiresBase: Bool { true }
    /// A tensor only one model has passes through unchanged.
    public var missingTensorPolicy: MissingTensorPolicy { .passthroughSingleton }

    /// Merges one tensor as the type's summary describes.
    public func merge(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (values: [Float], shape: [Int]) {
        if inputs.count == 1 { return (inputs[0].values, inputs[0].shape) }
        let baseIndex = try requireBase(context)
        let aligned = try align(inputs, context)
        guard inputs.count == 2 else {
            throw fail(context, "fuses the base and exactly one other model, got \(inputs.count)")
        }
        let a = aligned.tensors[baseIndex], b = aligned.tensors[1 - baseIndex]
        let n = a.count
        if n == 0 { return (a, aligned.shape) }
        let rowLength = aligned.shape.last ?? 1
        var importance = [Float](repeating: 0, count: n)
        var row = 0
        while row * rowLength < n {
            let range = row * rowLength..<(row + 1) * rowLength
            let kl = Float(ArceeFusion.divergence(b[range], a[range]))
            for j in range { importance[j] = abs(b[j] - a[j]) * kl }
            row += 1
        }
        // Quantiles as mergekit reads them: sorted[int(q·(n−1))] with q·(n−1) in f32. mergekit samples
        // a million elements above that size; we use all of them.
        var keys = importance.map { $0.bitPattern }   // importances are ≥ 0: bit order is numeric order
        func quantile(_ q: Float) -> Float {
            let index = Int(q * Float(n - 1))
            return Float(bitPattern: keys.withUnsafeMutableBufferPointer { Selection.nthElement($0, index) })
        }
        let q1 = quantile(0.25), median = quantile(0.5), q3 = quantile(0.75)
        let threshold = median + 1.5 * (q3 - q1)
        var out = a
        for i in 0..<n where importance[i] >= threshold { out[i] = a[i] + (b[i] - a[i]) }
        return (out, aligned.shape)
    }

    /// Σ p·log(p/q) with p = softmax(x) + 1e-8, q = softmax(y) + 1e-8.
    static func divergence(_ x: ArraySlice<Float>, _ y: ArraySlice<Float>) -> Double {
        let p = softmax(x), q = softmax(y)
        var total = 0.0
        for (pi, qi) in zip(p, q) {
            let pe = Double(Float(pi) + 1e-8), qe = Double(Float(qi) + 1e-8)
            total += pe * log(pe / qe)
        }
        return total
    }

    static func softmax(_ x: ArraySlice<Float>) -> [Double] {
        let top = Double(x.max() ?? 0)
        let e = x.map { exp(Double($0) - top) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }
}
