import AmalgamCore
import Foundation

/// A value inside a running template, with Python's semantics as jinja2 gives them (truthiness, `str()`,
/// equality, ordering).
indirect enum JinjaValue {
    /// jinja2's default `Undefined`: renders empty, is falsy, iterates as empty; its name is kept for errors.
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([JinjaValue])
    /// A tuple (from `items()`, or `(a, b)` in a template): a list that prints with parentheses.
    case tuple([JinjaValue])
    case dict(JinjaDict)
    case namespace(JinjaNamespace)
    case loop(LoopState)
    case macro(JinjaMacro)
    /// A global function (`range`, `namespace`, `dict`, `raise_exception`, `strftime_now`).
    case builtin(String)

    init(_ json: JSONValue) {
        switch json {
        case .null: self = .none
        case let .bool(b): self = .bool(b)
        case let .number(text):
            if let i = Int(text) { self = .int(i) } else { self = .double(json.doubleValue ?? .nan) }
        case let .string(s): self = .string(s)
        case let .array(a): self = .list(a.map(JinjaValue.init))
        case let .object(o):
            var d = JinjaDict()
            for (k, v) in o { d[k] = JinjaValue(v) }
            self = .dict(d)
        }
    }

    var isUndefined: Bool { if case .undefined = self { return true } else { return false } }

    /// The elements of a list or tuple.
    var elements: [JinjaValue]? {
        switch self {
        case let .list(a), let .tuple(a): return a
        default: return nil
        }
    }

    /// Python's `bool(x)`.
    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case let .bool(b): return b
        case let .int(i): return i != 0
        case let .double(d): return d != 0
        case let .string(s): return !s.isEmpty
        case let .list(a), let .tuple(a): return !a.isEmpty
        case let .dict(d): return !d.keys.isEmpty
        case .namespace, .loop, .macro, .builtin: return true
        }
    }

    /// Python's type name, for messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .loop: return "LoopContext"
        case .macro: return "Macro"
        case .builtin: return "function"
        }
    }

    /// A number as a double (bools count, as in Python).
    var number: Double? {
        switch self {
        case let .bool(b): return b ? 1 : 0
        case let .int(i): return Double(i)
        case let .double(d): return d
        default: return nil
        }
    }

    /// An integer (bools count, as in Python).
    var integer: Int? {
        switch self {
        case let .bool(b): return b ? 1 : 0
        case let .int(i): return i
        default: return nil
        }
    }

    /// Python's `str(x)`, which `{{ x }}` prints.
    var text: String {
        switch self {
        case .undefined: return ""
        case let .string(s): return s
        default: return repr
        }
    }

    /// Python's `repr(x)`, used for the elements of printed lists and dicts.
    var repr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case let .bool(b): return b ? "True" : "False"
        case let .int(i): return String(i)
        case let .double(d): return pythonFloatRepr(d)
        case let .string(s): return pythonStringRepr(s)
        case let .list(a): return "[" + a.map(\.repr).joined(separator: ", ") + "]"
        case let .tuple(a): return a.count == 1 ? "(\(a[0].repr),)" : "(" + a.map(\.repr).joined(separator: ", ") + ")"
        case let .dict(d): return "{" + d.keys.map { "\(pythonStringRepr($0)): \(d[$0]!.repr)" }.joined(separator: ", ") + "}"
        case let .namespace(n): return "<Namespace " + JinjaValue.dict(n.values).repr + ">"
        case .loop: return "<LoopContext>"
        case let .macro(m): return "<Macro '\(m.name)'>"
        case let .builtin(name): return "<function \(name)>"
        }
    }

    /// Python's `==`: numbers compare by value across int/float/bool, containers element-wise.
    func equals(_ other: JinjaValue) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.string(a), .string(b)): return a == b
        case let (.dict(a), .dict(b)):
            return a.keys.count == b.keys.count && a.keys.allSatisfy { k in b[k].map { a[k]!.equals($0) } ?? false }
        case let (.list(a), .list(b)), let (.tuple(a), .tuple(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case let (.namespace(a), .namespace(b)): return a === b
        case let (.builtin(a), .builtin(b)): return a == b
        default:
            if let x = number, let y = other.number { return x == y }
            return false
        }
    }

    /// Python's `<` for numbers, strings and sequences; nil when the types cannot be ordered.
    func lessThan(_ other: JinjaValue) -> Bool? {
        switch (self, other) {
        case let (.string(a), .string(b)): return Array(a.unicodeScalars.map(\.value)).lexicographicallyPrecedes(b.unicodeScalars.map(\.value))
        case let (.list(a), .list(b)), let (.tuple(a), .tuple(b)):
            for (x, y) in zip(a, b) where !x.equals(y) { return x.lessThan(y) }
            return a.count < b.count
        default:
            if let x = number, let y = other.number { return x < y }
            return nil
        }
    }
}

