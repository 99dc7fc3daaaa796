import Foundation
import Yams

/// The error a configuration reader throws: each area's error type names the file, the key path and what is
/// accepted through its `config(path:key:reason:)` case (or a static function of that name).
public protocol ConfigErrorReporting: Error {
    static func config(path: String, key: String, reason: String) -> Self
    /// A JSON configuration file that cannot be read or parsed (by default `config(path:key: "(file)",…)`).
    static func json(_ error: JSONFileError) -> Self
}

extension ConfigErrorReporting {
    public static func json(_ error: JSONFileError) -> Self { .config(path: error.path, key: "(file)", reason: error.reason) }
}

/// A configuration document (merge, dam and evolve YAML; task files, `config.json`, `adapter_config.json`) as
/// the readers walk it: scalars keep their text and resolved kind, mappings keep their key order.
public indirect enum ConfigNode: Sendable {
    public enum ScalarKind: Sendable { case null, bool, int, float, string }

    case scalar(text: String, kind: ScalarKind)
    case sequence([ConfigNode])
    case mapping([(key: String, value: ConfigNode)])

    /// Parses YAML text into nodes; `path` names the file in errors.
    public static func parse<E: ConfigErrorReporting>(yaml: String, path: String, as _: E.Type = E.self) throws(E) -> ConfigNode {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw .config(path: path, key: "(file)", reason: "not valid YAML: \(error)")
        }
        guard let root else { throw .config(path: path, key: "(file)", reason: "the file is empty") }
        return try convert(root, path: path, keyPath: "", as: E.self)
    }

    /// Parses every document of a multi-document YAML text (`---` separated).
    public static func parseAll<E: ConfigErrorReporting>(yaml: String, path: String, as _: E.Type = E.self) throws(E) -> [ConfigNode] {
        let documents: [Node]
        do {
            documents = Array(try Yams.compose_all(yaml: yaml))
        } catch {
            throw .config(path: path, key: "(file)", reason: "not valid YAML: \(error)")
        }
        var result: [ConfigNode] = []
        for node in documents { result.append(try convert(node, path: path, keyPath: "", as: E.self)) }
        return result
    }

    /// The nodes of a JSON value: objects become mappings in key order, numbers keep their text.
    public init(json: JSONValue) {
        switch json {
        case .null: self = .scalar(text: "null", kind: .null)
        case let .bool(b): self = .scalar(text: b ? "true" : "false", kind: .bool)
        case let .number(text):
            let integer = text.allSatisfy { $0 == "-" || $0.isASCII && $0.isNumber }
            self = .scalar(text: text, kind: integer ? .int : .float)
        case let .string(s): self = .scalar(text: s, kind: .string)
        case let .array(items): self = .sequence(items.map(ConfigNode.init(json:)))
        case let .object(object): self = .mapping(object.entries.map { ($0.key, ConfigNode(json: $0.value)) })
        }
    }

    private static func convert<E: ConfigErrorReporting>(_ node: Node, path: String, keyPath: String, as _: E.Type) throws(E) -> ConfigNode {
        switch node {
        case let .scalar(s):
            let kind: ScalarKind
            switch node.tag.description {
            case Tag.Name.null.rawValue: kind = .null
            case Tag.Name.bool.rawValue: kind = .bool
            case Tag.Name.int.rawValue: kind = .int
            case Tag.Name.float.rawValue: kind = .float
            default: kind = .string
            }
            return .scalar(text: s.string, kind: kind)
        case let .sequence(seq):
            var items: [ConfigNode] = []
            for (i, item) in seq.enumerated() { items.append(try convert(item, path: path, keyPath: keyPath + "[\(i)]", as: E.self)) }
            return .sequence(items)
        case let .mapping(map):
            var entries: [(String, ConfigNode)] = []
            for (k, v) in map {
                guard let key = k.string else { throw .config(path: path, key: keyPath, reason: "mapping keys must be strings") }
                let child = keyPath.isEmpty ? key : keyPath + "." + key
                if entries.contains(where: { $0.0 == key }) { throw .config(path: path, key: child, reason: "appears twice") }
                entries.append((key, try convert(v, path: path, keyPath: child, as: E.self)))
            }
            return .mapping(entries)
        default:
            throw .config(path: path, key: keyPath, reason: "YAML aliases are not supported; write the value out")
        }
    }

    public var isNull: Bool { if case .scalar(_, .null) = self { return true } else { return false } }

    /// The text of a scalar.
    public var scalarText: String? { if case let .scalar(text, _) = self { return text } else { return nil } }

    /// A number from a numeric scalar, or from a string that reads as one (`1e-5`, which YAML 1.1 reads
    /// as a string, is a number to mergekit's validators).
    public var number: Double? {
        guard case let .scalar(text, kind) = self else { return nil }
        switch kind {
        case .int, .float:
            return Double(text.replacingOccurrences(of: "_", with: "")) ?? ConfigNode.yamlSpecialFloat(text)
        case .string: return Double(text.trimmingCharacters(in: .whitespaces))
        case .bool: return ["true", "True", "TRUE", "yes", "Yes", "on", "On"].contains(text) ? 1 : 0
        case .null: return nil
        }
    }

    private static func yamlSpecialFloat(_ text: String) -> Double? {
        switch text.lowercased() {
        case ".inf", "+.inf": return .infinity
        case "-.inf": return -.infinity
        case ".nan": return .nan
        default: return nil
        }
    }

    /// A boolean from a YAML boolean, an integer (0 is false) or the words true/false, yes/no, on/off, 1/0.
    public var bool: Bool? {
        guard case let .scalar(text, kind) = self else { return nil }
        switch kind {
        case .bool: return ["true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"].contains(text)
        case .int: return Int(text).map { $0 != 0 }
        case .string:
            switch text.lowercased() {
            case "true", "yes", "on", "1": return true
            case "false", "no", "off", "0": return false
            default: return nil
            }
        default: return nil
        }
    }

    /// The node as an error shows what was found: a scalar's text (a string quoted), else what it is.
    public func found(_ syntax: ConfigSyntax) -> String {
        switch self {
        case let .scalar(text, kind):
            let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
            return kind == .string && syntax == .json ? "\"\(shown)\"" : shown
        case .sequence: return syntax == .json ? "an array" : "a list"
        case .mapping: return syntax == .json ? "an object" : "a mapping"
        }
    }

    public var isNumeric: Bool { if case .scalar(_, let k) = self { return k == .int || k == .float } else { return false } }
    public var isBool: Bool { if case .scalar(_, .bool) = self { return true } else { return false } }
}

