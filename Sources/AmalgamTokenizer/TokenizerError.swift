import AmalgamCore

/// Everything that can be wrong with a tokenizer on disk or a call to it. Each case names the file and
/// the JSON key (a dotted path such as `pre_tokenizer.pretokenizers[1].type`) and says what to do.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case file(FileError)
    case notFound(path: String)
    case invalidJSON(path: String, error: JSONError)
    case missingKey(path: String, key: String)
    case invalidValue(path: String, key: String, reason: String)
    case unsupportedType(path: String, key: String, type: String, supported: [String])
    case unsupportedOption(path: String, key: String, reason: String)

    public var description: String {
        switch self {
        case let .file(error): return error.description
        case let .notFound(path):
            return "\(path): no tokenizer.json there; pass a tokenizer.json file or a model folder that holds one"
        case let .invalidJSON(path, error):
            return "\(path): \(error); the file is corrupt or not a tokenizer.json, download it again"
        case let .missingKey(path, key):
            return "\(path): missing key `\(key)`; the file is incomplete or was written by an unsupported tool"
        case let .invalidValue(path, key, reason):
            return "\(path): `\(key)`: \(reason)"
        case let .unsupportedType(path, key, type, supported):
            return "\(path): `\(key)` is \"\(type)\", which Amalgam does not support; supported: \(supported.joined(separator: ", "))"
        case let .unsupportedOption(path, key, reason):
            return "\(path): `\(key)`: \(reason)"
        }
    }
}

/// Typed access to one JSON object of a tokenizer file, so every error names the file and the key path.
struct JSONNode {
    let value: JSONValue
    /// The file the node comes from.
    let file: String
    /// The dotted key path of the node in the file (`""` for the root).
    let path: String

    func key(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    /// The member `name`, or nil if absent or null.
    func optional(_ name: String) -> JSONNode? {
        guard let v = value[name], !v.isNull else { return nil }
        return JSONNode(value: v, file: file, path: key(name))
    }

    func required(_ name: String) throws(TokenizerError) -> JSONNode {
        guard let node = optional(name) else { throw .missingKey(path: file, key: key(name)) }
        return node
    }

    func string(_ name: String) throws(TokenizerError) -> String {
        let node = try required(name)
        guard let s = node.value.stringValue else { throw node.invalid("expected a string") }
        return s
    }

    func string(_ name: String, default fallback: String) throws(TokenizerError) -> String {
        guard let node = optional(name) else { return fallback }
        guard let s = node.value.stringValue else { throw node.invalid("expected a string") }
        return s
    }

    func bool(_ name: String, default fallback: Bool) throws(TokenizerError) -> Bool {
        guard let node = optional(name) else { return fallback }
        guard let b = node.value.boolValue else { throw node.invalid("expected true or false") }
        return b
    }

    func int(_ name: String, default fallback: Int) throws(TokenizerError) -> Int {
        guard let node = optional(name) else { return fallback }
        guard let i = node.value.intValue else { throw node.invalid("expected an integer") }
        return i
    }

    func array(_ name: String) throws(TokenizerError) -> [JSONNode] {
        let node = try required(name)
        guard let items = node.value.arrayValue else { throw node.invalid("expected an array") }
        return items.enumerated().map { JSONNode(value: $1, file: file, path: "\(node.path)[\($0)]") }
    }

    func invalid(_ reason: String) -> TokenizerError { .invalidValue(path: file, key: path, reason: reason) }

    func unsupported(_ type: String, supported: [String]) -> TokenizerError {
        .unsupportedType(path: file, key: key("type"), type: type, supported: supported)
    }

    /// The pattern `name` as a split pattern (a scanner, a literal or a compiled regex); a regex Amalgam
    /// cannot run is an error naming the file, the key, the pattern and why.
    func splitPattern(_ name: String) throws(TokenizerError) -> SplitPattern {
        let pattern = try self.pattern(name)
        do {
            return try SplitPattern.from(pattern)
        } catch {
            throw .unsupportedOption(path: file, key: key(name), reason: "the regex \(pattern.text) cannot be used: \(error)")
        }
    }

    /// A `{"String": s}` or `{"Regex": r}` pattern as tokenizers writes them.
    func pattern(_ name: String) throws(TokenizerError) -> (text: String, isRegex: Bool) {
        let node = try required(name)
        if let s = node.value["String"]?.stringValue { return (s, false) }
        if let r = node.value["Regex"]?.stringValue { return (r, true) }
        throw node.invalid("expected {\"String\": ...} or {\"Regex\": ...}")
    }
}

extension TokenizerError {
    /// A tokenizer JSON file that cannot be opened (`file`) or parsed (`invalidJSON`).
    static func json(_ error: JSONFileError) -> TokenizerError {
        switch error {
        case let .file(error): return .file(error)
        case let .invalid(path, error): return .invalidJSON(path: path, error: error)
        }
    }
}