/// A dict with its keys in insertion order, as Python's.
struct JinjaDict {
    private(set) var keys: [String] = []
    private var storage: [String: JinjaValue] = [:]

    subscript(key: String) -> JinjaValue? {
        get { storage[key] }
        set {
            if storage[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil, storage[key] != nil { keys.removeAll { $0 == key } }
            storage[key] = newValue
        }
    }

    var items: [(String, JinjaValue)] { keys.map { ($0, storage[$0]!) } }
}

/// `namespace(...)`: the one mutable object a template can assign attributes of (`set ns.x = …`).
final class JinjaNamespace {
    var values = JinjaDict()
}

/// A `{% macro %}` with the scope it was defined in.
final class JinjaMacro {
    let name: String
    let parameters: [(name: String, defaultValue: Expression?)]
    let body: [Statement]
    let scope: Scope

    init(name: String, parameters: [(name: String, defaultValue: Expression?)], body: [Statement], scope: Scope) {
        self.name = name
        self.parameters = parameters
        self.body = body
        self.scope = scope
    }
}

/// The `loop` variable of a `{% for %}`.
final class LoopState {
    let items: [JinjaValue]
    var index0 = 0

    init(items: [JinjaValue]) { self.items = items }

    func attribute(_ name: String) -> JinjaValue? {
        let n = items.count
        switch name {
        case "index": return .int(index0 + 1)
        case "index0": return .int(index0)
        case "revindex": return .int(n - index0)
        case "revindex0": return .int(n - index0 - 1)
        case "first": return .bool(index0 == 0)
        case "last": return .bool(index0 == n - 1)
        case "length": return .int(n)
        case "depth": return .int(1)
        case "depth0": return .int(0)
        case "previtem": return index0 > 0 ? items[index0 - 1] : .undefined("loop.previtem")
        case "nextitem": return index0 + 1 < n ? items[index0 + 1] : .undefined("loop.nextitem")
        default: return nil
        }
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in positional notation for exponents
/// from -4 to 15 and scientific (`1e-05`, `1e+16`) outside.
func pythonFloatRepr(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d > 0 ? "inf" : "-inf" }
    if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
    // Swift's description also gives the shortest round-trip digits; re-lay them out as Python does.
    var s = "\(abs(d))"
    var exponent = 0
    if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        exponent = Int(s[s.index(after: e)...])!
        s = String(s[..<e])
    }
    let parts = s.split(separator: ".", omittingEmptySubsequences: false)
    let intPart = String(parts[0]), fracPart = parts.count > 1 ? String(parts[1]) : ""
    var digits = intPart + fracPart
    var pointPosition = intPart.count + exponent  // digits before the decimal point
    while digits.hasPrefix("0") && digits.count > 1 { digits.removeFirst(); pointPosition -= 1 }
    while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
    let decimalExponent = pointPosition - 1
    let sign = d < 0 ? "-" : ""
    if decimalExponent < -4 || decimalExponent >= 16 {
        let mantissa = digits.count == 1 ? digits : String(digits.first!) + "." + digits.dropFirst()
        let e = abs(decimalExponent)
        return sign + mantissa + "e" + (decimalExponent < 0 ? "-" : "+") + (e < 10 ? "0\(e)" : "\(e)")
    }
    if pointPosition <= 0 { return sign + "0." + String(repeating: "0", count: -pointPosition) + digits }
    if pointPosition >= digits.count { return sign + digits + String(repeating: "0", count: pointPosition - digits.count) + ".0" }
    let i = digits.index(digits.startIndex, offsetBy: pointPosition)
    return sign + digits[..<i] + "." + digits[i...]
}

/// Python's `repr(str)`: single quotes unless the text has one and no double quote; non-printable
/// characters escaped.
func pythonStringRepr(_ s: String) -> String {
    let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
    var out = String(quote)
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if Character(scalar) == quote { out += "\\" + String(quote); continue }
            if isPythonPrintable(scalar) { out.unicodeScalars.append(scalar); continue }
            let v = scalar.value
            if v < 0x100 { out += "\\x" + hex(v, 2) } else if v < 0x10000 { out += "\\u" + hex(v, 4) } else { out += "\\U" + hex(v, 8) }
        }
    }
    out.append(quote)
    return out
}

private func hex(_ v: UInt32, _ width: Int) -> String {
    let h = String(v, radix: 16)
    return String(repeating: "0", count: max(0, width - h.count)) + h
}

/// Python's `str.isprintable()` for one character: not a control, format, surrogate, private-use,
/// unassigned or separator character (the ASCII space excepted).
private func isPythonPrintable(_ s: Unicode.Scalar) -> Bool {
    if s == " " { return true }
    switch s.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator:
        return false
    default: return true
    }
}
