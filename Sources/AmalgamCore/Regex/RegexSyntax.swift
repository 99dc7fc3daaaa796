/// A regex as a tree, parsed with Oniguruma's Ruby syntax (what `tokenizers` compiles Split and Replace
/// patterns with) or Python's `re` syntax (PEFT's rank patterns, lm-eval's answer patterns). Only what a
/// matcher over Unicode scalars can run in bounded time is accepted; backreferences, lookbehind, atomic
/// groups and possessive quantifiers are refused by name.
indirect enum RegexNode {
    case empty
    /// One scalar equal to this one (or, case-insensitively, with the same simple case fold).
    case scalar(UInt32, ignoreCase: Bool)
    /// One scalar in a set.
    case set(ScalarSet)
    /// `.`: any scalar but "\n" (any at all with the `m` flag, as in Ruby).
    case any(newline: Bool)
    case concat([RegexNode])
    /// Alternatives, the first that leads to a match preferred (leftmost-first, as Oniguruma).
    case alternation([RegexNode])
    /// `max` nil: unbounded; `greedy` false: lazy.
    case repeating(RegexNode, min: Int, max: Int?, greedy: Bool)
    case assertion(RegexAssertion)
    case lookahead(RegexNode, negated: Bool)
    /// A capturing group, numbered from 1 in the order of its `(`.
    case capture(RegexNode, index: Int)
}

/// Zero-width tests at a position.
enum RegexAssertion {
    /// `^` (start of a line), `$` (end of a line: before "\n" or at the end).
    case lineStart, lineEnd
    /// `\A`, `\z`, `\Z` (the end or before a final "\n").
    case textStart, textEnd, textEndBeforeNewline
    /// `\b`, `\B` with `\w` as Oniguruma defines it.
    case wordBoundary, notWordBoundary
}

/// Whose syntax a pattern is written in.
public enum RegexDialect: Sendable {
    /// Oniguruma's Ruby syntax, as `tokenizers` compiles it: `^` and `$` at every line, `(?m)` is dot-all.
    case oniguruma
    /// Python's `re`: `^` and `$` at the text's ends unless `(?m)`, `(?s)` is dot-all, `\Z` the very end,
    /// `(?P<name>…)` groups.
    case python
}

/// Why a pattern was not accepted, and where in it.
public struct RegexSyntaxError: Error, Equatable, CustomStringConvertible {
    /// The offset (in scalars) in the pattern where the problem was found.
    public let offset: Int
    public let reason: String
    public var description: String { "\(reason) (at scalar \(offset) of the pattern)" }
}

/// Recursive-descent parser over the pattern's scalars.
struct RegexParser {
    private let p: [UInt32]
    private let dialect: RegexDialect
    private var i = 0
    private var ignoreCase = false
    private var dotAll = false
    /// Python's `(?m)`: `^` and `$` at every line (Ruby's always are).
    private var multiline = false
    /// Capturing groups opened so far.
    private(set) var captureCount = 0
    /// The number of nested groups, bounded so a hostile pattern cannot exhaust the stack.
    private var depth = 0

    init(_ pattern: String, dialect: RegexDialect) {
        p = pattern.unicodeScalars.map(\.value)
        self.dialect = dialect
        multiline = dialect == .oniguruma
    }

    /// The tree of `pattern` and its number of capturing groups.
    static func parse(_ pattern: String, dialect: RegexDialect = .oniguruma) throws(RegexSyntaxError) -> (node: RegexNode, captures: Int) {
        var parser = RegexParser(pattern, dialect: dialect)
        let node = try parser.alternation()
        if parser.i < parser.p.count { throw parser.error("unbalanced `)`") }
        return (node, parser.captureCount)
    }

    private func error(_ reason: String) -> RegexSyntaxError { RegexSyntaxError(offset: i, reason: reason) }
    private var atEnd: Bool { i >= p.count }
    private func peek(_ k: Int = 0) -> UInt32? { i + k < p.count ? p[i + k] : nil }
    private func `is`(_ c: Character, _ k: Int = 0) -> Bool { peek(k) == c.unicodeScalars.first!.value }

