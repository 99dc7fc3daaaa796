/// NearSwap: take the other model's value where it is within `t` of the base,
/// `w = clamp(t / max(|a − b|, 1e-6), 0, 1)`, `out = w·b + (1 − w)·a`.
public struct NearSwap: MergeMethod {
    /// The method; it has no configuration of its own.
    public init() {}
    /// The name configs use.
    public var name: String { "nearswap" }
    /// Parameters read once per tensor, with mergekit 0.1.5's defaults.
    public var globalParameters: [ParameterSpec] { [ParameterSpec("t", default: nil)] }
    /// Parameters read for each model, with mergekit 0.1.5's defaults.
    public var perModelParameters: [ParameterSpec] { [] }
    /// The config must name a `base_model`.
    public var requiresBase: Bool { true }
    /// A tensor only the base has passes through unchanged.
    public var missingTensorPolicy: MissingTensorPolicy { .passthroughBaseSingleton }

    /// Merges one tensor as the type's summary describes.
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
        let r = context.rounding
        if r.followsMergekit {
            // mergekit's order of torch operations, each rounded to the working dtype: `t / x` is
            // `x.reciprocal() * t` (Tensor.__rtruediv__) and the clamp's bound is of that dtype too.
            let floor = r(1e-6)
            for i in out.indices {
                let w = min(max(r(r(1 / max(r(abs(a[i] - b[i])), floor)) * t), 0), 1)
                out[i] = r(r(w * b[i]) + r(r(1 - w) * a[i]))
            }
        } else {
            for i in out.indices {
                let w = min(max(t / max(abs(a[i] - b[i]), 1e-6), 0), 1)
                out[i] = w * b[i] + (1 - w) * a[i]
            }
        }
        return (out, aligned.shape)
    }
}