/// How a configuration file was written. YAML scalars are untyped text (`name: 3` is the string "3" where a
/// string is wanted, `"1e-5"` a number where a number is); JSON values are typed, and a reader takes only the
/// type it asks for (a string is not a number, `1` is not true).
public enum ConfigSyntax: Sendable { case yaml, json }

/// One node of a configuration file with where it is (file and key path), read into typed values; every
/// failure is `E.config(path:key:reason:)` naming the file, the key path and what is accepted.
public struct ConfigValue<E: ConfigErrorReporting> {
    public let node: ConfigNode
    public let path: String
    public let keyPath: String
    public let syntax: ConfigSyntax

    public init(_ node: ConfigNode, path: String, keyPath: String, syntax: ConfigSyntax = .yaml) {
        self.node = node
        self.path = path
        self.keyPath = keyPath
        self.syntax = syntax
    }

    /// The error for this value.
    public func fail(_ reason: String) -> E { .config(path: path, key: keyPath.isEmpty ? "(document)" : keyPath, reason: reason) }

    public var isNull: Bool { node.isNull }

    private var json: Bool { syntax == .json }

    private func kind(_ accepted: ConfigNode.ScalarKind...) -> Bool {
        if case let .scalar(_, k) = node { return accepted.contains(k) }
        return false
    }

    /// A scalar's text (in JSON: a string); `nonEmpty` refuses "".
    public func string(nonEmpty: Bool = false) throws(E) -> String {
        guard let s = node.scalarText, !json || kind(.string) else {
            throw fail(json ? "expected a string, got \(node.found(syntax))" : "expected a single value (a string)")
        }
        if nonEmpty && s.isEmpty { throw fail("is empty") }
        return s
    }