    private mutating func alternation() throws(RegexSyntaxError) -> RegexNode {
        var branches = [try concatenation()]
        while `is`("|") {
            i += 1
            branches.append(try concatenation())
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    private mutating func concatenation() throws(RegexSyntaxError) -> RegexNode {
        var items: [RegexNode] = []
        let savedFlags = (ignoreCase, dotAll, multiline)
        defer { (ignoreCase, dotAll, multiline) = savedFlags }
        while !atEnd, !`is`("|"), !`is`(")") {
            // `(?i)` alone applies to the rest of the enclosing group, later alternatives included, as a
            // group of its own: Oniguruma reads `ab(?i)c|d` as `ab(?i:c|d)`.
            if `is`("("), `is`("?", 1), let flags = try inlineFlags() {
                (ignoreCase, dotAll, multiline) = flags
                items.append(try alternation())
                break
            }
            var atom = try self.atom()
            atom = try quantified(atom)
            items.append(atom)
        }
        return items.count == 1 ? items[0] : items.isEmpty ? .empty : .concat(items)
    }

    /// `(?imx-imx)` with no colon: the new flags, consumed; nil (nothing consumed) for any other group.
    private mutating func inlineFlags() throws(RegexSyntaxError) -> (Bool, Bool, Bool)? {
        var k = 2
        while let c = peek(k), c != UInt32(UInt8(ascii: ")")), c != UInt32(UInt8(ascii: ":")) {
            guard "imsxau-".unicodeScalars.contains(where: { $0.value == c }) else { return nil }
            k += 1
        }
        guard `is`(")", k), k > 2 else { return nil }
        let flags = try parseFlags(from: i + 2, to: i + k)
        i += k + 1
        return flags
    }

    private func parseFlags(from start: Int, to end: Int) throws(RegexSyntaxError) -> (Bool, Bool, Bool) {
        var on = true, ic = ignoreCase, da = dotAll, ml = multiline
        for k in start..<end {
            switch (Unicode.Scalar(p[k]).map(Character.init), dialect) {
            case ("-", _): on = false
            case ("i", _): ic = on
            case ("m", .oniguruma): da = on  // Ruby's `m` is what other engines call dot-all
            case ("m", .python): ml = on
            case ("s", .python): da = on
            case ("u", .python): break  // str patterns are Unicode already
            case ("a", .python): throw RegexSyntaxError(offset: k, reason: "the ASCII-only flag (?a) is not supported")
            case ("x", _): throw RegexSyntaxError(offset: k, reason: "the extended-syntax flag (?x) is not supported")
            default: throw RegexSyntaxError(offset: k, reason: "unknown group flag")
            }
        }
        return (ic, da, ml)
    }

    private mutating func quantified(_ atom: RegexNode) throws(RegexSyntaxError) -> RegexNode {
        var node = atom
        while let c = peek() {
            var bounds: (Int, Int?)
            let start = i
            switch Unicode.Scalar(c).map(Character.init) {
            case "*": bounds = (0, nil); i += 1
            case "+": bounds = (1, nil); i += 1
            case "?": bounds = (0, 1); i += 1
            case "{":
                guard let interval = interval() else { return node }  // not an interval: `{` is a literal
                bounds = interval
            default: return node
            }
            if case .assertion = node { throw RegexSyntaxError(offset: start, reason: "a quantifier after an anchor") }
            if case .lookahead = node { throw RegexSyntaxError(offset: start, reason: "a quantifier after a lookahead") }
            var greedy = true
            // `{n}?` is `{n}` made optional in Ruby syntax (a lazy fixed count would mean nothing).
            let fixed = c == UInt32(UInt8(ascii: "{")) && bounds.1 == bounds.0
            if `is`("?"), !fixed { greedy = false; i += 1 } else if `is`("+"), c != UInt32(UInt8(ascii: "{")) {
                throw error("possessive quantifiers (`*+`, `++`, `?+`) are not supported: they need backtracking")
            }
            if let upper = bounds.1, upper < bounds.0 { throw RegexSyntaxError(offset: start, reason: "a repetition {m,n} with n < m") }
            if bounds.0 > 1000 || (bounds.1 ?? 0) > 1000 {
                throw RegexSyntaxError(offset: start, reason: "a repetition count above 1000")
            }
            node = .repeating(node, min: bounds.0, max: bounds.1, greedy: greedy)
        }
        return node
    }

    /// `{n}`, `{n,}`, `{n,m}`, `{,m}` at `i` (consumed), or nil when the brace is a literal.
    private mutating func interval() -> (Int, Int?)? {
        var k = i + 1
        func number() -> Int? {
            var value: Int?
            while k < p.count, p[k] >= 0x30, p[k] <= 0x39 {
                value = min((value ?? 0) * 10 + Int(p[k] - 0x30), 100_000)
                k += 1
            }
            return value
        }
        let low = number()
        var high: Int?
        var hasComma = false
        if k < p.count, p[k] == 0x2C { hasComma = true; k += 1; high = number() }
        guard k < p.count, p[k] == 0x7D, low != nil || high != nil else { return nil }
        i = k + 1
        if !hasComma { return (low!, low!) }
        return (low ?? 0, high)
    }

    private mutating func atom() throws(RegexSyntaxError) -> RegexNode {
        let c = p[i]
        switch Unicode.Scalar(c).map(Character.init) {
        case "(": return try group()
        case "[":
            i += 1
            return .set(try classBody())
        case ".": i += 1; return .any(newline: dotAll)
        case "^": i += 1; return .assertion(multiline ? .lineStart : .textStart)
        case "$": i += 1; return .assertion(multiline ? .lineEnd : .textEndBeforeNewline)
        case "\\": return try escape()
        case "*", "+", "?": throw error("a quantifier with nothing to repeat")
        default:
            i += 1
            return .scalar(c, ignoreCase: ignoreCase)
        }
    }

    private mutating func group() throws(RegexSyntaxError) -> RegexNode {
        let start = i
        i += 1
        depth += 1
        defer { depth -= 1 }
        guard depth <= 200 else { throw error("groups nested more than 200 deep") }
        var kind = "capture"
        let saved = (ignoreCase, dotAll, multiline)
        defer { (ignoreCase, dotAll, multiline) = saved }
        if `is`("?") {
            switch peek(1).flatMap(Unicode.Scalar.init).map(Character.init) {
            case ":": i += 2; kind = "group"
            case "=": i += 2; kind = "lookahead"
            case "!": i += 2; kind = "negative lookahead"
            case ">": throw error("atomic groups (?>…) are not supported: they need backtracking")
            case "#":
                while !atEnd, !`is`(")") { i += 1 }
                guard !atEnd else { throw error("an unterminated comment (?#…") }
                i += 1
                return .empty
            case "<":
                if `is`("=", 2) || `is`("!", 2) { throw error("lookbehind (?<=…) and (?<!…) are not supported") }
                i += 2
                while !atEnd, !`is`(">") { i += 1 }  // a named group is numbered as any capturing group
                guard !atEnd else { throw error("an unterminated group name") }
                i += 1
            case "P" where dialect == .python:
                // Python's `(?P<name>…)`; `(?P=name)` is a backreference.
                guard `is`("<", 2) else { throw error("backreferences (?P=name) are not supported: they need backtracking") }
                i += 3
                while !atEnd, !`is`(">") { i += 1 }
                guard !atEnd else { throw error("an unterminated group name") }
                i += 1
            case "'":
                i += 2
                while !atEnd, !`is`("'") { i += 1 }
                guard !atEnd else { throw error("an unterminated group name") }
                i += 1
            default:
                // `(?i:…)`, `(?-i:…)`, `(?m:…)`
                var k = i + 1
                while k < p.count, p[k] != 0x3A, p[k] != 0x29 { k += 1 }
                guard k < p.count, p[k] == 0x3A else { throw error("an unknown group kind `(?`") }
                (ignoreCase, dotAll, multiline) = try parseFlags(from: i + 1, to: k)
                i = k + 1
            }
        }
        var index = 0
        if kind == "capture" {
            captureCount += 1
            index = captureCount
        }
        let body = try alternation()
        guard `is`(")") else { throw RegexSyntaxError(offset: start, reason: "an unclosed `(`") }
        i += 1
        switch kind {
        case "lookahead": return .lookahead(body, negated: false)
        case "negative lookahead": return .lookahead(body, negated: true)
        case "capture": return .capture(body, index: index)
        default: return body
        }
    }

    /// An escape outside a class.
    private mutating func escape() throws(RegexSyntaxError) -> RegexNode {
        i += 1
        guard let c = peek() else { throw error("a pattern ending in `\\`") }
        switch Unicode.Scalar(c).map(Character.init) {
        case "A": i += 1; return .assertion(.textStart)
        case "z": i += 1; return .assertion(.textEnd)
        case "Z": i += 1; return .assertion(dialect == .python ? .textEnd : .textEndBeforeNewline)
        case "b": i += 1; return .assertion(.wordBoundary)
        case "B": i += 1; return .assertion(.notWordBoundary)
        case "G": throw error("`\\G` is not supported")
        case "X", "R", "K", "y", "Y": throw error("`\\\(Character(Unicode.Scalar(c)!))` is not supported")
        case "k", "g": throw error("backreferences and subexpression calls are not supported: they need backtracking")
        case let d? where d.isNumber && d != "0":
            throw error("backreferences (`\\1`…) are not supported: they need backtracking")
        default:
            if let item = try classEscape() {
                switch item {
                case let .range(lo, hi) where lo == hi: return .scalar(lo, ignoreCase: ignoreCase)
                default: return .set(ScalarSet(items: [item], negated: false, ignoreCase: ignoreCase))
                }
            }
            throw error("an unknown escape")
        }
    }

    /// An escape that stands for scalars (`\d`, `\p{L}`, `\x41`, `\n`, `\.`), after the backslash; nil if
    /// the escape is not one of those.
    private mutating func classEscape() throws(RegexSyntaxError) -> ScalarSet.Item? {
        let c = p[i]
        i += 1
        func single(_ v: UInt32) -> ScalarSet.Item { .range(v, v) }
        switch Unicode.Scalar(c).map(Character.init) {
        case "d": return .property(.decimalNumber, negated: false)
        case "D": return .property(.decimalNumber, negated: true)
        case "s", "S":
            // Python's `\s` (str.isspace) also takes the separators U+001C–U+001F, which White_Space does not.
            let negated = c == UInt32(UInt8(ascii: "S"))
            guard dialect == .python else { return .property(.whitespace, negated: negated) }
            return .nested(ScalarSet(items: [.property(.whitespace, negated: false), .range(0x1C, 0x1F)], negated: negated, ignoreCase: false))
        case "w": return .property(.word, negated: false)
        case "W": return .property(.word, negated: true)
        case "h": return .property(.hexDigit, negated: false)
        case "H": return .property(.hexDigit, negated: true)
        case "p", "P":
            guard `is`("{") else { throw error("`\\p` without `{name}`") }
            var k = i + 1
            var negated = c == UInt32(UInt8(ascii: "P"))
            if k < p.count, p[k] == 0x5E { negated.toggle(); k += 1 }
            let nameStart = k
            while k < p.count, p[k] != 0x7D { k += 1 }
            guard k < p.count else { throw error("an unterminated `\\p{`") }
            let name = String(String.UnicodeScalarView(p[nameStart..<k].compactMap(Unicode.Scalar.init)))
            guard let property = UnicodeProperty(name: name) else {
                throw error("the Unicode property \\p{\(name)} is not one Amalgam knows")
            }
            i = k + 1
            return .property(property, negated: negated)
        case "t": return single(0x09)
        case "n": return single(0x0A)
        case "r": return single(0x0D)
        case "f": return single(0x0C)
        case "v": return single(0x0B)
        case "a": return single(0x07)
        case "e": return single(0x1B)
        case "0":
            var v: UInt32 = 0, n = 0
            while n < 2, let d = peek(), d >= 0x30, d <= 0x37 { v = v * 8 + d - 0x30; i += 1; n += 1 }
            return single(v)
        case "x":
            if `is`("{") {
                var k = i + 1
                while k < p.count, p[k] != 0x7D { k += 1 }
                guard k < p.count, let v = hexValue(i + 1, k), v <= 0x10FFFF else { throw error("a bad `\\x{…}` escape") }
                i = k + 1
                return single(v)
            }
            var k = i
            while k < min(i + 2, p.count), hexValue(k, k + 1) != nil { k += 1 }
            guard k > i, let v = hexValue(i, k) else { throw error("a bad `\\x` escape") }
            i = k
            return single(v)
        case "u":
            guard i + 4 <= p.count, let v = hexValue(i, i + 4) else { throw error("a bad `\\u` escape") }
            i += 4
            return single(v)
        default:
            // Any other non-alphanumeric ASCII character escaped stands for itself.
            if let s = Unicode.Scalar(c), !(s.properties.isAlphabetic || ("0"..."9").contains(s)) { return single(c) }
            i -= 1
            return nil
        }
    }

    private func hexValue(_ from: Int, _ to: Int) -> UInt32? {
        guard from < to, to - from <= 8 else { return nil }
        var v: UInt32 = 0
        for k in from..<to {
            guard let d = Unicode.Scalar(p[k]).flatMap({ Character($0).hexDigitValue }) else { return nil }
            v = v << 4 | UInt32(d)
        }
        return v
    }

    /// A bracketed class after its `[`, up to and including its `]`.
    private mutating func classBody() throws(RegexSyntaxError) -> ScalarSet {
        let start = i - 1
        depth += 1
        defer { depth -= 1 }
        guard depth <= 200 else { throw error("classes nested more than 200 deep") }
        var negated = false
        if `is`("^") { negated = true; i += 1 }
        var items: [ScalarSet.Item] = []
        var first = true
        while true {
            guard let c = peek() else { throw RegexSyntaxError(offset: start, reason: "an unclosed `[`") }
            if c == 0x5D, !first { i += 1; break }  // `]` (a `]` first in the class is a literal)
            first = false
            if `is`("&"), `is`("&", 1) {
                i += 2
                // `[left&&right]`: the right operand runs to the class's own `]`.
                let left = ScalarSet(items: items, negated: false, ignoreCase: ignoreCase)
                let right = try classBody()
                items = [.intersection(left, right)]
                return ScalarSet(items: items, negated: negated, ignoreCase: ignoreCase)
            }
            if c == 0x5B {  // `[`
                if `is`(":", 1), let posix = try posixClass() { items.append(posix); continue }
                i += 1
                items.append(.nested(try classBody()))
                continue
            }
            var low: ScalarSet.Item
            if c == 0x5C {
                i += 1
                guard !atEnd else { throw error("a class ending in `\\`") }
                if `is`("b") { i += 1; low = .range(0x08, 0x08) } else if let item = try classEscape() { low = item } else {
                    throw error("an unknown escape in a class")
                }
            } else {
                i += 1
                low = .range(c, c)
            }
            // A range `a-z` (a `-` before `]` is a literal).
            if case let .range(lo, lo2) = low, lo == lo2, `is`("-"), let following = peek(1), following != 0x5D {
                i += 1
                var hi: UInt32
                if following == 0x5C {
                    i += 1
                    guard case let .range(h, h2)? = try classEscape(), h == h2 else { throw error("a range ending in a class escape") }
                    hi = h
                } else if following == 0x5B {
                    throw error("a range ending in `[`")
                } else {
                    hi = following
                    i += 1
                }
                guard hi >= lo else { throw error("a range out of order") }
                items.append(.range(lo, hi))
                continue
            }
            items.append(low)
        }
        return ScalarSet(items: items, negated: negated, ignoreCase: ignoreCase)
    }

    /// `[:alpha:]` or `[:^alpha:]` at `i`, consumed; nil if it is not one (then `[` starts a nested class).
    private mutating func posixClass() throws(RegexSyntaxError) -> ScalarSet.Item? {
        var k = i + 2
        var negated = false
        if k < p.count, p[k] == 0x5E { negated = true; k += 1 }
        let nameStart = k
        while k < p.count, (p[k] >= 0x61 && p[k] <= 0x7A) { k += 1 }
        guard k + 1 < p.count, p[k] == 0x3A, p[k + 1] == 0x5D else { return nil }
        let name = String(String.UnicodeScalarView(p[nameStart..<k].compactMap(Unicode.Scalar.init)))
        guard let property = UnicodeProperty(posixName: name) else { throw error("the POSIX class [:\(name):] is not one Amalgam knows") }
        i = k + 2
        return .property(property, negated: negated)
    }
}
