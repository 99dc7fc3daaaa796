/// Parses template tokens into statements and expressions, following jinja2's grammar and operator
/// precedence (`or` < `and` < `not` < comparisons < `+ -` < `~` < `* / // %` < `**` < unary minus <
/// filters and tests < attribute, subscript and call).
struct JinjaParser {
    let origin: String
    private let tokens: [JinjaToken]
    private var i = 0

    init(tokens: [JinjaToken], origin: String) {
        self.tokens = tokens
        self.origin = origin
    }

    /// The whole template.
    mutating func parseTemplate() throws(JinjaError) -> [Statement] {
        let (body, end) = try parseStatements(until: [])
        if let end { throw fail("unexpected {% \(end) %}", line: current.line) }
        return body
    }

    // MARK: tokens

    private var current: JinjaToken { tokens[i] }
    private var line: Int { tokens[i].line }

    private func fail(_ message: String, line: Int? = nil) -> JinjaError {
        JinjaError(.syntax, origin: origin, line: line ?? self.line, message)
    }

    private func unsupported(_ construct: String, line: Int? = nil) -> JinjaError {
        JinjaError(.unsupported, origin: origin, line: line ?? self.line, construct)
    }

    private func isOp(_ op: String) -> Bool { current.kind == .op(op) }
    private func isName(_ name: String) -> Bool { current.kind == .name(name) }

    private mutating func skipOp(_ op: String) -> Bool {
        if isOp(op) { i += 1; return true }
        return false
    }

    private mutating func skipName(_ name: String) -> Bool {
        if isName(name) { i += 1; return true }
        return false
    }

    private mutating func expectOp(_ op: String) throws(JinjaError) {
        guard skipOp(op) else { throw fail("expected '\(op)', found \(describe(current))") }
    }

    private mutating func expectName() throws(JinjaError) -> String {
        guard case let .name(n) = current.kind else { throw fail("expected a name, found \(describe(current))") }
        i += 1
        return n
    }

    private mutating func expectBlockEnd() throws(JinjaError) {
        guard current.kind == .blockEnd else { throw fail("expected the end of the tag (%}), found \(describe(current))") }
        i += 1
    }

    private func describe(_ t: JinjaToken) -> String {
        switch t.kind {
        case .text: return "text"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "'}}'"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "'%}'"
        case let .name(n): return "'\(n)'"
        case let .string(s): return "string '\(s.prefix(20))'"
        case let .integer(n): return "\(n)"
        case let .float(d): return "\(d)"
        case let .op(o): return "'\(o)'"
        case .end: return "the end of the template"
        }
    }

    // MARK: statements

    /// Statements until a block tag whose name is in `ends` (returned, with its `{%` and name consumed).
    private mutating func parseStatements(until ends: Set<String>) throws(JinjaError) -> ([Statement], String?) {
        var body: [Statement] = []
        while true {
            let t = current
            switch t.kind {
            case let .text(s):
                body.append(Statement(kind: .text(s), line: t.line))
                i += 1
            case .variableBegin:
                i += 1
                let e = try parseTuple()
                guard current.kind == .variableEnd else { throw fail("expected '}}', found \(describe(current))") }
                i += 1
                body.append(Statement(kind: .output(e), line: t.line))
            case .blockBegin:
                i += 1
                guard case let .name(tag) = current.kind else { throw fail("expected a tag name after '{%', found \(describe(current))") }
                if ends.contains(tag) {
                    i += 1
                    return (body, tag)
                }
                body.append(try parseTag(tag, line: current.line))
            case .end:
                if !ends.isEmpty { throw fail("the template ends before {% \(ends.sorted().joined(separator: " / ")) %}") }
                return (body, nil)
            default:
                throw fail("unexpected \(describe(t))")
            }
        }
    }

