/// Everything that can be wrong with a GGUF file. Each case names the file (and the key or tensor)
/// and says what to do.
public enum GGUFError: Error, CustomStringConvertible, Equatable, Sendable {
    case truncated(path: String, what: String, needed: Int, actual: Int)
    case badMagic(path: String, found: [UInt8])
    case unsupportedVersion(path: String, version: UInt32)
    case absurdCount(path: String, what: String, count: UInt64, limit: UInt64)
    case unknownValueType(path: String, key: String, type: UInt32)
    case unknownTensorType(path: String, tensor: String, type: UInt32)
    case badTensorShape(path: String, tensor: String, reason: String)
    case offsetOutOfRange(path: String, tensor: String, begin: Int, end: Int, fileSize: Int)
    case misalignedTensor(path: String, tensor: String, offset: Int, alignment: Int)
    case badAlignment(path: String, value: Int)
    case duplicateKey(path: String, key: String)
    case duplicateTensor(path: String, tensor: String)
    case cannotDequantize(path: String, tensor: String, type: String)
    case missingKey(path: String, key: String)
    case badKey(path: String, key: String, reason: String)
    case unsupportedModel(path: String, reason: String)
    case cannotQuantize(tensor: String, type: String, reason: String)

    public var description: String {
        switch self {
        case let .truncated(path, what, needed, actual):
            return "\(path): truncated while reading \(what): needs \(needed) bytes but only \(actual) remain; the file is incomplete, download or copy it again"
        case let .badMagic(path, found):
            return "\(path): not a GGUF file (starts with \(found.map { String(format: "%02x", $0) }.joined(separator: " ")), expected 'GGUF')"
        case let .unsupportedVersion(path, version):
            if version > 0xFFFF, version.byteSwapped == 2 || version.byteSwapped == 3 {
                return "\(path): a big-endian GGUF (version \(version.byteSwapped)); Amalgam reads little-endian files only, convert it with llama.cpp's gguf tools"
            }
            return "\(path): GGUF version \(version) is not supported (Amalgam reads versions 2 and 3, little-endian); convert it again with a current llama.cpp"
        case let .absurdCount(path, what, count, limit):
            return "\(path): \(what) is \(count), more than the file could hold (at most \(limit)); the header is corrupt"
        case let .unknownValueType(path, key, type):
            return "\(path): metadata key '\(key)' has unknown value type \(type); the header is corrupt or from a newer GGUF version"
        case let .unknownTensorType(path, tensor, type):
            return "\(path): tensor '\(tensor)' has unknown ggml type \(type); the file is corrupt or uses a newer quantization Amalgam does not know"
        case let .badTensorShape(path, tensor, reason):
            return "\(path): tensor '\(tensor)': \(reason); the header is corrupt"
        case let .offsetOutOfRange(path, tensor, begin, end, fileSize):
            return "\(path): tensor '\(tensor)' spans bytes \(begin)..<\(end) but the file has \(fileSize); the file is truncated or corrupt"
        case let .misalignedTensor(path, tensor, offset, alignment):
            return "\(path): tensor '\(tensor)' starts at data offset \(offset), not a multiple of the alignment \(alignment); the header is corrupt"
        case let .badAlignment(path, value):
            return "\(path): general.alignment is \(value); it must be a positive power of two"
        case let .duplicateKey(path, key):
            return "\(path): metadata key '\(key)' appears twice; the header is corrupt"
        case let .duplicateTensor(path, tensor):
            return "\(path): tensor '\(tensor)' appears twice; the header is corrupt"
        case let .cannotDequantize(path, tensor, type):
            return "\(path): tensor '\(tensor)' is \(type), which Amalgam cannot dequantize yet (it reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and Q2_K … Q6_K, not the IQ and TQ types); requantize the model with llama-quantize to one of those"
        case let .missingKey(path, key):
            return "\(path): metadata key '\(key)' is missing; the converter needs it"
        case let .badKey(path, key, reason):
            return "\(path): metadata key '\(key)': \(reason)"
        case let .unsupportedModel(path, reason):
            return "\(path): \(reason)"
        case let .cannotQuantize(tensor, type, reason):
            return "tensor '\(tensor)': cannot store as \(type): \(reason)"
        }
    }
}
