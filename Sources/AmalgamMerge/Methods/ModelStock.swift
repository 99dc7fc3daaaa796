/// Model Stock: interpolate between the base and the average of the others by
/// `t = N·cos/(1 + (N−1)·cos)`, cos the mean pairwise cosine of the task vectors, over the whole tensor
/// or (`filter_wise`) per row of the last dim.
public struct ModelStock: MergeMethod {
    /// The method; it has no configuration of its own.
    public init() {}
    /// The name configs use.
    public var name: String { "model_stock" }
    /// Parameters read once per tensor, with mergekit 0.1.5's defaults.
    public var globalParameters: [ParameterSpec] { [ParameterSpec("filter_wise", default: .bool(false))] }
    /// Parameters read for each model, with mergekit 0.1.5's defaults.
    public var perModelParameters: [ParameterSpec] { [] }
    /// The config must name a `base_model`.
    public var requiresBase: Bool { true }
    /// With fewer than three inputs the base alone passes through; otherwise the tensor is skipped.
    public var missingTensorPolicy: MissingTensorPolicy { .baseOrSkip(minimumInputs: 3) }

    /// Merges one tensor as the type's summary describes.
    public func merge(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (values: [Float], shape: [Int]) {
        let baseIndex = try requireBase(context)
        let aligned = try align(inputs, context)
        let others = aligned.nonBaseIndices
        guard others.count >= 2 else {
            throw fail(context, "needs the base and at least two other models, got \(others.count) besides the base")
        }
        let shape = aligned.shape
        let base = aligned.tensors[baseIndex]
        let r = context.rounding
        let offsets = others.map { o in
            var d = Kernels.difference(aligned.tensors[o], base)
            r.apply(&d)
            return d
        }
        let n = base.count
        let rowLength = (try globalBool("filter_wise", context)) && !shape.isEmpty ? shape[shape.count - 1] : n
        let count = Double(others.count)
        // mergekit's arithmetic: `sum(ws) / N` is Python's sum, one rounded addition per model.
        var average = [Float](repeating: 0, count: n)
        if r.followsMergekit {
            for o in others { for j in 0..<n { average[j] = r(average[j] + aligned.tensors[o][j]) } }
            for j in 0..<n { average[j] = r(average[j] / Float(count)) }
        }
        var out = [Float](repeating: 0, count: n)
        var row = 0
        while row * rowLength < n || (n == 0 && row == 0) {
            let range = row * rowLength..<min(n, (row + 1) * rowLength)
            let t = r.followsMergekit ? Self.mergekitT(offsets, range, r) : Self.t(offsets, range)
            if r.followsMergekit {
                // Each torch operation rounded: t·avg, 1 − t, (1 − t)·base, their sum.
                for j in range { out[j] = r(r(t * average[j]) + r(r(1 - t) * base[j])) }
            } else {
                for j in range {
                    var sum: Float = 0
                    for o in others { sum += aligned.tensors[o][j] }
                    out[j] = t * (sum / Float(count)) + (1 - t) * base[j]
                }
            }
            row += 1
            if n == 0 { break }
        }
        return (out, shape)
    }

    /// `t` of one row (or the whole tensor) from the task vectors' mean pairwise cosine, in f64.
    static func t(_ offsets: [[Float]], _ range: Range<Int>) -> Float {
        let count = Double(offsets.count)
        var cosSum = 0.0, pairs = 0.0
        let norms = offsets.map { o in o[range].reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }
        for a in offsets.indices {
            for b in offsets.indices where b > a {
                var d = 0.0
                for j in range { d += Double(offsets[a][j]) * Double(offsets[b][j]) }
                cosSum += min(max(d / max(norms[a] * norms[b], 1e-6), -1), 1)
                pairs += 1
            }
        }
        let cosTheta = cosSum / pairs
        let denominator = 1 + (count - 1) * cosTheta
        // At the singularity mergekit keeps the base for that row.
        return Float(abs(denominator) < 1e-6 ? 0 : count * cosTheta / denominator)
    }

    /// `t` as mergekit computes it in the working dtype: each norm, product, dot product (a sum, rounded
    /// once), cosine, mean and step of `N·cos/(1 + (N−1)·cos)` rounded. Sums are accumulated in f64, where
    /// torch accumulates in f32 in its own order: on large tensors the two can round differently
    /// (docs/mergekit-differences.md).
    static func mergekitT(_ offsets: [[Float]], _ range: Range<Int>, _ r: Rounding) -> Float {
        let count = Float(offsets.count)
        let norms = offsets.map { o in r(Float(o[range].reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())) }
        var cosines: [Float] = []
        for a in offsets.indices {
            for b in offsets.indices where b > a {
                var d = 0.0
                for j in range { d += Double(r(offsets[a][j] * offsets[b][j])) }
                let product = max(r(norms[a] * norms[b]), r(1e-6))
                cosines.append(min(max(r(r(Float(d)) / product), -1), 1))
            }
        }
        let cosTheta = r(Float(cosines.reduce(0.0) { $0 + Double($1) }) / Float(cosines.count))
        let denominator = r(1 + r((count - 1) * cosTheta))
        return abs(denominator) < 1e-6 ? 0 : r(r(count * cosTheta) / denominator)
    }
}
