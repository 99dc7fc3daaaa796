import Foundation

/// Variables visible at one point of a template: a frame and the frames around it. A `{% for %}`
/// iteration and a macro call get a new frame; `{% if %}` does not (as in jinja2).
final class Scope {
    var variables: [String: JinjaValue] = [:]
    let parent: Scope?

    init(parent: Scope?) { self.parent = parent }

    func lookup(_ name: String) -> JinjaValue? {
        var scope: Scope? = self
        while let s = scope {
            if let v = s.variables[name] { return v }
            scope = s.parent
        }
        return nil
    }
}

/// What a statement asks of the loop around it.
enum Flow { case normal, breakLoop, continueLoop }

/// Runs parsed templates: statements write text, expressions evaluate to values, with jinja2's
/// semantics (as configured by transformers: undefined values render empty, no autoescaping).
struct JinjaInterpreter {
    let origin: String

    func fail(_ line: Int, _ message: String) -> JinjaError { JinjaError(.runtime, origin: origin, line: line, message) }
    func unsupported(_ line: Int, _ construct: String) -> JinjaError { JinjaError(.unsupported, origin: origin, line: line, construct) }

    // MARK: statements

    func render(_ statements: [Statement], scope: Scope, into out: inout String) throws(JinjaError) -> Flow {
        for s in statements {
            let flow = try execute(s, scope: scope, into: &out)
            if flow != .normal { return flow }
        }
        return .normal
    }

