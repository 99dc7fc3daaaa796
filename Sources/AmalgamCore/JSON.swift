/// A JSON value that keeps what checkpoints need kept: object key order and the exact text of
/// numbers, so a `config.json` field we do not understand is written back unchanged.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number, kept as its literal text (`1e-05`, `10000.0`, `32000`).
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// A number from an integer.
    public static func int(_ value: Int) -> JSONValue { .number(String(value)) }
    /// A number from a double, spelled as Python's `repr` spells it.
    public static func double(_ value: Double) -> JSONValue { .number(JSONValue.pythonRepr(value)) }

    public var stringValue: String? { if case let .string(s) = self { return s } else { return nil } }
    public var boolValue: Bool? { if case let .bool(b) = self { return b } else { return nil } }
    public var arrayValue: [JSONValue]? { if case let .array(a) = self { return a } else { return nil } }
    public var objectValue: JSONObject? { if case let .object(o) = self { return o } else { return nil } }
    public var isNull: Bool { self == .null }

    /// The number as a double, if this is a number.
    public var doubleValue: Double? {
        guard case let .number(text) = self else { return nil }
        switch text {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        default: return Double(text)
        }
    }

    /// The number as an integer, if it is one exactly (`2` or `2.0`).
    public var intValue: Int? {
        guard case let .number(text) = self else { return nil }
        if let i = Int(text) { return i }
        if let d = Double(text), d.rounded() == d, abs(d) < 9.0e15 { return Int(d) }
        return nil
    }

    /// Member lookup on an object (nil otherwise).
    public subscript(key: String) -> JSONValue? { objectValue?[key] }

    static func pythonRepr(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "Infinity" : "-Infinity" }
        return "\(value)"
    }
}

/// A JSON object with its keys in file order.
public struct JSONObject: Sendable, Equatable, Sequence {
    public private(set) var entries: [(key: String, value: JSONValue)] = []
    private var index: [String: Int] = [:]

    public init() {}
    public init(_ pairs: [(String, JSONValue)]) { for (k, v) in pairs { self[k] = v } }

    public var keys: [String] { entries.map(\.key) }
    public var count: Int { entries.count }

    /// Reads or replaces a member; a new key goes at the end, `nil` removes it.
    public subscript(key: String) -> JSONValue? {
        get { index[key].map { entries[$0].value } }
        set {
            if let i = index[key] {
                if let newValue { entries[i].value = newValue } else {
                    entries.remove(at: i)
                    index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.key, $0) })
                }
            } else if let newValue {
                index[key] = entries.count
                entries.append((key, newValue))
            }
        }
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> { entries.makeIterator() }

    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        a.entries.count == b.entries.count && zip(a.entries, b.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

/// Why a JSON text could not be read; `offset` is a byte offset into the text.
public struct JSONError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public let offset: Int
    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}

/// A JSON file that cannot be read (`file`) or is not JSON (`invalid`); each area maps it into its own error
/// through `JSONValue.read(contentsOf:error:)`.
public enum JSONFileError: Error, CustomStringConvertible, Equatable {
    case file(FileError)
    case invalid(path: String, JSONError)

    public var path: String {
        switch self {
        case let .file(error): return error.path
        case let .invalid(path, _): return path
        }
    }

    /// What is wrong, without the path.
    public var reason: String {
        switch self {
        case let .file(error):
            let text = error.description
            return text.hasPrefix(error.path + ": ") ? String(text.dropFirst(error.path.count + 2)) : text
        case let .invalid(_, error): return "not valid JSON: \(error)"
        }
    }

    public var description: String { "\(path): \(reason)" }
}

extension JSONValue {
    /// Reads and parses a JSON file: the one way a JSON file is read.
    public static func read(contentsOf path: String) throws(JSONFileError) -> JSONValue {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw .file(error) }
        do { return try JSONValue.parse(file.bytes(offset: 0, count: file.count)) } catch { throw .invalid(path: path, error) }
    }

    /// Reads and parses a JSON file, its failure given as the caller's error.
    public static func read<E: Error>(contentsOf path: String, error map: (JSONFileError) -> E) throws(E) -> JSONValue {
        do { return try read(contentsOf: path) } catch { throw map(error) }
    }
}
