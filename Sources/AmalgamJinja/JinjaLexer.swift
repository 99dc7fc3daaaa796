/// One token of a template: text between tags, tag delimiters, and the tokens of the expressions inside.
struct JinjaToken {
    enum Kind: Equatable {
        case text(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        case op(String)
        case end
    }

    let kind: Kind
    let line: Int
}

/// Splits a template into tokens as jinja2's lexer does with `trim_blocks=True, lstrip_blocks=True` (the
/// way transformers compiles chat templates): `-` strips whitespace next to a tag, `+` keeps it, a block
/// tag swallows the newline after it and the spaces before it on its own line, newlines are normalised
/// to `\n`, and one trailing newline of the source is dropped.
struct JinjaLexer {
    let origin: String
    private var bytes: [UInt8] = []
    private var pos = 0
    private var line = 1
    private(set) var tokens: [JinjaToken] = []

    init(source: String, origin: String) throws(JinjaError) {
        self.origin = origin
        // newline normalisation and keep_trailing_newline=False
        var text = source.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        if text.hasSuffix("\n") { text.removeLast() }
        bytes = Array(text.utf8)
        try tokenize()
    }

    private static let openers: [UInt8] = Array("{%#".utf8)

    private func at(_ i: Int) -> UInt8? { i < bytes.count ? bytes[i] : nil }
    private func startsWith(_ s: String, at i: Int) -> Bool {
        let u = Array(s.utf8)
        return i + u.count <= bytes.count && bytes[i..<(i + u.count)].elementsEqual(u)
    }

    private func fail(_ message: String) -> JinjaError { JinjaError(.syntax, origin: origin, line: line, message) }

    private mutating func emit(_ kind: JinjaToken.Kind) { tokens.append(JinjaToken(kind: kind, line: line)) }

    /// Advances over bytes, counting lines.
    private mutating func advance(to end: Int) {
        while pos < end { if bytes[pos] == 0x0A { line += 1 }; pos += 1 }
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) || (b >= 0x1C && b <= 0x1F) }

