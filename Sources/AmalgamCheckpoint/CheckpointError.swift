import AmalgamCore

/// Everything that can be wrong with a checkpoint on disk. Each case names the file (and the tensor or
/// key) and says what to do.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case file(FileError)
    case truncated(path: String, needed: Int, actual: Int)
    case headerTooLarge(path: String, size: Int, limit: Int)
    case headerOutsideFile(path: String, headerSize: Int, fileSize: Int)
    case invalidHeader(path: String, reason: String)
    case unknownDType(path: String, tensor: String, dtype: String)
    case badTensorInfo(path: String, tensor: String, reason: String)
    case sizeMismatch(path: String, tensor: String, expected: Int, actual: Int)
    case offsetOutOfRange(path: String, tensor: String, end: Int, dataSize: Int)
    case overlappingTensors(path: String, first: String, second: String)
    case gapBetweenTensors(path: String, before: String, after: String, gap: Int)
    case dataNotCovered(path: String, used: Int, dataSize: Int)
    case missingShard(index: String, shard: String, tensor: String)
    case tensorMissingFromShard(index: String, shard: String, tensor: String)
    case noWeights(folder: String)
    case unsupportedWeights(folder: String, file: String)
    case tensorNotFound(path: String, tensor: String)
    case invalidConfig(path: String, key: String, reason: String)
    case duplicateTensor(path: String, tensor: String)
    case incompleteWrite(path: String, missing: [String])
    case unexpectedTensor(path: String, tensor: String, reason: String)
    case invalidShardSize(String)
    case gguf(GGUFError)
    /// A Hugging Face reference (`org/name[@revision]`) that could not be found or fetched.
    case hub(HubError)
    /// A `model+adapter` reference whose LoRA adapter cannot be read or does not fit the model.
    case lora(LoRAError)
    case modelNotFound(reference: String)

    public var description: String {
        switch self {
        case let .file(error): return error.description
        case let .truncated(path, needed, actual):
            return "\(path): truncated: needs at least \(needed) bytes but has \(actual); the file is incomplete, download or copy it again"
        case let .headerTooLarge(path, size, limit):
            return "\(path): header of \(size) bytes is larger than the \(limit)-byte limit; this is not a safetensors file or it is corrupt"
        case let .headerOutsideFile(path, size, fileSize):
            return "\(path): header claims \(size) bytes but the file has only \(fileSize); the file is truncated or not safetensors"
        case let .invalidHeader(path, reason):
            return "\(path): invalid safetensors header: \(reason)"
        case let .unknownDType(path, tensor, dtype):
            return "\(path): tensor '\(tensor)' has dtype '\(dtype)', which Amalgam does not support (supported: \(DType.allCases.map(\.rawValue).joined(separator: ", ")))"
        case let .badTensorInfo(path, tensor, reason):
            return "\(path): tensor '\(tensor)': \(reason)"
        case let .sizeMismatch(path, tensor, expected, actual):
            return "\(path): tensor '\(tensor)': shape × dtype size is \(expected) bytes but its offsets span \(actual); the header is corrupt"
        case let .offsetOutOfRange(path, tensor, end, dataSize):
            return "\(path): tensor '\(tensor)' ends at byte \(end) of the data, past its end (\(dataSize) bytes); the file is truncated or corrupt"
        case let .overlappingTensors(path, first, second):
            return "\(path): tensors '\(first)' and '\(second)' overlap; the header is corrupt"
        case let .gapBetweenTensors(path, before, after, gap):
            return "\(path): \(gap) unused bytes between tensors '\(before)' and '\(after)'; safetensors requires contiguous data"
        case let .dataNotCovered(path, used, dataSize):
            return "\(path): tensors cover \(used) bytes of data but the file holds \(dataSize); the file has trailing bytes or is corrupt"
        case let .missingShard(index, shard, tensor):
            return "\(index): shard '\(shard)' (holding '\(tensor)') is missing; download the complete model"
        case let .tensorMissingFromShard(index, shard, tensor):
            return "\(index): tensor '\(tensor)' is listed in shard '\(shard)' but that file does not contain it"
        case let .noWeights(folder):
            return "\(folder): no weights found (expected model.safetensors, model.safetensors.index.json or *.safetensors)"
        case let .unsupportedWeights(folder, file):
            return "\(folder): only '\(file)' holds weights; Amalgam reads safetensors and GGUF. Convert it with transformers: model.save_pretrained(dir, safe_serialization=True)"
        case let .tensorNotFound(path, tensor):
            return "\(path): no tensor named '\(tensor)'"
        case let .invalidConfig(path, key, reason):
            return "\(path): '\(key)': \(reason)"
        case let .duplicateTensor(path, tensor):
            return "\(path): tensor '\(tensor)' appears twice"
        case let .incompleteWrite(path, missing):
            return "\(path): \(missing.count) tensors were never written (first: \(missing.first ?? ""))"
        case let .unexpectedTensor(path, tensor, reason):
            return "\(path): tensor '\(tensor)': \(reason)"
        case let .invalidShardSize(text):
            return "invalid shard size '\(text)': use bytes or a size like 5GB, 500MB, 2GiB"
        case let .gguf(error): return error.description
        case let .hub(error): return error.description
        case let .lora(error): return error.description
        case let .modelNotFound(reference):
            return "\(reference): no such folder or file; Amalgam reads local model folders (safetensors), .safetensors files, .gguf files and Hugging Face names `org/name[@revision]` (from the Hugging Face cache, downloaded when missing; see `amalgam download`)"
        }
    }
}

extension CheckpointError: ConfigErrorReporting {
    public static func config(path: String, key: String, reason: String) -> CheckpointError {
        .invalidConfig(path: path, key: key, reason: reason)
    }

    /// A JSON file that cannot be opened keeps its file error; one that does not parse names the file.
    public static func json(_ error: JSONFileError) -> CheckpointError {
        switch error {
        case let .file(error): return .file(error)
        case let .invalid(path, error): return .invalidConfig(path: path, key: "(file)", reason: error.description)
        }
    }
}
