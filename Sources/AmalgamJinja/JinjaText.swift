/// Python `str` operations on Swift strings, by code point (Swift's own compare grapheme clusters
/// under canonical equivalence, which Python does not).
public enum PythonString {
    public static func find(_ s: [UInt8], _ sub: [UInt8], from start: Int = 0) -> Int? {
        guard !sub.isEmpty else { return start <= s.count ? start : nil }
        guard s.count >= sub.count, start <= s.count - sub.count else { return nil }
        var i = start
        while i <= s.count - sub.count {
            if s[i] == sub[0] && s[i..<(i + sub.count)].elementsEqual(sub) { return i }
            i += 1
        }
        return nil
    }

    static func contains(_ s: String, _ sub: String) -> Bool { find(Array(s.utf8), Array(sub.utf8)) != nil }
    static func hasPrefix(_ s: String, _ p: String) -> Bool { s.utf8.starts(with: p.utf8) }
    static func hasSuffix(_ s: String, _ p: String) -> Bool { s.utf8.reversed().starts(with: p.utf8.reversed()) }

    /// `str.replace(old, new, count)`.
    static func replace(_ s: String, _ old: String, _ new: String, count: Int = -1) -> String {
        let b = Array(s.utf8), o = Array(old.utf8), n = Array(new.utf8)
        var out: [UInt8] = []
        var i = 0, done = 0
        if o.isEmpty {
            // Python inserts `new` between characters (and at both ends)
            let scalars = Array(s.unicodeScalars)
            var result = ""
            for (k, c) in scalars.enumerated() {
                if count < 0 || k < count { result += new }
                result.unicodeScalars.append(c)
            }
            if count < 0 || scalars.count < count { result += new }
            return result
        }
        while count < 0 || done < count, let j = find(b, o, from: i) {
            out += b[i..<j]
            out += n
            i = j + o.count
            done += 1
        }
        out += b[i...]
        return String(decoding: out, as: UTF8.self)
    }

    /// Python's `str.isspace()` for one character.
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// `str.strip(chars)` / `lstrip` / `rstrip`; nil `chars` strips whitespace.
    static func strip(_ s: String, _ chars: String?, leading: Bool, trailing: Bool) -> String {
        let set = chars.map { Set($0.unicodeScalars) }
        func strips(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isSpace(c) }
        let scalars = Array(s.unicodeScalars)
        var lo = 0, hi = scalars.count
        if leading { while lo < hi, strips(scalars[lo]) { lo += 1 } }
        if trailing { while hi > lo, strips(scalars[hi - 1]) { hi -= 1 } }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[lo..<hi])
        return String(view)
    }

    /// `str.split(sep, maxsplit)`: on runs of whitespace without `sep`.
    static func split(_ s: String, _ sep: String?, maxSplit: Int = -1) -> [String] {
        guard let sep else {
            var parts: [String] = []
            var current = String.UnicodeScalarView()
            var inWord = false
            let scalars = Array(s.unicodeScalars)
            var k = 0
            while k < scalars.count {
                let c = scalars[k]
                if isSpace(c) {
                    if inWord {
                        parts.append(String(current))
                        current = String.UnicodeScalarView()
                        inWord = false
                        if maxSplit >= 0 && parts.count == maxSplit {
                            var rest = k
                            while rest < scalars.count, isSpace(scalars[rest]) { rest += 1 }
                            if rest < scalars.count {
                                var tail = String.UnicodeScalarView()
                                tail.append(contentsOf: scalars[rest...])
                                parts.append(String(tail))
                            }
                            return parts
                        }
                    }
                } else {
                    current.append(c)
                    inWord = true
                }
                k += 1
            }
            if inWord { parts.append(String(current)) }
            return parts
        }
        let b = Array(s.utf8), p = Array(sep.utf8)
        var parts: [String] = []
        var i = 0
        while maxSplit < 0 || parts.count < maxSplit, let j = find(b, p, from: i) {
            parts.append(String(decoding: b[i..<j], as: UTF8.self))
            i = j + p.count
        }
        parts.append(String(decoding: b[i...], as: UTF8.self))
        return parts
    }

    /// Python's `str.title()`: a cased letter after an uncased character is upper-cased, others lower-cased.
    static func title(_ s: String) -> String {
        var out = ""
        var previousCased = false
        for c in s.unicodeScalars {
            let cased = c.properties.isCased
            out += previousCased ? c.properties.lowercaseMapping : c.properties.titlecaseMapping
            previousCased = cased
        }
        return out
    }

    /// Python's `str.capitalize()`: the first character title-cased, the rest lower-cased.
    static func capitalize(_ s: String) -> String {
        guard let first = s.unicodeScalars.first else { return s }
        return first.properties.titlecaseMapping + String(String.UnicodeScalarView(s.unicodeScalars.dropFirst())).lowercased()
    }
}
