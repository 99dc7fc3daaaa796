import AmalgamCore
/// What a `Split` pre-tokenizer (or ByteLevel's built-in regex) cuts on. The regexes of GPT-2, Llama 3 and
/// Qwen2 are matched by hand-written scanners over UTF-8 with the Unicode general categories (the fast
/// path); every other regex runs on `ScalarRegex`.
enum SplitPattern: Sendable {
    /// A literal string (`{"String": s}`, or a regex without metacharacters).
    case literal([UInt8])
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Llama 3's pattern (`maxDigits` 3); Qwen2's is the same with single digits (`maxDigits` 1).
    case llama3(maxDigits: Int)
    /// Any other regex.
    case regex(ScalarRegex)

    static let gpt2Regex = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The pattern a regex or literal stands for: a scanner where one applies, else the compiled regex.
    static func from(_ pattern: (text: String, isRegex: Bool)) throws(RegexSyntaxError) -> SplitPattern {
        if pattern.isRegex {
            switch pattern.text {
            case gpt2Regex: return .gpt2
            case llama3Regex: return .llama3(maxDigits: 3)
            case qwen2Regex: return .llama3(maxDigits: 1)
            default: break
            }
        }
        if let literal = literalPattern(pattern) { return .literal(Array(literal.utf8)) }
        return .regex(try ScalarRegex(pattern.text))
    }

    /// The text cut into consecutive segments covering all of it, each flagged as a match or not.
    func segments(_ text: UnsafeBufferPointer<UInt8>) -> [(range: Range<Int>, isMatch: Bool)] {
        var out: [(range: Range<Int>, isMatch: Bool)] = []
        switch self {
        case let .literal(pattern):
            guard !pattern.isEmpty else { return text.isEmpty ? [] : [(0..<text.count, false)] }
            var start = 0, i = 0
            while i + pattern.count <= text.count {
                if text[i] == pattern[0], pattern.indices.allSatisfy({ text[i + $0] == pattern[$0] }) {
                    if start < i { out.append((start..<i, false)) }
                    out.append((i..<(i + pattern.count), true))
                    i += pattern.count
                    start = i
                } else {
                    i += 1
                }
            }
            if start < text.count { out.append((start..<text.count, false)) }
        case .gpt2:
            let scanner = RegexScanner(text: text)
            var i = 0
            while i < text.count {
                let end = scanner.gpt2Match(at: i)
                out.append((i..<end, true))
                i = end
            }
        case let .regex(regex):
            return regex.segments(text)
        case let .llama3(maxDigits):
            let scanner = RegexScanner(text: text)
            var i = 0
            while i < text.count {
                let end = scanner.llama3Match(at: i, maxDigits: maxDigits)
                out.append((i..<end, true))
                i = end
            }
        }
        return out
    }
}

/// The classes the known regexes distinguish: `\p{L}`, `\p{N}`, `\s` and everything else.
enum ScalarClass: UInt8 {
    case letter, number, space, other
}

/// Classes of the ASCII scalars, looked up before asking Unicode properties.
private let asciiClasses: [ScalarClass] = (0..<128).map { classify(Unicode.Scalar(UInt8($0))) }

/// The class of a scalar by its Unicode general category; `\s` is the White_Space property, as in onig.
func classify(_ scalar: Unicode.Scalar) -> ScalarClass {
    let p = scalar.properties
    switch p.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
    case .decimalNumber, .letterNumber, .otherNumber: return .number
    default: return p.isWhitespace ? .space : .other
    }
}

/// One scanner per segment: finds where the match of a known regex starting at a byte offset ends.
struct RegexScanner {
    let text: UnsafeBufferPointer<UInt8>

    /// The class and UTF-8 length of the scalar at byte `i` (the text is valid UTF-8).
    @inline(__always)
    func scalar(at i: Int) -> (cls: ScalarClass, length: Int) {
        let b0 = text[i]
        if b0 < 0x80 { return (asciiClasses[Int(b0)], 1) }
        let length = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : 2
        var value = UInt32(b0) & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
        for k in 1..<length { value = value << 6 | (UInt32(text[i + k]) & 0x3F) }
        return (classify(Unicode.Scalar(value) ?? "\u{FFFD}"), length)
    }

