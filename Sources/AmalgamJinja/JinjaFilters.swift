import AmalgamCore
import Foundation

/// jinja2's filters and tests, with transformers' `tojson` (json.dumps, `ensure_ascii=False`).
extension JinjaInterpreter {
    /// Positional and keyword arguments evaluated, read by position or name.
    struct Bound {
        var positional: [JinjaValue]
        var keyword: [String: JinjaValue]

        /// The argument at `index`, or the keyword `name`.
        func get(_ index: Int, _ name: String) -> JinjaValue? {
            index < positional.count ? positional[index] : keyword[name]
        }
    }

    func bind(_ args: Arguments, _ scope: Scope) throws(JinjaError) -> Bound {
        var keyword: [String: JinjaValue] = [:]
        for (k, v) in args.keyword { keyword[k] = try evaluate(v, scope) }
        return Bound(positional: try args.positional.map { (x) throws(JinjaError) in try evaluate(x, scope) }, keyword: keyword)
    }

    func applyFilter(_ name: String, to value: JinjaValue, _ args: Arguments, scope: Scope, line: Int) throws(JinjaError) -> JinjaValue {
        try filter(name, value, try bind(args, scope), line: line)
    }

    func filter(_ name: String, _ value: JinjaValue, _ a: Bound, line: Int) throws(JinjaError) -> JinjaValue {
        func string(_ v: JinjaValue?, _ what: String) throws(JinjaError) -> String {
            guard case let .string(s)? = v else { throw fail(line, "filter '\(name)': \(what) must be a string, got \(v?.typeName ?? "nothing")") }
            return s
        }
        switch name {
        case "trim":
            let chars = a.get(0, "chars")
            return .string(PythonString.strip(value.text, chars.flatMap { if case let .string(c) = $0 { return c } else { return nil } },
                                              leading: true, trailing: true))
        case "length", "count":
            switch value {
            case .undefined: return .int(0)
            case let .string(s): return .int(s.unicodeScalars.count)
            case let .list(l), let .tuple(l): return .int(l.count)
            case let .dict(d): return .int(d.keys.count)
            case let .namespace(n): return .int(n.values.keys.count)
            default: throw fail(line, "object of type '\(value.typeName)' has no len()")
            }
        case "tojson":
            var indent: Int?
            if let i = a.get(0, "indent") {
                if case .none = i {} else {
                    guard let n = i.integer else { throw fail(line, "tojson: indent must be an integer") }
                    indent = n
                }
            }
            var itemSeparator = indent == nil ? ", " : ",", keySeparator = ": "
            if let s = a.get(2, "separators")?.elements, s.count == 2 {
                itemSeparator = try string(s[0], "separators[0]")
                keySeparator = try string(s[1], "separators[1]")
            }
            let ascii = a.get(1, "ensure_ascii")?.truthy ?? false
            let sortKeys = a.get(3, "sort_keys")?.truthy ?? false
            var out = ""
            try JSONDumper(indent: indent, itemSeparator: itemSeparator, keySeparator: keySeparator, ensureASCII: ascii,
                           sortKeys: sortKeys, interpreter: self, line: line).dump(value, level: 0, into: &out)
            return .string(out)
        case "upper": return .string(value.text.uppercased())
        case "lower": return .string(value.text.lowercased())
        case "capitalize": return .string(PythonString.capitalize(value.text))
        case "title":
            // jinja2: each word (after a space, '-', or an opening bracket) capitalised
            var out = ""
            var wordStart = true
            for c in value.text.unicodeScalars {
                let separator = PythonString.isSpace(c) || "-({[<".unicodeScalars.contains(c)
                if separator { out.unicodeScalars.append(c) } else if wordStart { out += c.properties.uppercaseMapping } else { out += c.properties.lowercaseMapping }
                wordStart = separator
            }
            return .string(out)
        case "default", "d":
            let fallback = a.get(0, "default_value") ?? .string("")
            let boolean = a.get(1, "boolean")?.truthy ?? false
            if value.isUndefined || (boolean && !value.truthy) { return fallback }
            return value
        case "first":
            return try iterate(value, line: line).first ?? .undefined("No first item, sequence was empty.")
        case "last":
            return try iterate(value, line: line).last ?? .undefined("No last item, sequence was empty.")
        case "join":
            var items = try iterate(value, line: line)
            if let attribute = a.get(1, "attribute") {
                items = try items.map { (x) throws(JinjaError) in try lookupPath(x, attribute, line: line) }
            }
            let separator = try a.get(0, "d").map { (x) throws(JinjaError) in try string(x, "the separator") } ?? ""
            return .string(items.map(\.text).joined(separator: separator))
        case "replace":
            let old = try string(a.get(0, "old"), "old"), new = try string(a.get(1, "new"), "new")
            let count = a.get(2, "count")?.integer ?? -1
            return .string(PythonString.replace(value.text, old, new, count: count))
        case "list": return .list(try iterate(value, line: line))
        case "items":
            switch value {
            case .undefined: return .list([])
            case let .dict(d): return .list(d.items.map { .tuple([.string($0.0), $0.1]) })
            default: throw fail(line, "filter 'items': can only get item pairs from a mapping, not \(value.typeName)")
            }
        case "selectattr", "rejectattr", "select", "reject":
            let byAttribute = name.hasSuffix("attr")
            let keep = name.hasPrefix("select")
            let attribute = byAttribute ? a.positional.first : nil
            let rest = Array(a.positional.dropFirst(byAttribute ? 1 : 0))
            var kept: [JinjaValue] = []
            for item in try iterate(value, line: line) {
                let subject = try attribute.map { (x) throws(JinjaError) in try lookupPath(item, x, line: line) } ?? item
                let passes: Bool
                if let testName = rest.first {
                    guard case let .string(t) = testName else { throw fail(line, "filter '\(name)': the test name must be a string") }
                    passes = try test(t, subject, Bound(positional: Array(rest.dropFirst()), keyword: [:]), line: line)
                } else {
                    passes = subject.truthy
                }
                if passes == keep { kept.append(item) }
            }
            return .list(kept)
        case "map":
            let items = try iterate(value, line: line)
            if let attribute = a.keyword["attribute"] {
                let fallback = a.keyword["default"]
                return .list(try items.map { (x) throws(JinjaError) -> JinjaValue in
                    let v = try lookupPath(x, attribute, line: line)
                    if v.isUndefined, let fallback { return fallback }
                    return v
                })
            }
            guard case let .string(f)? = a.positional.first else { throw fail(line, "filter 'map' needs attribute=… or a filter name") }
            let rest = Bound(positional: Array(a.positional.dropFirst()), keyword: a.keyword)
            return .list(try items.map { (x) throws(JinjaError) in try filter(f, x, rest, line: line) })
        case "string": return .string(value.text)
        case "safe": return value
        case "int":
            let fallback = a.get(0, "default") ?? .int(0)
            switch value {
            case let .int(i): return .int(i)
            case let .bool(b): return .int(b ? 1 : 0)
            case let .double(d): return d.isFinite ? .int(Int(d)) : fallback
            case let .string(s):
                let t = PythonString.strip(s, nil, leading: true, trailing: true).replacingOccurrences(of: "_", with: "")
                if let i = Int(t) { return .int(i) }
                if let d = Double(t), d.isFinite { return .int(Int(d)) }
                return fallback
            default: return fallback
            }
        case "float":
            let fallback = a.get(0, "default") ?? .double(0)
            switch value {
            case let .string(s): return Double(PythonString.strip(s, nil, leading: true, trailing: true)).map { .double($0) } ?? fallback
            default: return value.number.map { .double($0) } ?? fallback
            }
        case "abs":
            switch value {
            case let .int(i): return .int(abs(i))
            case let .bool(b): return .int(b ? 1 : 0)
            case let .double(d): return .double(abs(d))
            default: throw fail(line, undefinedOr(value, "bad operand type for abs(): '\(value.typeName)'"))
            }
        case "round":
            let precision = a.get(0, "precision")?.integer ?? 0
            let method = (try a.get(1, "method").map { (x) throws(JinjaError) in try string(x, "method") }) ?? "common"
            guard let x = value.number else { throw fail(line, undefinedOr(value, "filter 'round' needs a number, got \(value.typeName)")) }
            if method == "common", let i = value.integer, precision >= 0 { return .int(i) }
            let scale = Foundation.pow(10, Double(precision))
            switch method {
            case "common": return .double((x * scale).rounded(.toNearestOrEven) / scale)
            case "ceil": return .double((x * scale).rounded(.up) / scale)
            case "floor": return .double((x * scale).rounded(.down) / scale)
            default: throw fail(line, "filter 'round': method must be common, ceil or floor")
            }
        case "reverse":
            if case let .string(s) = value { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .list(try iterate(value, line: line).reversed())
        case "sort":
            let reverse = a.get(0, "reverse")?.truthy ?? false
            let caseSensitive = a.get(1, "case_sensitive")?.truthy ?? false
            let attribute = a.get(2, "attribute")
            let items = try iterate(value, line: line)
            let keys = try items.map { (x) throws(JinjaError) -> JinjaValue in
                let k = try attribute.map { (p) throws(JinjaError) in try lookupPath(x, p, line: line) } ?? x
                if !caseSensitive, case let .string(s) = k { return .string(s.lowercased()) }
                return k
            }
            var failure: JinjaError?
            // a stable sort, as Python's
            let order = items.indices.sorted { i, j in
                guard let lt = keys[i].lessThan(keys[j]), let gt = keys[j].lessThan(keys[i]) else {
                    failure = fail(line, "filter 'sort': cannot order \(keys[i].typeName) and \(keys[j].typeName)")
                    return i < j
                }
                if lt == gt { return i < j }
                return reverse ? gt : lt
            }
            if let failure { throw failure }
            return .list(order.map { items[$0] })
        case "unique":
            let caseSensitive = a.get(0, "case_sensitive")?.truthy ?? false
            let attribute = a.get(1, "attribute")
            var seen: [JinjaValue] = []
            var out: [JinjaValue] = []
            for x in try iterate(value, line: line) {
                var k = try attribute.map { (p) throws(JinjaError) in try lookupPath(x, p, line: line) } ?? x
                if !caseSensitive, case let .string(s) = k { k = .string(s.lowercased()) }
                if !seen.contains(where: { $0.equals(k) }) {
                    seen.append(k)
                    out.append(x)
                }
            }
            return .list(out)
        case "max", "min":
            let items = try iterate(value, line: line)
            guard var best = items.first else { return .undefined("No aggregated item, sequence was empty.") }
            for x in items.dropFirst() {
                guard let lt = x.lessThan(best) else { throw fail(line, "filter '\(name)': cannot order \(x.typeName) and \(best.typeName)") }
                let gt = best.lessThan(x) ?? false
                if name == "min" ? lt : gt { best = x }
            }
            return best
        case "sum":
            var total: JinjaValue = a.get(1, "start") ?? .int(0)
            for x in try iterate(value, line: line) { total = try binary("+", total, x, line: line) }
            return total
        case "indent":
            let width = a.get(0, "width")?.integer ?? 4
            let first = a.get(1, "first")?.truthy ?? false
            let blank = a.get(2, "blank")?.truthy ?? false
            let pad = String(repeating: " ", count: width)
            var lines = PythonString.split(value.text, "\n")
            for k in lines.indices where (k > 0 || first) && (blank || !PythonString.strip(lines[k], nil, leading: true, trailing: true).isEmpty) {
                lines[k] = pad + lines[k]
            }
            return .string(lines.joined(separator: "\n"))
        default:
            throw unsupported(line, "the filter '\(name)'")
        }
    }

    /// An attribute path such as `"function.name"` (as selectattr, map and sort take it); integer parts index.
    func lookupPath(_ value: JinjaValue, _ path: JinjaValue, line: Int) throws(JinjaError) -> JinjaValue {
        if let i = path.integer { return try element(value, .int(i), line: line) }
        guard case let .string(p) = path else { throw fail(line, "an attribute name must be a string") }
        var v = value
        for part in p.split(separator: ".", omittingEmptySubsequences: false) {
            if case .undefined = v { return v }
            v = try element(v, Int(part).map { .int($0) } ?? .string(String(part)), line: line)
        }
        return v
    }

    func applyTest(_ name: String, to value: JinjaValue, _ args: Arguments, scope: Scope, line: Int) throws(JinjaError) -> Bool {
        try test(name, value, try bind(args, scope), line: line)
    }

    func test(_ name: String, _ value: JinjaValue, _ a: Bound, line: Int) throws(JinjaError) -> Bool {
        func other() throws(JinjaError) -> JinjaValue {
            guard let o = a.positional.first else { throw fail(line, "the test '\(name)' needs an argument") }
            return o
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": if case .none = value { return true } else { return false }
        case "string": if case .string = value { return true } else { return false }
        case "mapping": if case .dict = value { return true } else { return false }
        case "number": return value.number != nil
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "iterable":
            switch value {
            case .undefined, .string, .list, .tuple, .dict, .namespace: return true
            default: return false
            }
        case "sequence":
            switch value {
            case .undefined, .string, .list, .tuple, .dict: return true
            default: return false
            }
        case "callable":
            switch value {
            case .macro, .builtin: return true
            default: return false
            }
        case "equalto", "eq", "==": return value.equals(try other())
        case "ne", "!=": return !value.equals(try other())
        case "lt", "<": return try compare("<", value, try other(), line: line)
        case "le", "<=": return try compare("<=", value, try other(), line: line)
        case "gt", ">", "greaterthan": return try compare(">", value, try other(), line: line)
        case "ge", ">=": return try compare(">=", value, try other(), line: line)
        case "in": return try contains(try other(), value, line: line)
        case "sameas":
            let o = try other()
            switch (value, o) {
            case (.none, .none): return true
            case let (.bool(x), .bool(y)): return x == y
            case let (.namespace(x), .namespace(y)): return x === y
            default: return false
            }
        case "odd", "even", "divisibleby":
            guard let i = value.integer else { throw fail(line, undefinedOr(value, "the test '\(name)' needs an integer, got \(value.typeName)")) }
            if name == "odd" { return i % 2 != 0 }
            if name == "even" { return i % 2 == 0 }
            guard let d = try other().integer, d != 0 else { throw fail(line, "divisibleby needs a non-zero integer") }
            return i % d == 0
        case "lower": if case let .string(s) = value { return s == s.lowercased() } else { return false }
        case "upper": if case let .string(s) = value { return s == s.uppercased() } else { return false }
        default:
            throw unsupported(line, "the test '\(name)'")
        }
    }
}

/// Python's `json.dumps` for template values.
struct JSONDumper {
    let indent: Int?
    let itemSeparator: String
    let keySeparator: String
    let ensureASCII: Bool
    let sortKeys: Bool
    let interpreter: JinjaInterpreter
    let line: Int