    private mutating func parseTag(_ tag: String, line: Int) throws(JinjaError) -> Statement {
        i += 1
        switch tag {
        case "if": return try parseIf(line: line)
        case "for": return try parseFor(line: line)
        case "set": return try parseSet(line: line)
        case "macro": return try parseMacro(line: line)
        case "break", "continue":
            try expectBlockEnd()
            return Statement(kind: tag == "break" ? .breakLoop : .continueLoop, line: line)
        case "generation":
            try expectBlockEnd()
            let (body, _) = try parseStatements(until: ["endgeneration"])
            try expectBlockEnd()
            return Statement(kind: .generation(body), line: line)
        case "filter":
            let name = try expectName()
            let args = isOp("(") ? try parseCallArguments() : Arguments()
            try expectBlockEnd()
            let (body, _) = try parseStatements(until: ["endfilter"])
            try expectBlockEnd()
            return Statement(kind: .filterBlock(name: name, args, body: body), line: line)
        case "endif", "endfor", "endmacro", "endset", "else", "elif", "endgeneration", "endfilter", "endraw":
            throw fail("unexpected {% \(tag) %} with no open block for it", line: line)
        default:
            throw unsupported("the tag {% \(tag) %}", line: line)
        }
    }

    private mutating func parseIf(line: Int) throws(JinjaError) -> Statement {
        var branches: [(Expression, [Statement])] = []
        var condition = try parseTuple()
        while true {
            try expectBlockEnd()
            let (body, end) = try parseStatements(until: ["elif", "else", "endif"])
            branches.append((condition, body))
            switch end {
            case "elif":
                condition = try parseTuple()
            case "else":
                try expectBlockEnd()
                let (otherwise, _) = try parseStatements(until: ["endif"])
                try expectBlockEnd()
                return Statement(kind: .conditional(branches: branches, otherwise: otherwise), line: line)
            default:
                try expectBlockEnd()
                return Statement(kind: .conditional(branches: branches, otherwise: []), line: line)
            }
        }
    }

