import AmalgamCore

/// A parameter as a mergekit config writes it, before it is resolved for a tensor: a scalar, a list
/// (a gradient over layers when numeric, a step lookup otherwise), or a list of `{filter, value}`
/// entries where the first filter that is a substring of the tensor name wins.
public indirect enum ParameterSetting: Sendable, Equatable {
    case scalar(ScalarSetting)
    case list([ScalarSetting])
    case conditional([ConditionalSetting])

    /// A scalar as written: number, boolean, or string (strings that read as numbers stay strings
    /// until the parameter's type is known, as in mergekit's validators).
    public enum ScalarSetting: Sendable, Equatable {
        case number(Double)
        case bool(Bool)
        case string(String)
    }

    /// One `{filter, value}` entry; a nil filter (or `*`) matches every tensor.
    public struct ConditionalSetting: Sendable, Equatable {
        public let filter: String?
        public let value: ParameterSetting

        public init(filter: String?, value: ParameterSetting) {
            self.filter = filter
            self.value = value
        }
    }

    /// The kind of value a parameter takes, from its declared default.
    public enum Kind: Sendable { case number, bool, string }

    /// Resolves the setting for `tensorName` at relative layer position `t` ∈ [0, 1]; nil when a filter
    /// list has no matching entry (the next scope down is asked then). Values were checked against the
    /// parameter's kind when the config was read.
    public func resolve(tensorName: String, t: Double, kind: Kind) -> ParameterValue? {
        switch self {
        case let .scalar(s):
            return Self.validate(s, kind: kind)
        case let .list(items):
            if items.isEmpty { return nil }
            let values = items.map { Self.validate($0, kind: kind) }
            let numbers = values.compactMap { v -> Double? in if case let .number(d)? = v { return d } else { return nil } }
            if kind == .number, numbers.count == values.count {
                let scaled = t * Double(items.count - 1)
                let i0 = Int(scaled)
                let i1 = min(items.count - 1, i0 + 1)
                let frac = scaled - Double(i0)
                return .number((1 - frac) * numbers[i0] + frac * numbers[i1])
            }
            return values[Int(t * Double(values.count - 1))]
        case let .conditional(entries):
            for e in entries where e.filter == nil || e.filter == "*" || (!tensorName.isEmpty && tensorName.contains(e.filter!)) {
                return e.value.resolve(tensorName: tensorName, t: t, kind: kind)
            }
            return nil
        }
    }

    /// A scalar read as the parameter's kind; nil when it cannot be (reported by config validation).
    static func validate(_ s: ScalarSetting, kind: Kind) -> ParameterValue? {
        switch (kind, s) {
        case let (.number, .number(d)): return .number(d)
        case let (.number, .bool(b)): return .number(b ? 1 : 0)
        case let (.number, .string(text)): return Double(text).map { .number($0) }
        case let (.bool, .bool(b)): return .bool(b)
        case let (.bool, .number(d)): return d == 0 || d == 1 ? .bool(d == 1) : nil
        case let (.bool, .string(text)):
            switch text.lowercased() {
            case "true", "yes", "on", "1": return .bool(true)
            case "false", "no", "off", "0": return .bool(false)
            default: return nil
            }
        case let (.string, .string(text)): return .string(text)
        case let (.string, .number(d)): return .string(ParameterValue.number(d).description)
        case let (.string, .bool(b)): return .string(b ? "true" : "false")
        }
    }

    /// Every scalar in the setting (for validation against the parameter's kind).
    var scalars: [ScalarSetting] {
        switch self {
        case let .scalar(s): return [s]
        case let .list(items): return items
        case let .conditional(entries): return entries.flatMap(\.value.scalars)
        }
    }

    /// Decodes a setting from YAML.
    static func decode(_ node: ConfigNode, path: String, keyPath: String) throws(MergeError) -> ParameterSetting {
        switch node {
        case .scalar:
            return .scalar(try scalar(node, path: path, keyPath: keyPath))
        case let .sequence(items):
            if items.allSatisfy({ if case .scalar = $0 { return true } else { return false } }) {
                var values: [ScalarSetting] = []
                for (i, item) in items.enumerated() { values.append(try scalar(item, path: path, keyPath: keyPath + "[\(i)]")) }
                return .list(values)
            }
            var entries: [ConditionalSetting] = []
            for (i, item) in items.enumerated() { entries.append(try conditional(item, path: path, keyPath: keyPath + "[\(i)]")) }
            return .conditional(entries)
        case .mapping:
            return .conditional([try conditional(node, path: path, keyPath: keyPath)])
        }
    }

    private static func scalar(_ node: ConfigNode, path: String, keyPath: String) throws(MergeError) -> ScalarSetting {
        guard case let .scalar(text, kind) = node else {
            throw .config(path: path, key: keyPath, reason: "expected a number, boolean or string")
        }
        switch kind {
        case .int, .float:
            guard let d = node.number else { throw .config(path: path, key: keyPath, reason: "'\(text)' is not a number") }
            return .number(d)
        case .bool: return .bool(node.bool ?? false)
        case .string: return .string(text)
        case .null: throw .config(path: path, key: keyPath, reason: "a parameter value cannot be null")
        }
    }

    private static func conditional(_ node: ConfigNode, path: String, keyPath: String) throws(MergeError) -> ConditionalSetting {
        let map = try ConfigMapping<MergeError>(node, path: path, keyPath: keyPath)
        try map.rejectUnknown(["filter", "pattern", "value"])
        guard let valueNode = map["value"] else {
            throw .config(path: path, key: map.child("value"), reason: "missing; a conditional parameter needs `value` (and optionally `filter`)")
        }
        let value = try decode(valueNode, path: path, keyPath: map.child("value"))
        if case .conditional = value {
            throw .config(path: path, key: map.child("value"), reason: "must be a scalar or a list of scalars")
        }
        // `pattern` is the spelling of some older published configs; it means `filter`.
        let filter = try map.string("filter")
        let pattern = try map.string("pattern")
        return ConditionalSetting(filter: filter ?? pattern, value: value)
    }
}

/// Parameters of one scope (a model, a slice, or the whole config).
public typealias ParameterSettings = [String: ParameterSetting]

extension ParameterSettings {
    static func decode(_ node: ConfigNode?, path: String, keyPath: String) throws(MergeError) -> ParameterSettings? {
        guard let node else { return nil }
        let map = try ConfigMapping<MergeError>(node, path: path, keyPath: keyPath)
        var result: ParameterSettings = [:]
        for (k, v) in map.entries where !v.isNull {
            result[k] = try ParameterSetting.decode(v, path: path, keyPath: map.child(k))
        }
        return result
    }
}
