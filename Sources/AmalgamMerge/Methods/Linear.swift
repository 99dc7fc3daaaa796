/// Weighted average: `Σ wᵢ·xᵢ`, divided by `Σ wᵢ` when `normalize` (mergekit computes this in f32 even
/// for bf16 models; with `--arithmetic mergekit` our numbers are its bytes, fused multiply-adds included).
public struct Linear: MergeMethod {
    /// The method; it has no configuration of its own.
    public init() {}
    /// The name configs use.
    public var name: String { "linear" }
    /// Parameters read once per tensor, with mergekit 0.1.5's defaults.
    public var globalParameters: [ParameterSpec] { [ParameterSpec("normalize", default: .bool(true))] }
    /// Parameters read for each model, with mergekit 0.1.5's defaults.
    public var perModelParameters: [ParameterSpec] { [ParameterSpec("weight", default: nil)] }

    /// Merges one tensor as the type's summary describes.
    public func merge(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (values: [Float], shape: [Int]) {
        let aligned = try align(inputs, context)
        var weights: [Float] = []
        for input in inputs { weights.append(Float(try modelNumber("weight", input, context))) }
        // mergekit 0.1.5 computes linear in f32 whatever the dtype, each term a fused multiply-add
        // (torch's `addcmul_`); our exact arithmetic rounds the product first.
        var out = Kernels.weightedSum(aligned.tensors, weights: weights, count: aligned.elementCount,
                                      fused: context.rounding.followsMergekit)
        if try globalBool("normalize", context) {
            let total = weights.reduce(0, +)
            guard total != 0 else {
                throw fail(context, "the weights \(weights) sum to zero, so they cannot be normalised; "
                    + "change them or set `normalize: false`")
            }
            out.withUnsafeMutableBufferPointer { o in for i in o.indices { o[i] /= total } }
        }
        // mergekit returns the f32 result in the inputs' dtype (an `out_dtype` of f32 keeps that rounding).
        context.rounding.apply(&out)
        return (out, aligned.shape)
    }
}

extension Linear: ChunkedMergeMethod {
    /// Element-wise: no statistics pass.
    func chunkedKernel(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (any ChunkedKernel)? {
        var weights: [Float] = []
        for input in inputs { weights.append(Float(try modelNumber("weight", input, context))) }
        let total = weights.reduce(0, +)
        let normalize = try globalBool("normalize", context)
        if normalize && total == 0 { return nil }
        return WeightedSumChunks(weights: weights, divisor: normalize ? total : nil)
    }
}

/// `Σ wᵢ·xᵢ` (then `/ divisor`) tile by tile, in the same order of operations as `Kernels.weightedSum`.
final class WeightedSumChunks: ChunkedKernel, @unchecked Sendable {
    let weights: [Float]
    let divisor: Float?

    init(weights: [Float], divisor: Float?) {
        self.weights = weights
        self.divisor = divisor
    }

    func prepare(workers: Int, chunks: Int, tileSize: Int) {}
    func beginPass(_ pass: Int) -> Bool { false }
    func gather(_ tile: ChunkTile) {}
    func endPass() {}

    func apply(_ tile: ChunkTile, into out: UnsafeMutablePointer<Float>) {
        let m = tile.count
        guard let w0 = weights.first else { out.update(repeating: 0, count: m); return }
        // The first input writes `0 + w·x` (a sum from 0: −0 becomes +0), so no pass clears `out` first; a
        // divisor of 1 changes nothing and is skipped.
        let x0 = tile.input(0)
        for j in 0..<m { out[j] = 0 + x0[j] * w0 }
        for i in weights.indices.dropFirst() {
            let x = tile.input(i), w = weights[i]
            for j in 0..<m { out[j] += x[j] * w }
        }
        if let divisor, divisor != 1 { for j in 0..<m { out[j] /= divisor } }
    }
}
