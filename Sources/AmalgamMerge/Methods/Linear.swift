/// Weighted average: `Σ wᵢ·xᵢ`, divided by `Σ wᵢ` when `normalize` (mergekit computes this in f32 even
/// for bf16 models, so our numbers match to the last bit there too).
public struct Linear: MergeMethod {
    public init() {}
    public var name: String { "linear" }
    public var globalParameters: [ParameterSpec] { [ParameterSpec("normalize", default: .bool(true))] }
    public var perModelParameters: [ParameterSpec] { [ParameterSpec("weight", default: nil)] }

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

/// One model's tensor, optionally multiplied by its `scale` (layer stacking with `slices`).
public struct Passthrough: MergeMethod {
    public init() {}
    public var name: String { "passthrough" }
    public var globalParameters: [ParameterSpec] { [] }
    /// mergekit's default is "no scale"; multiplying by 1 is exact, so 1 stands for it.
    public var perModelParameters: [ParameterSpec] { [ParameterSpec("scale", default: .number(1))] }

    public func merge(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (values: [Float], shape: [Int]) {
        guard inputs.count == 1 else {
            throw fail(context, "takes exactly one model per tensor, got \(inputs.count) ("
                + inputs.map(\.model).joined(separator: ", ") + "); use `slices:` with one source each")
        }
        let input = inputs[0]
        let scale = Float(try modelNumber("scale", input, context))
        if scale == 1 { return (input.values, input.shape) }
        return (input.values.map { $0 * scale }, input.shape)
    }
}

/// NearSwap: take the other model's value where it is within `t` of the base,
/// `w = clamp(t / max(|a − b|, 1e-6), 0, 1)`, `out = w·b + (1 − w)·a`.
public struct NearSwap: MergeMethod {
    public init() {}
    public var name: String { "nearswap" }
    public var globalParameters: [ParameterSpec] { [ParameterSpec("t", default: nil)] }
    public var perModelParameters: [ParameterSpec] { [] }
    public var requiresBase: Bool { true }

    public func merge(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (values: [Float], shape: [Int]) {
        let baseIndex = try requireBase(context)
        let aligned = try align(inputs, context)
        if inputs.count == 1 { return (aligned.tensors[0], aligned.shape) }
        guard inputs.count == 2 else {
            throw fail(context, "needs the base and exactly one other model, got \(inputs.count)")
        }
        let t = Float(try globalNumber("t", context))
        let a = aligned.tensors[baseIndex], b = aligned.tensors[1 - baseIndex]
        var out = [Float](repeating: 0, count: a.count)
        for i in out.indices {
            let w = min(max(t / max(abs(a[i] - b[i]), 1e-6), 0), 1)
            out[i] = w * b[i] + (1 - w) * a[i]
        }
        return (out, aligned.shape)
    }
}