    public func double(finite: Bool = false) throws(E) -> Double {
        guard let d = node.number, !json || kind(.int, .float) else {
            throw fail(json ? "expected a number, got \(node.found(syntax))" : "`\(node.scalarText ?? "(a list or mapping)")` is not a number")
        }
        if finite && !d.isFinite { throw fail("`\(d)` is not a finite number") }
        return d
    }

    public func int(minimum: Int? = nil) throws(E) -> Int {
        guard let d = node.number, d == d.rounded(), abs(d) < 9.0e15, !json || kind(.int, .float) else {
            throw fail(json ? "expected an integer\(minimum.map { " ≥ \($0)" } ?? ""), got \(node.found(syntax))"
                            : "`\(node.scalarText ?? "(a list or mapping)")` is not an integer")
        }
        let v = Int(d)
        if let minimum, v < minimum { throw fail("\(v) is below \(minimum)") }
        return v
    }

    public func uint64() throws(E) -> UInt64 {
        if let text = node.scalarText, let v = UInt64(text), !json || kind(.int) { return v }
        let v = try int()
        guard v >= 0 else { throw fail("\(v) is not an integer ≥ 0") }
        return UInt64(v)
    }

    public func bool() throws(E) -> Bool {
        guard let b = node.bool, !json || kind(.bool) else {
            throw fail(json ? "expected true or false, got \(node.found(syntax))" : "`\(node.scalarText ?? "(a list or mapping)")` is not true or false")
        }
        return b
    }

    /// The items of a list, each with its key path (`key[i]`).
    public func items() throws(E) -> [ConfigValue<E>] {
        guard case let .sequence(items) = node else { throw fail(json ? "expected an array, got \(node.found(syntax))" : "expected a list") }
        return items.enumerated().map { ConfigValue($1, path: path, keyPath: keyPath + "[\($0)]", syntax: syntax) }
    }

    /// A list of strings with at least `minimumCount` of them.
    public func strings(minimumCount: Int = 0) throws(E) -> [String] {
        let what = json ? "an array of strings" : "a list of strings"
        guard case let .sequence(items) = node else { throw fail("expected \(what), got \(node.found(syntax))") }
        var out: [String] = []
        for item in items {
            guard let s = item.scalarText, !json || { if case .scalar(_, .string) = item { true } else { false } }() else {
                throw fail("expected \(what), got \(item.found(syntax)) among them")
            }
            out.append(s)
        }
        guard out.count >= minimumCount else { throw fail("needs at least \(minimumCount) entries, has \(out.count)") }
        return out
    }

    /// A mapping whose keys must all be in `accepting` (when given).
    public func mapping(accepting keys: [String]? = nil) throws(E) -> ConfigMapping<E> {
        let m = try ConfigMapping<E>(node, path: path, keyPath: keyPath, syntax: syntax)
        if let keys { try m.rejectUnknown(keys) }
        return m
    }

    /// A path that must exist: absolute, else from the current folder, else from the configuration file's
    /// folder; returned absolute.
    public func existingPath() throws(E) -> String {
        let s = try string(nonEmpty: true)
        let fm = FileManager.default
        if s.hasPrefix("/") {
            guard fm.fileExists(atPath: s) else { throw fail("\(s) does not exist") }
            return s
        }
        if fm.fileExists(atPath: s) { return (fm.currentDirectoryPath as NSString).appendingPathComponent(s) }
        let base = (path as NSString).deletingLastPathComponent
        let relative = (base as NSString).appendingPathComponent(s)
        if !base.isEmpty, fm.fileExists(atPath: relative) {
            return relative.hasPrefix("/") ? relative : (fm.currentDirectoryPath as NSString).appendingPathComponent(relative)
        }
        throw fail("\(s) does not exist (looked from the current folder and from the configuration's folder)")
    }
}

/// A mapping node of a configuration file: its keys read as typed values (a null value reads as absent), unknown
/// keys reported with what is accepted.
public struct ConfigMapping<E: ConfigErrorReporting> {
    public let path: String
    public let keyPath: String
    public let entries: [(key: String, value: ConfigNode)]
    public let syntax: ConfigSyntax

