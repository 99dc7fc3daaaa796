/// Weighted average: `Σ wᵢ·xᵢ`, divided by `Σ wᵢ` when `normalize` (mergekit computes this in f32 even
/// for bf16 models, so our numbers match to the last bit there too).
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
        var out = Kernels.weightedSum(aligned.tensors, weights: weights, count: aligned.elementCount)
        if try globalBool("normalize", context) {
            let total = weights.reduce(0, +)
            guard total != 0 else {
                throw fail(context, "the weights \(weights) sum to zero, so they cannot be normalised; "
                    + "change them or set `normalize: false`")
            }
            out.withUnsafeMutableBufferPointer { o in for i in o.indices { o[i] /= total } }
        }
        return (out, aligned.shape)
    }
}
