import Foundation

/// Calls: macros, the globals transformers gives templates (`range`, `namespace`, `dict`,
/// `raise_exception`, `strftime_now`), and the Python methods of strings, dicts and lists that chat
/// templates use.
extension JinjaInterpreter {
    func call(_ callee: Expression, _ args: Arguments, scope: Scope, line: Int) throws(JinjaError) -> JinjaValue {
        if case let .attribute(objectExpression, name) = callee.kind {
            let object = try evaluate(objectExpression, scope)
            switch object {
            case .string, .dict, .list, .tuple:
                if case let .dict(d) = object, d[name] != nil, !JinjaInterpreter.dictMethods.contains(name) { break }
                return try method(name, of: object, try bind(args, scope), line: line)
            case let .loop(state) where name == "cycle":
                let values = try bind(args, scope).positional
                guard !values.isEmpty else { throw fail(line, "loop.cycle needs at least one value") }
                return values[state.index0 % values.count]
            default: break
            }
        }
        let function = try evaluate(callee, scope)
        switch function {
        case let .macro(m): return try callMacro(m, args, scope: scope, line: line)
        case let .builtin(name): return try builtin(name, try bind(args, scope), line: line)
        case let .undefined(why): throw fail(line, why)
        default: throw fail(line, "'\(function.typeName)' object is not callable")
        }
    }

    static let dictMethods: Set<String> = ["get", "items", "keys", "values"]

    private func callMacro(_ m: JinjaMacro, _ args: Arguments, scope: Scope, line: Int) throws(JinjaError) -> JinjaValue {
        let a = try bind(args, scope)
        guard a.positional.count <= m.parameters.count else {
            throw fail(line, "macro '\(m.name)' takes \(m.parameters.count) arguments, \(a.positional.count) given")
        }
        let frame = Scope(parent: m.scope)
        for (k, p) in m.parameters.enumerated() {
            if k < a.positional.count {
                frame.variables[p.name] = a.positional[k]
            } else if let v = a.keyword[p.name] {
                frame.variables[p.name] = v
            } else if let d = p.defaultValue {
                frame.variables[p.name] = try evaluate(d, frame)
            } else {
                frame.variables[p.name] = .undefined("parameter '\(p.name)' of macro '\(m.name)' was not provided")
            }
        }
        for k in a.keyword.keys where !m.parameters.contains(where: { $0.name == k }) {
            throw fail(line, "macro '\(m.name)' takes no keyword argument '\(k)'")
        }
        var out = ""
        _ = try render(m.body, scope: frame, into: &out)
        return .string(out)
    }