    public init(_ node: ConfigNode, path: String, keyPath: String, syntax: ConfigSyntax = .yaml) throws(E) {
        guard case let .mapping(entries) = node else {
            throw .config(path: path, key: keyPath.isEmpty ? "(document)" : keyPath,
                          reason: syntax == .json ? "expected a JSON object, got \(node.found(syntax))" : "expected a mapping of keys to values")
        }
        self.path = path
        self.keyPath = keyPath
        self.entries = entries
        self.syntax = syntax
    }

    /// A JSON object (`config.json`, a line of a task file) as a mapping; `path` names its file.
    public init(json object: JSONObject, path: String, keyPath: String = "") {
        self.path = path
        self.keyPath = keyPath
        self.entries = object.entries.map { ($0.key, ConfigNode(json: $0.value)) }
        self.syntax = .json
    }

    /// Reads a JSON file whose top level is an object (`config.json`, `adapter_config.json`); errors name the file.
    public static func readJSON(_ path: String) throws(E) -> ConfigMapping<E> {
        let value = try JSONValue.read(contentsOf: path, error: E.json)
        guard case let .object(object) = value else {
            throw .config(path: path, key: "(file)", reason: "expected a JSON object, got \(ConfigNode(json: value).found(.json))")
        }
        return ConfigMapping(json: object, path: path)
    }

    public func child(_ key: String) -> String { keyPath.isEmpty ? key : keyPath + "." + key }

    /// The value of a key, absent when missing or null.
    public subscript(key: String) -> ConfigNode? {
        entries.first { $0.key == key }.flatMap { $0.value.isNull ? nil : $0.value }
    }

    /// The value of a key with its key path, absent when missing or null.
    public func value(_ key: String) -> ConfigValue<E>? {
        self[key].map { ConfigValue($0, path: path, keyPath: child(key), syntax: syntax) }
    }

    /// The value of the first of `keys` that is there (and not null): a setting spelled several ways.
    public func value(anyOf keys: String...) -> ConfigValue<E>? {
        keys.lazy.compactMap { self.value($0) }.first
    }

    /// The value of a key that must be there (and not null); `what` says what is expected.
    public func require(_ key: String, _ what: String) throws(E) -> ConfigValue<E> {
        guard let v = value(key) else { throw fail(key, "missing (\(what))") }
        return v
    }

    /// Whether the key is there, null or not.
    public func contains(_ key: String) -> Bool { entries.contains { $0.key == key } }

    /// The error for a key of this mapping.
    public func fail(_ key: String, _ reason: String) -> E { .config(path: path, key: child(key), reason: reason) }

    /// Fails on any key not in `accepted`, listing what is accepted (`what` names the mapping in the message).
    public func rejectUnknown(_ accepted: [String], in what: String? = nil) throws(E) {
        for (k, _) in entries where !accepted.contains(k) {
            let reason = what.map { "unknown key in \($0); accepted: " } ?? "unknown key; accepted here: "
            throw .config(path: path, key: child(k), reason: reason + accepted.joined(separator: ", "))
        }
    }

    public func string(_ key: String, nonEmpty: Bool = false) throws(E) -> String? {
        try value(key)?.string(nonEmpty: nonEmpty)
    }

    public func int(_ key: String, minimum: Int? = nil) throws(E) -> Int? { try value(key)?.int(minimum: minimum) }

    public func uint64(_ key: String) throws(E) -> UInt64? { try value(key)?.uint64() }

    public func double(_ key: String, finite: Bool = false) throws(E) -> Double? { try value(key)?.double(finite: finite) }

    public func bool(_ key: String) throws(E) -> Bool? { try value(key)?.bool() }

    public func sequence(_ key: String) throws(E) -> [ConfigNode]? {
        guard let node = self[key] else { return nil }
        guard case let .sequence(items) = node else {
            throw .config(path: path, key: child(key), reason: syntax == .json ? "expected an array, got \(node.found(syntax))" : "expected a list")
        }
        return items
    }

    public func strings(_ key: String, minimumCount: Int = 0) throws(E) -> [String]? {
        try value(key)?.strings(minimumCount: minimumCount)
    }
}
