import AmalgamCheckpoint
import AmalgamCore

/// Everything that can stop training or resuming. Each case names the file, tensor or option and says
/// what to do.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case checkpoint(CheckpointError)
    case model(ModelError)
    case file(FileError)
    case optimizerState(path: String, reason: String)
    case noTrainableTensors(pattern: String)
    case badPattern(pattern: String, reason: String)
    case badData(path: String, reason: String)
    case runState(path: String, reason: String)
    case invalidSetting(name: String, reason: String)

    public var description: String {
        switch self {
        case let .checkpoint(error): return error.description
        case let .model(error): return error.description
        case let .file(error): return error.description
        case let .optimizerState(path, reason):
            return "\(path): optimizer state does not fit this run: \(reason); resume with the settings and tensors it was saved with"
        case let .noTrainableTensors(pattern):
            return "no tensor name matches '\(pattern)'; give 'all' or a regular expression over names such as model.layers.3.mlp.up_proj.weight"
        case let .badPattern(pattern, reason):
            return "'\(pattern)' is not a valid regular expression (\(reason))"
        case let .badData(path, reason):
            return "\(path): \(reason)"
        case let .runState(path, reason):
            return "\(path): cannot resume: \(reason)"
        case let .invalidSetting(name, reason):
            return "\(name): \(reason)"
        }
    }
}
