/// One model's tensor, optionally multiplied by its `scale` (layer stacking with `slices`).
public struct Passthrough: MergeMethod {
    /// The method; it has no configuration of its own.
    public init() {}
    /// The name configs use.
    public var name: String { "passthrough" }
    /// Parameters read once per tensor, with mergekit 0.1.5's defaults.
    public var globalParameters: [ParameterSpec] { [] }
    /// mergekit's default is "no scale"; multiplying by 1 is exact, so 1 stands for it.
    public var perModelParameters: [ParameterSpec] { [ParameterSpec("scale", default: .number(1))] }

    /// Merges one tensor as the type's summary describes.
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
