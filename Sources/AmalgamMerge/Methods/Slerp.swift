import Foundation

/// Spherical interpolation between the base (t = 0) and one other model (t = 1), over the whole
/// flattened tensor, in f32 as mergekit does for every dtype.
public struct Slerp: MergeMethod {
    /// The method; it has no configuration of its own.
    public init() {}
    /// The name configs use.
    public var name: String { "slerp" }
    /// Parameters read once per tensor, with mergekit 0.1.5's defaults.
    public var globalParameters: [ParameterSpec] { [ParameterSpec("t", default: nil)] }
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
            throw fail(context, "interpolates exactly two models (the base and one other), got \(inputs.count): "
                + inputs.map(\.model).joined(separator: ", ") + "; use multislerp or karcher for more")
        }
        let t = try globalNumber("t", context)
        let v0 = aligned.tensors[baseIndex], v1 = aligned.tensors[1 - baseIndex]
        let (c0, c1) = Slerp.coefficients(t: t, v0, v1)
        var out = [Float](repeating: 0, count: v0.count)
        for i in out.indices { out[i] = c0 * v0[i] + c1 * v1[i] }
        return (out, aligned.shape)
    }

    /// The two coefficients of `slerp(t, v0, v1)`: norms (only above 1e-8) normalise the dot product;
    /// `|dot| > 0.9995` falls back to linear interpolation.
    static func coefficients(t: Double, _ v0: [Float], _ v1: [Float]) -> (Float, Float) {
        if v0.isEmpty { return (Float(1 - t), Float(t)) }
        var n0 = Kernels.norm(v0), n1 = Kernels.norm(v1)
        if !(n0 > 1e-8) { n0 = 1 }
        if !(n1 > 1e-8) { n1 = 1 }
        let dot = min(max(Kernels.dot(v0, v1) / (n0 * n1), -1), 1)
        if abs(dot) > 0.9995 { return (Float(1 - t), Float(t)) }
        let theta = acos(dot)
        let s = sin(theta)
        return (Float(sin((1 - t) * theta) / s), Float(sin(t * theta) / s))
    }
}
