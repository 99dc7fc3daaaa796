import AmalgamCore

/// Everything that can be wrong with a PEFT LoRA adapter or with applying it to a base model. Each case
/// names the adapter file (and the key or tensor) and says what to do.
public enum LoRAError: Error, CustomStringConvertible, Equatable {
    /// `adapter_config.json` or `adapter_model.safetensors` is missing from the adapter folder.
    case missingFile(folder: String, file: String, hint: String)
    /// A config key whose value Amalgam cannot apply (DoRA, another PEFT type, …).
    case unsupported(path: String, key: String, reason: String)
    /// A config key with a value of the wrong type or range.
    case invalidConfig(path: String, key: String, reason: String)
    /// An adapter tensor whose name is not one PEFT writes for LoRA.
    case unexpectedTensor(path: String, tensor: String, reason: String)
    /// An adapter tensor that does not fit the base model's tensor.
    case shapeMismatch(path: String, tensor: String, reason: String)
    /// A module the adapter changes that the base model does not have.
    case moduleNotInBase(path: String, module: String, base: String)
    /// A `model+adapter` reference that is not of that form.
    case badReference(reference: String, reason: String)
    /// An adapter extraction that cannot proceed (different shapes, nothing to decompose, …).
    case extraction(reason: String)

    public var description: String {
        switch self {
        case let .missingFile(folder, file, hint):
            return "\(folder): no \(file); a PEFT LoRA adapter folder holds adapter_config.json and adapter_model.safetensors\(hint.isEmpty ? "" : " (" + hint + ")")"
        case let .unsupported(path, key, reason):
            return "\(path): '\(key)': \(reason)"
        case let .invalidConfig(path, key, reason):
            return "\(path): '\(key)': \(reason)"
        case let .unexpectedTensor(path, tensor, reason):
            return "\(path): tensor '\(tensor)': \(reason)"
        case let .shapeMismatch(path, tensor, reason):
            return "\(path): tensor '\(tensor)': \(reason); the adapter was trained for another model: give the base it was made for"
        case let .moduleNotInBase(path, module, base):
            return "\(path): the adapter changes '\(module)', which \(base) does not have; the adapter was trained for another architecture: give the base it was made for"
        case let .badReference(reference, reason):
            return "'\(reference)': \(reason)"
        case let .extraction(reason):
            return reason
        }
    }
}

extension LoRAError: ConfigErrorReporting {
    public static func config(path: String, key: String, reason: String) -> LoRAError {
        .invalidConfig(path: path, key: key, reason: reason)
    }
}