    private func builtin(_ name: String, _ a: Bound, line: Int) throws(JinjaError) -> JinjaValue {
        switch name {
        case "range":
            let ints = a.positional.compactMap(\.integer)
            guard ints.count == a.positional.count, (1...3).contains(ints.count) else { throw fail(line, "range() takes 1 to 3 integers") }
            let (start, stop, step) = ints.count == 1 ? (0, ints[0], 1) : (ints[0], ints[1], ints.count == 3 ? ints[2] : 1)
            guard step != 0 else { throw fail(line, "range() arg 3 must not be zero") }
            let values = Array(stride(from: start, to: stop, by: step))
            guard values.count <= 100_000 else { throw fail(line, "range() is too large (at most 100000 items in the sandbox)") }
            return .list(values.map { .int($0) })
        case "namespace", "dict":
            var d = JinjaDict()
            for p in a.positional {
                guard case let .dict(initial) = p else { throw fail(line, "\(name)() takes a dict or keyword arguments") }
                for (k, v) in initial.items { d[k] = v }
            }
            for (k, v) in a.keyword.sorted(by: { $0.key < $1.key }) { d[k] = v }
            if name == "dict" { return .dict(d) }
            if let bad = d.keys.first(where: { $0.hasPrefix("_") }) {
                throw fail(line, "chat templates cannot store underscore-prefixed attributes on a namespace ('\(bad)')")
            }
            let ns = JinjaNamespace()
            ns.values = d
            return .namespace(ns)
        case "raise_exception":
            throw JinjaError(.raised, origin: origin, line: line, a.positional.first?.text ?? "")
        case "strftime_now":
            guard case let .string(format)? = a.positional.first else { throw fail(line, "strftime_now() takes a format string") }
            var now = time(nil)
            var parts = tm()
            localtime_r(&now, &parts)
            var buffer = [Int8](repeating: 0, count: 256)
            let n = strftime(&buffer, buffer.count, format, &parts)
            return .string(String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        default:
            throw unsupported(line, "the function '\(name)'")
        }
    }

    /// Python methods of strings, dicts and lists (the read-only ones: the sandbox forbids mutation).
    func method(_ name: String, of object: JinjaValue, _ a: Bound, line: Int) throws(JinjaError) -> JinjaValue {
        func str(_ index: Int, _ what: String) throws(JinjaError) -> String? {
            guard let v = a.get(index, what) else { return nil }
            if case .none = v { return nil }
            guard case let .string(s) = v else { throw fail(line, "\(name)(): \(what) must be a string, not \(v.typeName)") }
            return s
        }
        switch object {
        case let .string(s):
            switch name {
            case "strip": return .string(PythonString.strip(s, try str(0, "chars"), leading: true, trailing: true))
            case "lstrip": return .string(PythonString.strip(s, try str(0, "chars"), leading: true, trailing: false))
            case "rstrip": return .string(PythonString.strip(s, try str(0, "chars"), leading: false, trailing: true))
            case "upper": return .string(s.uppercased())
            case "lower": return .string(s.lowercased())
            case "title": return .string(PythonString.title(s))
            case "capitalize": return .string(PythonString.capitalize(s))
            case "startswith", "endswith":
                let candidates: [JinjaValue] = a.positional.first?.elements ?? [a.positional.first ?? .none]
                for c in candidates {
                    guard case let .string(p) = c else { throw fail(line, "\(name)() takes a string or a tuple of strings") }
                    if name == "startswith" ? PythonString.hasPrefix(s, p) : PythonString.hasSuffix(s, p) { return .bool(true) }
                }
                return .bool(false)
            case "split":
                let parts = PythonString.split(s, try str(0, "sep"), maxSplit: a.get(1, "maxsplit")?.integer ?? -1)
                return .list(parts.map { .string($0) })
            case "replace":
                guard let old = try str(0, "old"), let new = try str(1, "new") else { throw fail(line, "replace() takes two strings") }
                return .string(PythonString.replace(s, old, new, count: a.get(2, "count")?.integer ?? -1))
            case "find":
                guard let sub = try str(0, "sub") else { throw fail(line, "find() takes a string") }
                guard let byte = PythonString.find(Array(s.utf8), Array(sub.utf8)) else { return .int(-1) }
                return .int(String(decoding: Array(s.utf8)[..<byte], as: UTF8.self).unicodeScalars.count)
            case "count":
                guard let sub = try str(0, "sub") else { throw fail(line, "count() takes a string") }
                return .int(sub.isEmpty ? s.unicodeScalars.count + 1 : PythonString.split(s, sub).count - 1)
            case "join":
                let items = try iterate(a.positional.first ?? .list([]), line: line)
                var texts: [String] = []
                for item in items {
                    guard case let .string(t) = item else { throw fail(line, "join(): sequence item: expected str instance, \(item.typeName) found") }
                    texts.append(t)
                }
                return .string(texts.joined(separator: s))
            case "isdigit": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType == .decimal || $0.properties.numericType == .digit })
            case "isspace": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(PythonString.isSpace))
            default: break
            }
        case let .dict(d):
            switch name {
            case "get":
                guard case let .string(k)? = a.positional.first else { return a.get(1, "default") ?? .none }
                return d[k] ?? a.get(1, "default") ?? .none
            case "items": return .list(d.items.map { .tuple([.string($0.0), $0.1]) })
            case "keys": return .list(d.keys.map { .string($0) })
            case "values": return .list(d.items.map(\.1))
            default: break
            }
        case let .list(l), let .tuple(l):
            switch name {
            case "index":
                guard let x = a.positional.first, let k = l.firstIndex(where: { $0.equals(x) }) else { throw fail(line, "index(): value is not in the list") }
                return .int(k)
            case "count":
                guard let x = a.positional.first else { throw fail(line, "count() takes one argument") }
                return .int(l.filter { $0.equals(x) }.count)
            case "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse":
                throw fail(line, "access to attribute '\(name)' of 'list' object is unsafe: templates cannot change lists (use a namespace and +)")
            default: break
            }
        default: break
        }
        throw unsupported(line, "the method '\(object.typeName).\(name)()'")
    }
}