    /// The end of the run of scalars of class `cls` starting at `i` (at most `limit` scalars).
    @inline(__always)
    func run(_ cls: ScalarClass, from i: Int, limit: Int = .max) -> Int {
        var j = i, count = 0
        while j < text.count, count < limit {
            let s = scalar(at: j)
            guard s.cls == cls else { break }
            j += s.length
            count += 1
        }
        return j
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d` at `i`: the end of the contraction, or nil.
    func contraction(at i: Int, ignoreCase: Bool) -> Int? {
        guard text[i] == UInt8(ascii: "'"), i + 1 < text.count else { return nil }
        func lower(_ b: UInt8) -> UInt8 { ignoreCase && b >= 65 && b <= 90 ? b | 0x20 : b }
        let c1 = lower(text[i + 1])
        if c1 == UInt8(ascii: "s") || c1 == UInt8(ascii: "t") || c1 == UInt8(ascii: "m") || c1 == UInt8(ascii: "d") { return i + 2 }
        guard i + 2 < text.count else { return nil }
        let c2 = lower(text[i + 2])
        switch (c1, c2) {
        case (UInt8(ascii: "r"), UInt8(ascii: "e")), (UInt8(ascii: "v"), UInt8(ascii: "e")), (UInt8(ascii: "l"), UInt8(ascii: "l")):
            return i + 3
        default: return nil
        }
    }

    /// `\s+(?!\S)|\s+` at a whitespace scalar `i`: the whole run if it ends the text, else the run but
    /// its last scalar (which then joins the next word), else one scalar.
    func whitespace(at i: Int) -> Int {
        var j = i, lastStart = i
        while j < text.count {
            let s = scalar(at: j)
            guard s.cls == .space else { break }
            lastStart = j
            j += s.length
        }
        if j == text.count || lastStart == i { return j }
        return lastStart
    }

    /// The end of GPT-2's match at `i`.
    func gpt2Match(at i: Int) -> Int {
        if let end = contraction(at: i, ignoreCase: false) { return end }
        let first = scalar(at: i)
        if text[i] == 0x20, i + 1 < text.count {
            let next = scalar(at: i + 1)
            if next.cls != .space { return run(next.cls, from: i + 1) }
        }
        if first.cls != .space { return run(first.cls, from: i) }
        return whitespace(at: i)
    }

    /// The end of Llama 3's (or Qwen2's) match at `i`.
    func llama3Match(at i: Int, maxDigits: Int) -> Int {
        if let end = contraction(at: i, ignoreCase: true) { return end }
        let first = scalar(at: i)
        let isNewline = text[i] == 0x0A || text[i] == 0x0D
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if first.cls == .letter { return run(.letter, from: i) }
        if !isNewline, first.cls != .number, i + first.length < text.count,
           scalar(at: i + first.length).cls == .letter {
            return run(.letter, from: i + first.length)
        }
        // \p{N}{1,maxDigits}
        if first.cls == .number { return run(.number, from: i, limit: maxDigits) }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var start: Int? = first.cls == .other ? i : nil
        if text[i] == 0x20, i + 1 < text.count, scalar(at: i + 1).cls == .other { start = i + 1 }
        if let start {
            var j = run(.other, from: start)
            while j < text.count, text[j] == 0x0A || text[j] == 0x0D { j += 1 }
            return j
        }
        // \s*[\r\n]+ : up to the last newline of the whitespace run.
        var j = i, lastNewline: Int? = nil
        while j < text.count {
            let s = scalar(at: j)
            guard s.cls == .space else { break }
            if text[j] == 0x0A || text[j] == 0x0D { lastNewline = j }
            j += s.length
        }
        if let lastNewline { return lastNewline + 1 }
        return whitespace(at: i)
    }
}

/// How a split keeps its delimiters, as tokenizers' `SplitDelimiterBehavior`.
enum SplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"

    /// The pieces (non-empty ranges) that segments flagged as matches give under this behaviour.
    func apply(_ segments: [(range: Range<Int>, isMatch: Bool)]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        switch self {
        case .removed:
            out = segments.filter { !$0.isMatch }.map(\.range)
        case .isolated:
            out = segments.map(\.range)
        case .mergedWithPrevious:
            var previousMatch = false
            for s in segments {
                if s.isMatch, !previousMatch, let last = out.last {
                    out[out.count - 1] = last.lowerBound..<s.range.upperBound
                } else {
                    out.append(s.range)
                }
                previousMatch = s.isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            for s in segments.reversed() {
                if s.isMatch, !previousMatch, let last = out.last {
                    out[out.count - 1] = s.range.lowerBound..<last.upperBound
                } else {
                    out.append(s.range)
                }
                previousMatch = s.isMatch
            }
            out.reverse()
        case .contiguous:
            var previousMatch = false
            for s in segments {
                if s.isMatch == previousMatch, let last = out.last {
                    out[out.count - 1] = last.lowerBound..<s.range.upperBound
                } else {
                    out.append(s.range)
                }
                previousMatch = s.isMatch
            }
        }
        return out.filter { !$0.isEmpty }
    }
}