    private mutating func tokenize() throws(JinjaError) {
        var lineStarting = true
        while pos < bytes.count {
            // the next tag opener
            var tagStart = pos
            var kind: UInt8 = 0
            while tagStart + 1 < bytes.count {
                if bytes[tagStart] == UInt8(ascii: "{"), JinjaLexer.openers.contains(bytes[tagStart + 1]) || bytes[tagStart + 1] == UInt8(ascii: "{") {
                    kind = bytes[tagStart + 1]
                    break
                }
                tagStart += 1
            }
            if kind == 0 { tagStart = bytes.count }
            var text = Array(bytes[pos..<tagStart])
            var sign: UInt8 = 0
            if kind != 0, let s = at(tagStart + 2), s == UInt8(ascii: "-") || s == UInt8(ascii: "+") { sign = s }
            if kind != 0 {
                if sign == UInt8(ascii: "-") {
                    while let last = text.last, JinjaLexer.isSpace(last) { text.removeLast() }
                } else if sign != UInt8(ascii: "+") && kind != UInt8(ascii: "{") {
                    // lstrip_blocks: spaces and tabs from the start of the line to a block or comment tag
                    let lineStart = (text.lastIndex(of: 0x0A).map { $0 + 1 }) ?? 0
                    if (lineStart > 0 || lineStarting) && text[lineStart...].allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                        text.removeSubrange(lineStart...)
                    }
                }
            }
            if !text.isEmpty { emit(.text(String(decoding: text, as: UTF8.self))) }
            advance(to: tagStart)
            guard kind != 0 else { break }
            advance(to: tagStart + 2 + (sign != 0 ? 1 : 0))
            switch kind {
            case UInt8(ascii: "#"): try comment()
            case UInt8(ascii: "{"):
                emit(.variableBegin)
                try expressionTokens(closer: "}}")
                emit(.variableEnd)
            default:
                emit(.blockBegin)
                let first = tokens.count
                try expressionTokens(closer: "%}")
                if tokens.count == first + 1, case .name("raw") = tokens[first].kind {
                    tokens.removeLast(2)
                    try raw()
                } else {
                    emit(.blockEnd)
                }
            }
            lineStarting = pos > 0 && bytes[pos - 1] == 0x0A
        }
        emit(.end)
    }

    /// After a closing `}}`, `%}` or `#}` (already consumed): `-` strips the whitespace that follows;
    /// without `+`, a block or comment tag swallows one newline (trim_blocks).
    private mutating func closeTag(sign: UInt8, trims: Bool) {
        if sign == UInt8(ascii: "-") {
            var end = pos
            while end < bytes.count, JinjaLexer.isSpace(bytes[end]) { end += 1 }
            advance(to: end)
        } else if sign != UInt8(ascii: "+"), trims, at(pos) == 0x0A {
            advance(to: pos + 1)
        }
    }

    private mutating func comment() throws(JinjaError) {
        let startLine = line
        var i = pos
        while i + 1 < bytes.count, !(bytes[i] == UInt8(ascii: "#") && bytes[i + 1] == UInt8(ascii: "}")) { i += 1 }
        guard i + 1 < bytes.count else { throw JinjaError(.syntax, origin: origin, line: startLine, "a comment {# is never closed with #}") }
        let sign: UInt8 = i > pos && (bytes[i - 1] == UInt8(ascii: "-") || bytes[i - 1] == UInt8(ascii: "+")) ? bytes[i - 1] : 0
        advance(to: i + 2)
        closeTag(sign: sign, trims: true)
    }

    /// `{% raw %}…{% endraw %}`: the text in between, verbatim.
    private mutating func raw() throws(JinjaError) {
        let startLine = line
        // the raw tag's own end was consumed by expressionTokens; find {%[-+]? endraw [-+]?%}
        var i = pos
        while i + 1 < bytes.count {
            if bytes[i] == UInt8(ascii: "{") && bytes[i + 1] == UInt8(ascii: "%") {
                var j = i + 2
                let innerSign = at(j) == UInt8(ascii: "-") ? UInt8(ascii: "-") : 0
                if at(j) == UInt8(ascii: "-") || at(j) == UInt8(ascii: "+") { j += 1 }
                while let b = at(j), JinjaLexer.isSpace(b) { j += 1 }
                if startsWith("endraw", at: j) {
                    j += 6
                    while let b = at(j), JinjaLexer.isSpace(b) { j += 1 }
                    var endSign: UInt8 = 0
                    if let b = at(j), b == UInt8(ascii: "-") || b == UInt8(ascii: "+") { endSign = b; j += 1 }
                    if startsWith("%}", at: j) {
                        var text = Array(bytes[pos..<i])
                        if innerSign != 0 { while let last = text.last, JinjaLexer.isSpace(last) { text.removeLast() } }
                        if !text.isEmpty { emit(.text(String(decoding: text, as: UTF8.self))) }
                        advance(to: j + 2)
                        closeTag(sign: endSign, trims: true)
                        return
                    }
                }
            }
            i += 1
        }
        throw JinjaError(.syntax, origin: origin, line: startLine, "{% raw %} is never closed with {% endraw %}")
    }

    private static let operators: [String] = [
        "//", "**", "==", "!=", "<=", ">=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}",
        "<", ">", "=", ".", ":", "|", ",", ";",
    ]

    /// The tokens of an expression or statement up to its closer (`}}` or `%}`, with an optional `-`/`+`
    /// before it), skipping closers inside brackets as jinja2 does.
    private mutating func expressionTokens(closer: String) throws(JinjaError) {
        let startLine = line
        var depth = 0
        while true {
            while let b = at(pos), JinjaLexer.isSpace(b) { advance(to: pos + 1) }
            guard let b = at(pos) else {
                throw JinjaError(.syntax, origin: origin, line: startLine, "a tag is never closed with \(closer)")
            }
            if depth == 0 {
                if startsWith(closer, at: pos) {
                    advance(to: pos + 2)
                    closeTag(sign: 0, trims: closer == "%}")
                    return
                }
                if (b == UInt8(ascii: "-") || (b == UInt8(ascii: "+") && closer == "%}")) && startsWith(closer, at: pos + 1) {
                    advance(to: pos + 3)
                    closeTag(sign: b, trims: closer == "%}")
                    return
                }
            }
            if b == UInt8(ascii: "'") || b == UInt8(ascii: "\"") {
                emit(.string(try stringLiteral(quote: b)))
            } else if (b >= 0x30 && b <= 0x39) {
                try number()
            } else if b == UInt8(ascii: "_") || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) || b >= 0x80 {
                var end = pos
                while let c = at(end), c == UInt8(ascii: "_") || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) || (c >= 0x30 && c <= 0x39) || c >= 0x80 { end += 1 }
                emit(.name(String(decoding: bytes[pos..<end], as: UTF8.self)))
                advance(to: end)
            } else if let op = JinjaLexer.operators.first(where: { startsWith($0, at: pos) }) {
                if op == "(" || op == "[" || op == "{" { depth += 1 }
                if op == ")" || op == "]" || op == "}" { depth = max(0, depth - 1) }
                emit(.op(op))
                advance(to: pos + op.utf8.count)
            } else {
                throw fail("unexpected character '\(String(decoding: [b], as: UTF8.self))'")
            }
        }
    }

    private mutating func number() throws(JinjaError) {
        var end = pos
        func digits() { while let c = at(end), (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "_") { end += 1 } }
        digits()
        var isFloat = false
        if at(end) == UInt8(ascii: "."), let c = at(end + 1), c >= 0x30 && c <= 0x39 {
            isFloat = true
            end += 1
            digits()
        }
        if let e = at(end), e | 0x20 == UInt8(ascii: "e") {
            var k = end + 1
            if let s = at(k), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { k += 1 }
            if let c = at(k), c >= 0x30 && c <= 0x39 {
                isFloat = true
                end = k
                digits()
            }
        }
        let text = String(decoding: bytes[pos..<end], as: UTF8.self).replacingOccurrences(of: "_", with: "")
        if isFloat {
            guard let d = Double(text) else { throw fail("bad number \(text)") }
            emit(.float(d))
        } else {
            guard let i = Int(text) else { throw fail("integer \(text) is too large") }
            emit(.integer(i))
        }
        advance(to: end)
    }

    /// A quoted string with Python's backslash escapes.
    private mutating func stringLiteral(quote: UInt8) throws(JinjaError) -> String {
        let startLine = line
        var i = pos + 1
        var out: [UInt8] = []
        while true {
            guard let c = at(i) else { throw JinjaError(.syntax, origin: origin, line: startLine, "a string is never closed") }
            if c == quote { break }
            if c == UInt8(ascii: "\\"), let e = at(i + 1) {
                i += 2
                func hexScalar(_ n: Int) -> Bool {
                    guard i + n <= bytes.count, let v = UInt32(String(decoding: bytes[i..<(i + n)], as: UTF8.self), radix: 16),
                          let s = Unicode.Scalar(v) else { return false }
                    out += Array(String(Character(s)).utf8)
                    i += n
                    return true
                }
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): out.append(e)
                case UInt8(ascii: "a"): out.append(0x07)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "v"): out.append(0x0B)
                case UInt8(ascii: "0"): out.append(0)
                case 0x0A: break
                case UInt8(ascii: "x"): if !hexScalar(2) { out += [0x5C, e] }
                case UInt8(ascii: "u"): if !hexScalar(4) { out += [0x5C, e] }
                case UInt8(ascii: "U"): if !hexScalar(8) { out += [0x5C, e] }
                default: out += [0x5C, e]
                }
                continue
            }
            out.append(c)
            i += 1
        }
        advance(to: i + 1)
        return String(decoding: out, as: UTF8.self)
    }
}
