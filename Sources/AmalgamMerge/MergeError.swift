import AmalgamCheckpoint
import AmalgamCore

/// Everything that can go wrong planning or running a merge.
public enum MergeError: Error, CustomStringConvertible {
    case checkpoint(CheckpointError)
    case config(path: String, key: String, reason: String)
    /// A method cannot merge a tensor (shapes, missing base, bad parameter values).
    case method(method: String, tensor: String, reason: String)

    public var description: String {
        switch self {
        case let .checkpoint(e): return e.description
        case let .config(path, key, reason): return "\(path): '\(key)': \(reason)"
        case let .method(method, tensor, reason): return "\(method) merge of '\(tensor)': \(reason)"
        }
    }
}

/// Merge configurations are read with AmalgamCore's configuration reader; its errors are `.config`.
extension MergeError: ConfigErrorReporting {}
