import Yams

/// A YAML document as the config decoder walks it: scalars keep their text and resolved kind, mappings
/// keep their key order, and every node knows its key path for error messages.
public indirect enum ConfigNode: Sendable {
    public enum ScalarKind: Sendable { case null, bool, int, float, string }

    case scalar(text: String, kind: ScalarKind)
    case sequence([ConfigNode])
    case mapping([(key: String, value: ConfigNode)])

    /// Parses YAML text into nodes.
    public static func parse(yaml: String, path: String) throws(MergeError) -> ConfigNode {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw .config(path: path, key: "(file)", reason: "not valid YAML: \(error)")
        }
        guard let root else { throw .config(path: path, key: "(file)", reason: "the file is empty") }
        return try convert(root, path: path, keyPath: "")
    }

    /// Parses every document of a multi-document YAML text (`---` separated).
    static func parseAll(yaml: String, path: String) throws(MergeError) -> [ConfigNode] {
        var result: [ConfigNode] = []
        do {
            for node in try Yams.compose_all(yaml: yaml) { result.append(try convert(node, path: path, keyPath: "")) }
        } catch let error as MergeError {
            throw error
        } catch {
            throw .config(path: path, key: "(file)", reason: "not valid YAML: \(error)")
        }
        return result
    }

    private static func convert(_ node: Node, path: String, keyPath: String) throws(MergeError) -> ConfigNode {
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
            for (i, item) in seq.enumerated() { items.append(try convert(item, path: path, keyPath: keyPath + "[\(i)]")) }
            return .sequence(items)
        case let .mapping(map):
            var entries: [(String, ConfigNode)] = []
            for (k, v) in map {
                guard let key = k.string else { throw .config(path: path, key: keyPath, reason: "mapping keys must be strings") }
                let child = keyPath.isEmpty ? key : keyPath + "." + key
                if entries.contains(where: { $0.0 == key }) { throw .config(path: path, key: child, reason: "appears twice") }
                entries.append((key, try convert(v, path: path, keyPath: child)))
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

    var isNumeric: Bool { if case .scalar(_, let k) = self { return k == .int || k == .float } else { return false } }
    var isBool: Bool { if case .scalar(_, .bool) = self { return true } else { return false } }
}

import Foundation

/// Reads a mapping node, tracking which keys were used so unknown keys are reported.
public struct ConfigMapping {
    public let path: String
    public let keyPath: String
    public let entries: [(key: String, value: ConfigNode)]

    public init(_ node: ConfigNode, path: String, keyPath: String) throws(MergeError) {
        guard case let .mapping(entries) = node else {
            throw .config(path: path, key: keyPath.isEmpty ? "(document)" : keyPath, reason: "expected a mapping of keys to values")
        }
        self.path = path
        self.keyPath = keyPath
        self.entries = entries
    }

    public func child(_ key: String) -> String { keyPath.isEmpty ? key : keyPath + "." + key }

    public subscript(key: String) -> ConfigNode? {
        entries.first { $0.key == key }.flatMap { $0.value.isNull ? nil : $0.value }
    }

    /// Fails on any key not in `accepted`, listing what is accepted.
    public func rejectUnknown(_ accepted: [String]) throws(MergeError) {
        for (k, _) in entries where !accepted.contains(k) {
            throw .config(path: path, key: child(k), reason: "unknown key; accepted here: \(accepted.joined(separator: ", "))")
        }
    }

    public func string(_ key: String) throws(MergeError) -> String? {
        guard let node = self[key] else { return nil }
        guard let s = node.scalarText else { throw .config(path: path, key: child(key), reason: "expected a string") }
        return s
    }

    public func int(_ key: String) throws(MergeError) -> Int? {
        guard let node = self[key] else { return nil }
        guard let d = node.number, d == d.rounded() else { throw .config(path: path, key: child(key), reason: "expected an integer") }
        return Int(d)
    }

    public func double(_ key: String) throws(MergeError) -> Double? {
        guard let node = self[key] else { return nil }
        guard let d = node.number else { throw .config(path: path, key: child(key), reason: "expected a number") }
        return d
    }

    public func sequence(_ key: String) throws(MergeError) -> [ConfigNode]? {
        guard let node = self[key] else { return nil }
        guard case let .sequence(items) = node else { throw .config(path: path, key: child(key), reason: "expected a list") }
        return items
    }
}
