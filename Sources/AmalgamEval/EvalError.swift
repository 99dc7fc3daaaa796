import AmalgamCore

/// What can go wrong reading a task file, running a model on it, or writing its records. Messages name
/// the file, line and key and say what to do.
public enum EvalError: Error, CustomStringConvertible, Equatable {
    /// A file that cannot be read or written.
    case file(path: String, reason: String)
    /// A malformed task file: `line` is 1-based, `key` the offending key when there is one.
    case task(path: String, line: Int, key: String?, reason: String)
    /// The model failed on an input (its own message).
    case model(task: String, example: String, reason: String)
    /// Something the task asks for that the evaluator was not given (a chat template, …).
    case unsupported(task: String, reason: String)
    /// Task building from source texts failed.
    case build(path: String, reason: String)

    public var description: String {
        switch self {
        case let .file(path, reason):
            return "\(path): \(reason)"
        case let .task(path, line, key, reason):
            return "\(path):\(line): " + (key.map { "key '\($0)': " } ?? "") + reason
        case let .model(task, example, reason):
            return "task '\(task)', example '\(example)': the model failed: \(reason)"
        case let .unsupported(task, reason):
            return "task '\(task)': \(reason)"
        case let .build(path, reason):
            return "\(path): \(reason)"
        }
    }

    static func wrap(_ error: FileError, path: String) -> EvalError { .file(path: path, reason: "\(error)") }

    /// A JSON file (an eval summary) that cannot be read or parsed.
    static func json(_ error: JSONFileError) -> EvalError { .file(path: error.path, reason: error.reason) }
}