    func dump(_ value: JinjaValue, level: Int, into out: inout String) throws(JinjaError) {
        switch value {
        case .none: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .int(i): out += String(i)
        case let .double(d):
            out += d.isNaN ? "NaN" : d.isInfinite ? (d > 0 ? "Infinity" : "-Infinity") : pythonFloatRepr(d)
        case let .string(s): string(s, into: &out)
        case let .list(items), let .tuple(items):
            guard !items.isEmpty else { out += "[]"; return }
            out += "["
            for (k, item) in items.enumerated() {
                out += k == 0 ? newline(level + 1) : itemSeparator + newline(level + 1)
                try dump(item, level: level + 1, into: &out)
            }
            out += newline(level) + "]"
        case let .dict(d):
            try object(sortKeys ? d.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) } : d.keys, { d[$0]! }, level: level, into: &out)
        case let .namespace(n):
            throw interpreter.fail(line, "tojson: Object of type Namespace is not JSON serializable (\(n.values.keys.count) attributes)")
        default:
            throw interpreter.fail(line, "tojson: Object of type \(value.typeName) is not JSON serializable")
        }
    }

    private func object(_ keys: [String], _ get: (String) -> JinjaValue, level: Int, into out: inout String) throws(JinjaError) {
        guard !keys.isEmpty else { out += "{}"; return }
        out += "{"
        for (k, key) in keys.enumerated() {
            out += k == 0 ? newline(level + 1) : itemSeparator + newline(level + 1)
            string(key, into: &out)
            out += keySeparator
            try dump(get(key), level: level + 1, into: &out)
        }
        out += newline(level) + "}"
    }

    private func newline(_ level: Int) -> String {
        guard let indent else { return "" }
        return "\n" + String(repeating: " ", count: indent * level)
    }

    private func string(_ s: String, into out: inout String) {
        JSONValue.quote(s, asciiOnly: ensureASCII, into: &out)
    }
}
