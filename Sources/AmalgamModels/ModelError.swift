import AmalgamCheckpoint
import AmalgamCore

/// Everything that can stop a model from loading or running. Each case names the tensor or key and
/// says what was expected.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case checkpoint(CheckpointError)
    case missingTensor(path: String, tensor: String)
    case shapeMismatch(path: String, tensor: String, expected: [Int], actual: [Int])
    case unsupportedDType(path: String, tensor: String, dtype: DType)
    case unsupportedConfig(path: String, key: String, reason: String)
    case tokenOutOfRange(token: Int, vocabSize: Int)
    case emptySequence(index: Int)
    case contextTooLong(length: Int, limit: Int)
    case positionOutOfRange(position: Int, limit: Int)
    case parameterCount(expected: Int, actual: Int, layout: String)
    case inputSize(expected: Int, actual: Int)

    public var description: String {
        switch self {
        case let .checkpoint(error): return error.description
        case let .missingTensor(path, tensor):
            return "\(path): tensor '\(tensor)' is missing; the checkpoint does not match its config.json"
        case let .shapeMismatch(path, tensor, expected, actual):
            return "\(path): tensor '\(tensor)' has shape \(actual) but the config implies \(expected)"
        case let .unsupportedDType(path, tensor, dtype):
            return "\(path): tensor '\(tensor)' is \(dtype.rawValue); the engine reads F32, BF16 and F16 weights"
        case let .unsupportedConfig(path, key, reason):
            return "\(path): '\(key)': \(reason)"
        case let .tokenOutOfRange(token, vocabSize):
            return "token id \(token) is outside the vocabulary (0..<\(vocabSize))"
        case let .emptySequence(index):
            return "sequence \(index) is empty; every sequence needs at least one token"
        case let .contextTooLong(length, limit):
            return "\(length) tokens exceed the KV cache capacity of \(limit); give a larger capacity"
        case let .positionOutOfRange(position, limit):
            return "position \(position) is past the model's \(limit) learned positions (n_positions); use sequences of at most \(limit) tokens"
        case let .parameterCount(expected, actual, layout):
            return "\(actual) parameters given but the layout \(layout) needs \(expected)"
        case let .inputSize(expected, actual):
            return "input has \(actual) values but the model needs a multiple of \(expected) (one row per example)"
        }
    }
}

extension ModelError: ConfigErrorReporting {
    /// A config.json family option of the wrong type or value, named by its key path.
    public static func config(path: String, key: String, reason: String) -> ModelError {
        .unsupportedConfig(path: path, key: key, reason: reason)
    }
}