    private mutating func parseFor(line: Int) throws(JinjaError) -> Statement {
        var targets = [try expectName()]
        while skipOp(",") { targets.append(try expectName()) }
        guard skipName("in") else { throw fail("expected 'in' in {% for %}") }
        let iterable = try parseTuple(withConditional: false)
        var filter: Expression?
        if skipName("if") { filter = try parseExpression() }
        if isName("recursive") { throw unsupported("{% for … recursive %}") }
        try expectBlockEnd()
        let (body, end) = try parseStatements(until: ["endfor", "else"])
        var otherwise: [Statement] = []
        if end == "else" {
            try expectBlockEnd()
            (otherwise, _) = try parseStatements(until: ["endfor"])
        }
        try expectBlockEnd()
        return Statement(kind: .loop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise), line: line)
    }

    private mutating func parseSet(line: Int) throws(JinjaError) -> Statement {
        let first = try expectName()
        if skipOp(".") {
            let attribute = try expectName()
            try expectOp("=")
            let value = try parseTuple()
            try expectBlockEnd()
            return Statement(kind: .assignAttribute(object: first, attribute: attribute, value: value), line: line)
        }
        var targets = [first]
        while skipOp(",") { targets.append(try expectName()) }
        if skipOp("=") {
            let value = try parseTuple()
            try expectBlockEnd()
            return Statement(kind: .assign(targets: targets, value: value), line: line)
        }
        guard targets.count == 1 else { throw fail("expected '=' in {% set %}") }
        if isOp("|") { throw unsupported("a filter on {% set %} blocks") }
        try expectBlockEnd()
        let (body, _) = try parseStatements(until: ["endset"])
        try expectBlockEnd()
        return Statement(kind: .capture(name: first, body: body), line: line)
    }

    private mutating func parseMacro(line: Int) throws(JinjaError) -> Statement {
        let name = try expectName()
        try expectOp("(")
        var parameters: [(name: String, defaultValue: Expression?)] = []
        while !isOp(")") {
            if !parameters.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            let p = try expectName()
            parameters.append((p, skipOp("=") ? try parseExpression() : nil))
        }
        try expectOp(")")
        try expectBlockEnd()
        let (body, _) = try parseStatements(until: ["endmacro"])
        if case .name = current.kind { i += 1 }  // {% endmacro name %}
        try expectBlockEnd()
        return Statement(kind: .macro(name: name, parameters: parameters, body: body), line: line)
    }

    // MARK: expressions

    /// An expression, or a tuple of them without parentheses (`a, b`).
    private mutating func parseTuple(withConditional: Bool = true) throws(JinjaError) -> Expression {
        let line = self.line
        let first = withConditional ? try parseExpression() : try parseOr()
        guard isOp(",") else { return first }
        var items = [first]
        while skipOp(",") {
            if current.kind == .blockEnd || current.kind == .variableEnd || isOp(")") { break }
            items.append(withConditional ? try parseExpression() : try parseOr())
        }
        return Expression(kind: .tuple(items), line: line)
    }

    mutating func parseExpression() throws(JinjaError) -> Expression {
        let line = self.line
        let value = try parseOr()
        guard skipName("if") else { return value }
        let condition = try parseOr()
        let otherwise = skipName("else") ? try parseExpression() : nil
        return Expression(kind: .conditional(condition: condition, then: value, otherwise: otherwise), line: line)
    }

    private mutating func parseOr() throws(JinjaError) -> Expression {
        var left = try parseAnd()
        while isName("or") {
            let line = self.line
            i += 1
            left = Expression(kind: .or(left, try parseAnd()), line: line)
        }
        return left
    }

    private mutating func parseAnd() throws(JinjaError) -> Expression {
        var left = try parseNot()
        while isName("and") {
            let line = self.line
            i += 1
            left = Expression(kind: .and(left, try parseNot()), line: line)
        }
        return left
    }

    private mutating func parseNot() throws(JinjaError) -> Expression {
        if isName("not") {
            let line = self.line
            i += 1
            return Expression(kind: .not(try parseNot()), line: line)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws(JinjaError) -> Expression {
        let line = self.line
        let left = try parseMath1()
        var chain: [(String, Expression)] = []
        while true {
            if case let .op(o) = current.kind, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
                i += 1
                chain.append((o, try parseMath1()))
            } else if skipName("in") {
                chain.append(("in", try parseMath1()))
            } else if isName("not"), i + 1 < tokens.count, tokens[i + 1].kind == .name("in") {
                i += 2
                chain.append(("not in", try parseMath1()))
            } else {
                break
            }
        }
        return chain.isEmpty ? left : Expression(kind: .compare(left, chain), line: line)
    }

    private mutating func parseBinary(_ ops: [String], next: (inout JinjaParser) throws(JinjaError) -> Expression) throws(JinjaError) -> Expression {
        var left = try next(&self)
        while case let .op(o) = current.kind, ops.contains(o) {
            let line = self.line
            i += 1
            left = Expression(kind: .binary(o, left, try next(&self)), line: line)
        }
        return left
    }

    private mutating func parseMath1() throws(JinjaError) -> Expression {
        try parseBinary(["+", "-"]) { (p) throws(JinjaError) in try p.parseConcat() }
    }

    private mutating func parseConcat() throws(JinjaError) -> Expression {
        try parseBinary(["~"]) { (p) throws(JinjaError) in try p.parseMath2() }
    }

    private mutating func parseMath2() throws(JinjaError) -> Expression {
        try parseBinary(["*", "/", "//", "%"]) { (p) throws(JinjaError) in try p.parsePow() }
    }

    private mutating func parsePow() throws(JinjaError) -> Expression {
        try parseBinary(["**"]) { (p) throws(JinjaError) in try p.parseUnary() }
    }

    private mutating func parseUnary(withFilter: Bool = true) throws(JinjaError) -> Expression {
        let line = self.line
        var node: Expression
        if skipOp("-") {
            node = Expression(kind: .negate(try parseUnary(withFilter: false)), line: line)
        } else if skipOp("+") {
            node = Expression(kind: .plus(try parseUnary(withFilter: false)), line: line)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpression(node) }
        return node
    }

    private mutating func parsePrimary() throws(JinjaError) -> Expression {
        let t = current
        let line = t.line
        switch t.kind {
        case let .name(n):
            i += 1
            switch n {
            case "true", "True": return Expression(kind: .literal(.bool(true)), line: line)
            case "false", "False": return Expression(kind: .literal(.bool(false)), line: line)
            case "none", "None": return Expression(kind: .literal(.none), line: line)
            default: return Expression(kind: .name(n), line: line)
            }
        case var .string(s):
            i += 1
            while case let .string(more) = current.kind { s += more; i += 1 }  // adjacent literals join
            return Expression(kind: .literal(.string(s)), line: line)
        case let .integer(n):
            i += 1
            return Expression(kind: .literal(.int(n)), line: line)
        case let .float(d):
            i += 1
            return Expression(kind: .literal(.double(d)), line: line)
        case .op("("):
            i += 1
            if skipOp(")") { return Expression(kind: .tuple([]), line: line) }
            let e = try parseTuple()
            try expectOp(")")
            return e
        case .op("["):
            i += 1
            var items: [Expression] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return Expression(kind: .list(items), line: line)
        case .op("{"):
            i += 1
            var items: [(Expression, Expression)] = []
            while !isOp("}") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                items.append((key, try parseExpression()))
            }
            try expectOp("}")
            return Expression(kind: .dict(items), line: line)
        default:
            throw fail("unexpected \(describe(t)) in an expression")
        }
    }

    private mutating func parsePostfix(_ start: Expression) throws(JinjaError) -> Expression {
        var node = start
        while true {
            let line = self.line
            if skipOp(".") {
                switch current.kind {
                case let .name(n):
                    i += 1
                    node = Expression(kind: .attribute(node, n), line: line)
                case let .integer(n):
                    i += 1
                    node = Expression(kind: .index(node, Expression(kind: .literal(.int(n)), line: line)), line: line)
                default:
                    throw fail("expected an attribute name after '.', found \(describe(current))")
                }
            } else if skipOp("[") {
                node = try parseSubscript(node, line: line)
            } else if isOp("(") {
                node = Expression(kind: .call(node, try parseCallArguments()), line: line)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ node: Expression, line: Int) throws(JinjaError) -> Expression {
        var parts: [Expression?] = []
        var isSlice = false
        var currentPart: Expression?
        while !isOp("]") {
            if skipOp(":") {
                isSlice = true
                parts.append(currentPart)
                currentPart = nil
            } else {
                guard currentPart == nil else { throw fail("expected ':' or ']' in a subscript") }
                currentPart = try parseExpression()
            }
        }
        try expectOp("]")
        parts.append(currentPart)
        if !isSlice {
            guard let index = parts[0] else { throw fail("empty subscript []") }
            return Expression(kind: .index(node, index), line: line)
        }
        guard parts.count <= 3 else { throw fail("a slice has at most three parts") }
        return Expression(kind: .slice(node, start: parts[0], stop: parts.count > 1 ? parts[1] : nil,
                                       step: parts.count > 2 ? parts[2] : nil), line: line)
    }

    private mutating func parseCallArguments() throws(JinjaError) -> Arguments {
        try expectOp("(")
        var args = Arguments()
        var first = true
        while !isOp(")") {
            if !first { try expectOp(",") }
            first = false
            if isOp(")") { break }
            if isOp("*") || isOp("**") { throw unsupported("*args / **kwargs in a call") }
            if case let .name(n) = current.kind, i + 1 < tokens.count, tokens[i + 1].kind == .op("=") {
                i += 2
                args.keyword.append((n, try parseExpression()))
            } else {
                guard args.keyword.isEmpty else { throw fail("a positional argument after a keyword argument") }
                args.positional.append(try parseExpression())
            }
        }
        try expectOp(")")
        return args
    }

    private mutating func parseFilterExpression(_ start: Expression) throws(JinjaError) -> Expression {
        var node = start
        while true {
            let line = self.line
            if skipOp("|") {
                var name = try expectName()
                while skipOp(".") { name += "." + (try expectName()) }
                let args = isOp("(") ? try parseCallArguments() : Arguments()
                node = Expression(kind: .filter(node, name: name, args), line: line)
            } else if skipName("is") {
                let negated = skipName("not")
                var name = try expectName()
                while skipOp(".") { name += "." + (try expectName()) }
                var args = Arguments()
                if isOp("(") {
                    args = try parseCallArguments()
                } else if startsTestArgument {
                    if isName("is") { throw fail("tests cannot be chained with 'is'") }
                    args.positional = [try parsePostfix(try parsePrimary())]
                }
                node = Expression(kind: .test(node, name: name, args, negated: negated), line: line)
            } else if isOp("(") {
                node = Expression(kind: .call(node, try parseCallArguments()), line: line)
            } else {
                return node
            }
        }
    }

    /// Whether the token after a test name is its single argument (`x is equalto 3`, `x is sameas none`).
    private var startsTestArgument: Bool {
        switch current.kind {
        case .name("else"), .name("or"), .name("and"): return false
        case .name, .string, .integer, .float, .op("["), .op("{"): return true
        default: return false
        }
    }
}
