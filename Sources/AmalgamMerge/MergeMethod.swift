import AmalgamCore

/// A parameter value as a merge config gives it, after resolving gradients and filters for one tensor.
public enum ParameterValue: Sendable, Equatable, CustomStringConvertible {
    case number(Double)
    case bool(Bool)
    case string(String)

    public var doubleValue: Double? {
        switch self {
        case let .number(d): return d
        case let .bool(b): return b ? 1 : 0
        case .string: return nil
        }
    }

    public var boolValue: Bool? {
        switch self {
        case let .bool(b): return b
        case let .number(d): return d != 0
        case .string: return nil
        }
    }

    public var description: String {
        switch self {
        case let .number(d): return d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
        case let .bool(b): return String(b)
        case let .string(s): return s
        }
    }
}

/// One declared parameter of a method: its name and default (nil: required).
public struct ParameterSpec: Sendable, Equatable {
    public let name: String
    public let defaultValue: ParameterValue?
    /// For per-model parameters: whether only non-base models read it (mergekit's `NON_BASE` scope,
    /// e.g. `weight` and `density` of ties), so a base without it is not an error.
    public let nonBaseOnly: Bool

    public init(_ name: String, default defaultValue: ParameterValue?, nonBaseOnly: Bool = false) {
        self.name = name
        self.defaultValue = defaultValue
        self.nonBaseOnly = nonBaseOnly
    }

    public var isRequired: Bool { defaultValue == nil }
}

/// Resolved parameters for one tensor: declared defaults overlaid with the config's values.
public struct Parameters: Sendable, Equatable {
    public var values: [String: ParameterValue]

    public init(_ values: [String: ParameterValue] = [:]) { self.values = values }

    public subscript(name: String) -> ParameterValue? { values[name] }

    /// A numeric parameter (the caller declared it, so a default exists unless it is required).
    public func double(_ name: String) -> Double? { values[name]?.doubleValue }
    public func bool(_ name: String) -> Bool? { values[name]?.boolValue }
}

/// One input to a tensor merge: a model's tensor converted to f32, with that model's parameters.
public struct MergeInput: Sendable {
    /// The model as the config names it (a path), for messages.
    public let model: String
    /// The values, row-major, f32.
    public let values: [Float]
    public let shape: [Int]
    /// Per-model parameters resolved for this tensor (`weight`, `density`, …).
    public let parameters: Parameters

    public init(model: String, values: [Float], shape: [Int], parameters: Parameters) {
        self.model = model
        self.values = values
        self.shape = shape
        self.parameters = parameters
    }
}

/// Everything about the tensor being merged except the inputs themselves.
public struct MergeContext: Sendable {
    /// The output tensor's name (for messages and errors).
    public let tensorName: String
    /// Index in `inputs` of the base model, if the config has one and it has this tensor.
    public let baseIndex: Int?
    /// Global parameters resolved for this tensor (`t`, `normalize`, `lambda`, …).
    public let parameters: Parameters
    /// Seed for this tensor's random draws, derived from the run seed and the tensor name, so the
    /// result does not depend on scheduling or thread count.
    public let seed: UInt64
    /// Whether the tensor is embedding-like (embed_tokens, lm_head): vocab mismatches are cut to the
    /// common top-left submatrix by the methods that allow it.
    public let isEmbedding: Bool
    /// Where intermediates are rounded: nowhere (exact arithmetic) or as mergekit's torch arithmetic does
    /// in the working dtype (`--arithmetic mergekit`).
    public let rounding: Rounding

    public init(tensorName: String, baseIndex: Int?, parameters: Parameters, seed: UInt64, isEmbedding: Bool,
                rounding: Rounding = .exact) {
        self.rounding = rounding
        self.tensorName = tensorName
        self.baseIndex = baseIndex
        self.parameters = parameters
        self.seed = seed
        self.isEmbedding = isEmbedding
    }
}

/// What the executor does with an optional tensor (mergekit's `optional_tensor_policy`) that only some
/// inputs have, before calling the method.
public enum MissingTensorPolicy: Sendable, Equatable {
    /// Call the method anyway (its input checks decide).
    case error
    /// A tensor only one input has is copied through unchanged (slerp, nuslerp, arcee_fusion).
    case passthroughSingleton
    /// Copied through only if that one input is the base (nearswap).
    case passthroughBaseSingleton
    /// Fewer inputs than `minimumInputs`: the base alone is copied through, anything else skips the
    /// tensor (model_stock).
    case baseOrSkip(minimumInputs: Int)
}

/// A merge method: a name, declared parameters with defaults, and a pure function from the input
/// tensors to the merged tensor. Methods know nothing of files, configs or threads.
public protocol MergeMethod: Sendable {
    /// The name used in configs (`merge_method: ties`).
    var name: String { get }
    /// Parameters read once per tensor.
    var globalParameters: [ParameterSpec] { get }
    /// Parameters read for each input model.
    var perModelParameters: [ParameterSpec] { get }
    /// Whether the config must name a `base_model`.
    var requiresBase: Bool { get }
    /// Whether the method draws random numbers (dare, della, …): `--seed` matters for it.
    var isRandom: Bool { get }
    /// What to do with an optional tensor some inputs lack.
    var missingTensorPolicy: MissingTensorPolicy { get }
    /// Whether mergekit 0.1.5 returns this method's result in f32 whatever `dtype:` says, so that it writes
    /// f32 tensors unless `out_dtype` is set (ramplus_tl); `--arithmetic mergekit` then does the same.
    var mergekitResultIsF32: Bool { get }
    /// Merges one tensor. `inputs` are in config order (the base among them at `context.baseIndex`).
    /// Returns the values and the shape of the result (usually the inputs' shape).
    func merge(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (values: [Float], shape: [Int])
}

extension MergeMethod {
    public var requiresBase: Bool { false }
    public var isRandom: Bool { false }
    public var missingTensorPolicy: MissingTensorPolicy { .error }
    public var mergekitResultIsF32: Bool { false }
}
