/// RAM (Reinforced Agent Merging): add each task vector's entries above `epsilon` to the base, whole
/// where only one model changed that position, divided by the number of models that did elsewhere.
/// `ramplus_tl` also boosts each model's unique entries by `1 + r·clamp(shared/unique, 0, alpha)`.
public struct RAM: MergeMethod {
    /// Whether this is `ramplus_tl`.
    public let plus: Bool

    /// `ram`, or `ramplus_tl` when `plus`.
    public init(plus: Bool) { self.plus = plus }
    /// The name configs use.
    public var name: String { plus ? "ramplus_tl" : "ram" }
    /// Parameters read once per tensor, with mergekit 0.1.5's defaults.
    public var globalParameters: [ParameterSpec] {
        plus ? [ParameterSpec("r", default: .number(0.1)), ParameterSpec("alpha", default: .number(0.2)),
                ParameterSpec("epsilon", default: .number(1e-5))]
             : [ParameterSpec("epsilon", default: .number(1e-5))]
    }
    /// Parameters read for each model, with mergekit 0.1.5's defaults.
    public var perModelParameters: [ParameterSpec] { [] }
    /// The config must name a `base_model`.
    public var requiresBase: Bool { true }
    /// mergekit's ramplus_tl returns an f32 tensor whatever the dtype (its boost is f32).
    public var mergekitResultIsF32: Bool { plus }

    /// Merges one tensor as the type's summary describes.
    public func merge(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (values: [Float], shape: [Int]) {
        let (aligned, base, others) = try baseRelative(inputs, context)
        if others.isEmpty { return (base, aligned.shape) }
        let epsilon = Float(try globalNumber("epsilon", context))
        // mergekit's arithmetic: task vectors and shares `v / count` rounded to the working dtype; for ram
        // also their sum over the models (accumulated in f32) and the final sum. ramplus_tl's boost is an
        // f32 tensor there, which makes its sums, and its result, f32 (`mergekitResultIsF32`).
        let rounding = context.rounding
        let vectors = others.map { i in
            var v = Kernels.difference(aligned.tensors[i], base)
            rounding.apply(&v)
            return v
        }
        let n = base.count
        // Models changing each position by more than epsilon.
        var counts = [UInt16](repeating: 0, count: n)   // up to 65535 models
        for v in vectors { for i in 0..<n where abs(v[i]) > epsilon { counts[i] &+= 1 } }

        var boost = [Float](repeating: 1, count: vectors.count)
        if plus {
            let r = try globalNumber("r", context), alpha = try globalNumber("alpha", context)
            for (m, v) in vectors.enumerated() {
                var shared = 0, unique = 0
                for i in 0..<n where abs(v[i]) > epsilon { if counts[i] > 1 { shared += 1 } else { unique += 1 } }
                let rho = Float(shared) / max(Float(unique), epsilon)
                boost[m] = 1 + Float(r) * min(max(rho, 0), Float(alpha))
            }
        }
        var out = base
        for i in 0..<n {
            let c = counts[i]
            if c == 0 { continue }
            var sum: Float = 0
            for (m, v) in vectors.enumerated() where abs(v[i]) > epsilon {
                sum += c == 1 ? v[i] * boost[m] : rounding(v[i] / Float(c))
            }
            out[i] = plus ? base[i] + sum : rounding(base[i] + rounding(sum))
        }
        return (out, aligned.shape)
    }
}