    private func execute(_ s: Statement, scope: Scope, into out: inout String) throws(JinjaError) -> Flow {
        switch s.kind {
        case let .text(t):
            out += t
        case let .output(e):
            out += try evaluate(e, scope).text
        case let .conditional(branches, otherwise):
            for (condition, body) in branches where try evaluate(condition, scope).truthy {
                return try render(body, scope: scope, into: &out)
            }
            return try render(otherwise, scope: scope, into: &out)
        case let .loop(targets, iterable, filter, body, otherwise):
            return try loop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise,
                            line: s.line, scope: scope, into: &out)
        case let .assign(targets, value):
            try bind(targets, to: try evaluate(value, scope), in: scope, line: s.line)
        case let .assignAttribute(object, attribute, value):
            guard case let .namespace(ns)? = scope.lookup(object) else {
                throw fail(s.line, "cannot assign attribute '\(attribute)' of '\(object)': only namespace() objects have assignable attributes")
            }
            guard !attribute.hasPrefix("_") else {
                throw fail(s.line, "chat templates cannot store underscore-prefixed attributes on a namespace ('\(attribute)')")
            }
            ns.values[attribute] = try evaluate(value, scope)
        case let .capture(name, body):
            var text = ""
            _ = try render(body, scope: scope, into: &text)
            scope.variables[name] = .string(text)
        case let .macro(name, parameters, body):
            scope.variables[name] = .macro(JinjaMacro(name: name, parameters: parameters, body: body, scope: scope))
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        case let .generation(body):
            return try render(body, scope: scope, into: &out)
        case let .filterBlock(name, args, body):
            var text = ""
            _ = try render(body, scope: scope, into: &text)
            out += try applyFilter(name, to: .string(text), args, scope: scope, line: s.line).text
        }
        return .normal
    }

    private func bind(_ targets: [String], to value: JinjaValue, in scope: Scope, line: Int) throws(JinjaError) {
        if targets.count == 1 {
            scope.variables[targets[0]] = value
            return
        }
        let items = try iterate(value, line: line)
        guard items.count == targets.count else {
            throw fail(line, "cannot unpack \(items.count) values into \(targets.count) names (\(targets.joined(separator: ", ")))")
        }
        for (t, v) in zip(targets, items) { scope.variables[t] = v }
    }

    private func loop(targets: [String], iterable: Expression, filter: Expression?, body: [Statement], otherwise: [Statement],
                      line: Int, scope: Scope, into out: inout String) throws(JinjaError) -> Flow {
        var items = try iterate(try evaluate(iterable, scope), line: iterable.line)
        if let filter {
            var kept: [JinjaValue] = []
            for item in items {
                let s = Scope(parent: scope)
                try bind(targets, to: item, in: s, line: line)
                if try evaluate(filter, s).truthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty { return try render(otherwise, scope: scope, into: &out) }
        let state = LoopState(items: items)
        for (k, item) in items.enumerated() {
            state.index0 = k
            let s = Scope(parent: scope)
            s.variables["loop"] = .loop(state)
            try bind(targets, to: item, in: s, line: line)
            if try render(body, scope: s, into: &out) == .breakLoop { break }
        }
        return .normal
    }

    /// The items a `for` sees: list elements, dict keys, string characters; undefined is empty.
    func iterate(_ value: JinjaValue, line: Int) throws(JinjaError) -> [JinjaValue] {
        switch value {
        case .undefined: return []
        case let .list(a), let .tuple(a): return a
        case let .dict(d): return d.keys.map { .string($0) }
        case let .string(s): return s.unicodeScalars.map { .string(String($0)) }
        case let .namespace(n): return n.values.keys.map { .string($0) }
        default: throw fail(line, "'\(value.typeName)' object is not iterable")
        }
    }

    // MARK: expressions

    func evaluate(_ e: Expression, _ scope: Scope) throws(JinjaError) -> JinjaValue {
        switch e.kind {
        case let .literal(v): return v
        case let .name(n): return scope.lookup(n) ?? .undefined("'\(n)' is undefined")
        case let .list(items): return .list(try items.map { (x) throws(JinjaError) in try evaluate(x, scope) })
        case let .tuple(items): return .tuple(try items.map { (x) throws(JinjaError) in try evaluate(x, scope) })
        case let .dict(pairs):
            var d = JinjaDict()
            for (k, v) in pairs {
                guard case let .string(key) = try evaluate(k, scope) else { throw unsupported(e.line, "a dict key that is not a string") }
                d[key] = try evaluate(v, scope)
            }
            return .dict(d)
        case let .attribute(object, name):
            return try attribute(try evaluate(object, scope), name, line: e.line)
        case let .index(object, index):
            return try element(try evaluate(object, scope), try evaluate(index, scope), line: e.line)
        case let .slice(object, start, stop, step):
            func bound(_ x: Expression?) throws(JinjaError) -> Int? {
                guard let x else { return nil }
                let v = try evaluate(x, scope)
                if case .none = v { return nil }
                guard let i = v.integer else { throw fail(e.line, "slice indices must be integers, not \(v.typeName)") }
                return i
            }
            return try slice(try evaluate(object, scope), try bound(start), try bound(stop), try bound(step), line: e.line)
        case let .call(callee, args):
            return try call(callee, args, scope: scope, line: e.line)
        case let .filter(value, name, args):
            return try applyFilter(name, to: try evaluate(value, scope), args, scope: scope, line: e.line)
        case let .test(value, name, args, negated):
            let result = try applyTest(name, to: try evaluate(value, scope), args, scope: scope, line: e.line)
            return .bool(result != negated)
        case let .not(x): return .bool(!(try evaluate(x, scope).truthy))
        case let .negate(x):
            let v = try evaluate(x, scope)
            switch v {
            case let .int(i): return .int(-i)
            case let .bool(b): return .int(b ? -1 : 0)
            case let .double(d): return .double(-d)
            default: throw fail(e.line, undefinedOr(v, "bad operand type for unary -: '\(v.typeName)'"))
            }
        case let .plus(x):
            let v = try evaluate(x, scope)
            guard v.number != nil else { throw fail(e.line, undefinedOr(v, "bad operand type for unary +: '\(v.typeName)'")) }
            return v
        case let .binary(op, a, b):
            return try binary(op, try evaluate(a, scope), try evaluate(b, scope), line: e.line)
        case let .and(a, b):
            let left = try evaluate(a, scope)
            return left.truthy ? try evaluate(b, scope) : left
        case let .or(a, b):
            let left = try evaluate(a, scope)
            return left.truthy ? left : try evaluate(b, scope)
        case let .compare(first, chain):
            var left = try evaluate(first, scope)
            for (op, x) in chain {
                let right = try evaluate(x, scope)
                guard try compare(op, left, right, line: e.line) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case let .conditional(condition, then, otherwise):
            if try evaluate(condition, scope).truthy { return try evaluate(then, scope) }
            return try otherwise.map { (x) throws(JinjaError) in try evaluate(x, scope) } ?? .undefined("the conditional expression had no else branch")
        }
    }

    /// The message of an operation on an undefined value (jinja2's), or `message`.
    func undefinedOr(_ v: JinjaValue, _ message: String) -> String {
        if case let .undefined(why) = v { return why }
        return message
    }

    /// `obj.name`: a dict key, a namespace or loop attribute; missing gives undefined.
    func attribute(_ object: JinjaValue, _ name: String, line: Int) throws(JinjaError) -> JinjaValue {
        switch object {
        case let .undefined(why): throw fail(line, why)
        case let .dict(d): return d[name] ?? .undefined("'dict object' has no attribute '\(name)'")
        case let .namespace(n): return n.values[name] ?? .undefined("'Namespace object' has no attribute '\(name)'")
        case let .loop(state):
            if let v = state.attribute(name) { return v }
            if name == "cycle" { return .builtin("loop.cycle") }
            return .undefined("'LoopContext object' has no attribute '\(name)'")
        default: return .undefined("'\(object.typeName) object' has no attribute '\(name)'")
        }
    }

    /// `obj[index]`: dict key, list or string position (negative from the end); missing gives undefined.
    func element(_ object: JinjaValue, _ index: JinjaValue, line: Int) throws(JinjaError) -> JinjaValue {
        switch object {
        case let .undefined(why): throw fail(line, why)
        case let .dict(d):
            guard case let .string(k) = index else { return .undefined("'dict object' has no attribute \(index.repr)") }
            return d[k] ?? .undefined("'dict object' has no attribute '\(k)'")
        case let .list(a), let .tuple(a):
            guard let i = index.integer else {
                if case let .string(name) = index { return try attribute(object, name, line: line) }
                throw fail(line, "list indices must be integers, not \(index.typeName)")
            }
            let k = i < 0 ? a.count + i : i
            return k >= 0 && k < a.count ? a[k] : .undefined("list object has no element \(i)")
        case let .string(s):
            guard let i = index.integer else { return .undefined("'str object' has no attribute \(index.repr)") }
            let chars = Array(s.unicodeScalars)
            let k = i < 0 ? chars.count + i : i
            return k >= 0 && k < chars.count ? .string(String(chars[k])) : .undefined("str object has no element \(i)")
        case .namespace, .loop:
            if case let .string(name) = index { return try attribute(object, name, line: line) }
            return .undefined("'\(object.typeName) object' has no element \(index.repr)")
        default:
            return .undefined("'\(object.typeName) object' has no element \(index.repr)")
        }
    }

    /// Python slicing `[start:stop:step]` of a list, tuple or string.
    func slice(_ object: JinjaValue, _ start: Int?, _ stop: Int?, _ step: Int?, line: Int) throws(JinjaError) -> JinjaValue {
        let step = step ?? 1
        guard step != 0 else { throw fail(line, "slice step cannot be zero") }
        func indices(_ n: Int) -> [Int] {
            func clamp(_ v: Int?, _ dflt: Int, low: Int, high: Int) -> Int {
                guard var v else { return dflt }
                if v < 0 { v += n }
                return min(max(v, low), high)
            }
            if step > 0 {
                let a = clamp(start, 0, low: 0, high: n), b = clamp(stop, n, low: 0, high: n)
                return a < b ? Array(stride(from: a, to: b, by: step)) : []
            }
            let a = clamp(start, n - 1, low: -1, high: n - 1), b = clamp(stop, -1, low: -1, high: n - 1)
            return a > b ? Array(stride(from: a, to: b, by: step)) : []
        }
        switch object {
        case let .undefined(why): throw fail(line, why)
        case let .list(a): return .list(indices(a.count).map { a[$0] })
        case let .tuple(a): return .tuple(indices(a.count).map { a[$0] })
        case let .string(s):
            let chars = Array(s.unicodeScalars)
            var view = String.UnicodeScalarView()
            for i in indices(chars.count) { view.append(chars[i]) }
            return .string(String(view))
        default: throw fail(line, "'\(object.typeName)' object is not subscriptable")
        }
    }

    // MARK: operators

    func binary(_ op: String, _ a: JinjaValue, _ b: JinjaValue, line: Int) throws(JinjaError) -> JinjaValue {
        if op == "~" { return .string(a.text + b.text) }
        if case let .undefined(why) = a { throw fail(line, why) }
        if case let .undefined(why) = b { throw fail(line, why) }
        func typeError() -> JinjaError {
            fail(line, "unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'")
        }
        switch (op, a, b) {
        case let ("+", .string(x), .string(y)): return .string(x + y)
        case let ("+", .list(x), .list(y)): return .list(x + y)
        case let ("+", .tuple(x), .tuple(y)): return .tuple(x + y)
        case let ("*", .string(s), n), let ("*", n, .string(s)):
            guard let k = n.integer else { throw typeError() }
            return .string(String(repeating: s, count: max(0, k)))
        case let ("*", .list(l), n), let ("*", n, .list(l)):
            guard let k = n.integer else { throw typeError() }
            return .list(Array([[JinjaValue]](repeating: l, count: max(0, k)).joined()))
        case ("%", .string, _): throw unsupported(line, "printf-style formatting ('…' % value)")
        default: break
        }
        guard a.number != nil, b.number != nil else { throw typeError() }
        if let x = a.integer, let y = b.integer {
            switch op {
            case "+": return .int(x &+ y)
            case "-": return .int(x &- y)
            case "*": return .int(x &* y)
            case "/":
                guard y != 0 else { throw fail(line, "division by zero") }
                return .double(Double(x) / Double(y))
            case "//":
                guard y != 0 else { throw fail(line, "integer division or modulo by zero") }
                return .int(Int((Double(x) / Double(y)).rounded(.down)))
            case "%":
                guard y != 0 else { throw fail(line, "integer division or modulo by zero") }
                let r = x % y
                return .int(r != 0 && (r < 0) != (y < 0) ? r + y : r)
            case "**":
                if y >= 0 {
                    var result = 1
                    for _ in 0..<y { result = result &* x }
                    return .int(result)
                }
                return .double(Foundation.pow(Double(x), Double(y)))
            default: throw typeError()
            }
        }
        let x = a.number!, y = b.number!
        switch op {
        case "+": return .double(x + y)
        case "-": return .double(x - y)
        case "*": return .double(x * y)
        case "/":
            guard y != 0 else { throw fail(line, "float division by zero") }
            return .double(x / y)
        case "//":
            guard y != 0 else { throw fail(line, "float floor division by zero") }
            return .double((x / y).rounded(.down))
        case "%":
            guard y != 0 else { throw fail(line, "float modulo") }
            let r = fmod(x, y)
            return .double(r != 0 && (r < 0) != (y < 0) ? r + y : r)
        case "**": return .double(Foundation.pow(x, y))
        default: throw typeError()
        }
    }

    func compare(_ op: String, _ a: JinjaValue, _ b: JinjaValue, line: Int) throws(JinjaError) -> Bool {
        switch op {
        case "==": return a.equals(b)
        case "!=": return !a.equals(b)
        case "in": return try contains(b, a, line: line)
        case "not in": return try !contains(b, a, line: line)
        default:
            if case let .undefined(why) = a { throw fail(line, why) }
            if case let .undefined(why) = b { throw fail(line, why) }
            guard let lt = a.lessThan(b), let gt = b.lessThan(a) else {
                throw fail(line, "'\(op)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
            }
            switch op {
            case "<": return lt
            case "<=": return !gt
            case ">": return gt
            default: return !lt
            }
        }
    }

    /// Python's `item in container`.
    func contains(_ container: JinjaValue, _ item: JinjaValue, line: Int) throws(JinjaError) -> Bool {
        switch container {
        case .undefined: return false
        case let .string(s):
            guard case let .string(sub) = item else {
                throw fail(line, "'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return sub.isEmpty || s.contains(sub)
        case let .list(a), let .tuple(a): return a.contains { $0.equals(item) }
        case let .dict(d):
            guard case let .string(k) = item else { return false }
            return d[k] != nil
        case let .namespace(n):
            guard case let .string(k) = item else { return false }
            return n.values[k] != nil
        default: throw fail(line, "argument of type '\(container.typeName)' is not iterable")
        }
    }
}
