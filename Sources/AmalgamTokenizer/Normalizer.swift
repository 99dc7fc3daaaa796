import AmalgamCore
import Foundation

/// The first pipeline stage: rewrites the text of each segment between added tokens (`normalizer`).
protocol Normalizer: Sendable {
    func normalize(_ text: String) -> String
}

/// Builds the normalizer named by a `normalizer` node's `type`.
func makeNormalizer(_ node: JSONNode) throws(TokenizerError) -> any Normalizer {
    let type = try node.string("type")
    switch type {
    case "NFC": return UnicodeNormalizer(form: .nfc)
    case "NFD": return UnicodeNormalizer(form: .nfd)
    case "NFKC": return UnicodeNormalizer(form: .nfkc)
    case "NFKD": return UnicodeNormalizer(form: .nfkd)
    case "Lowercase": return Lowercase()
    case "Prepend": return Prepend(prefix: try node.string("prepend"))
    case "Replace":
        let content = try node.string("content")
        switch try node.splitPattern("pattern") {
        case let .literal(bytes): return Replace(pattern: String(decoding: bytes, as: UTF8.self), content: content)
        case let .regex(regex): return RegexReplace(regex: regex, content: Array(content.utf8))
        default: return RegexReplace(regex: try regexOf(node, "pattern"), content: Array(content.utf8))
        }
    case "Strip":
        return Strip(left: try node.bool("strip_left", default: true), right: try node.bool("strip_right", default: true))
    case "StripAccents": return StripAccents()
    case "BertNormalizer":
        let lowercase = try node.bool("lowercase", default: true)
        let stripAccents = node.optional("strip_accents") == nil ? lowercase : try node.bool("strip_accents", default: lowercase)
        return BertNormalizer(cleanText: try node.bool("clean_text", default: true),
                              handleChineseChars: try node.bool("handle_chinese_chars", default: true),
                              stripAccents: stripAccents, lowercase: lowercase)
    case "Nmt": return Nmt()
    case "ByteLevel": return ByteLevelNormalizer()
    case "Precompiled":
        let map = try node.required("precompiled_charsmap")
        guard let text = map.value.stringValue else { throw map.invalid("expected a base64 string") }
        return try Precompiled(base64: text, node: map)
    case "Sequence":
        return NormalizerSequence(stages: try node.array("normalizers").map { (n) throws(TokenizerError) in try makeNormalizer(n) })
    default:
        throw node.unsupported(type, supported: ["NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Prepend", "Replace", "Strip", "StripAccents",
                                                 "BertNormalizer", "Nmt", "ByteLevel", "Precompiled", "Sequence"])
    }
}

/// The literal a `{"String": s}` pattern, or a regex without metacharacters, stands for.
func literalPattern(_ pattern: (text: String, isRegex: Bool)) -> String? {
    if !pattern.isRegex { return pattern.text }
    let meta: Set<Character> = ["\\", ".", "^", "$", "|", "?", "*", "+", "(", ")", "[", "]", "{", "}"]
    return pattern.text.contains(where: { meta.contains($0) }) ? nil : pattern.text
}

/// A regex of a pattern key compiled as such (for a known split regex, whose scanner only splits).
func regexOf(_ node: JSONNode, _ key: String) throws(TokenizerError) -> ScalarRegex {
    let pattern = try node.pattern(key)
    do { return try ScalarRegex(pattern.text) } catch {
        throw .unsupportedOption(path: node.file, key: node.key(key), reason: "the regex \(pattern.text) cannot be used: \(error)")
    }
}

/// Unicode normalization forms (`NFC`, `NFD`, `NFKC`, `NFKD`).
struct UnicodeNormalizer: Normalizer {
    enum Form { case nfc, nfd, nfkc, nfkd }
    let form: Form

    func normalize(_ text: String) -> String {
        switch form {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        }
    }
}

/// Full Unicode lowercase mapping, as Rust's `str::to_lowercase`.
struct Lowercase: Normalizer {
    func normalize(_ text: String) -> String { text.lowercased() }
}

/// Puts `prefix` before a non-empty segment (Llama 2 adds "▁" this way).
struct Prepend: Normalizer {
    let prefix: String
    func normalize(_ text: String) -> String { text.isEmpty ? text : prefix + text }
}

/// Replaces every occurrence of a literal, scanning bytes so canonically equivalent text is not touched.
struct Replace: Normalizer {
    let pattern: String
    let content: String

    func normalize(_ text: String) -> String {
        String(decoding: replaceBytes(Array(text.utf8), Array(pattern.utf8), Array(content.utf8)), as: UTF8.self)
    }
}

/// Removes leading and/or trailing whitespace.
struct Strip: Normalizer {
    let left: Bool
    let right: Bool

    func normalize(_ text: String) -> String {
        var scalars = Substring(text).unicodeScalars[...]
        if left { while let f = scalars.first, f.properties.isWhitespace { scalars.removeFirst() } }
        if right { while let l = scalars.last, l.properties.isWhitespace { scalars.removeLast() } }
        return String(String.UnicodeScalarView(scalars))
    }
}

/// Normalizers applied in order.
struct NormalizerSequence: Normalizer {
    let stages: [any Normalizer]
    func normalize(_ text: String) -> String { stages.reduce(text) { $1.normalize($0) } }
}

/// Replaces every non-overlapping occurrence of `pattern` in `bytes`, left to right.
func replaceBytes(_ bytes: [UInt8], _ pattern: [UInt8], _ content: [UInt8]) -> [UInt8] {
    guard !pattern.isEmpty, bytes.count >= pattern.count else { return bytes }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var i = 0
    let first = pattern[0]
    while i < bytes.count {
        if bytes[i] == first, i + pattern.count <= bytes.count, bytes[i..<(i + pattern.count)].elementsEqual(pattern) {
            out.append(contentsOf: content)
            i += pattern.count
        } else {
            out.append(bytes[i])
            i += 1
        }
    }
    return out
}

/// Replaces every match of a regex (empty matches too, as tokenizers does) by `content`.
struct RegexReplace: Normalizer {
    let regex: ScalarRegex
    let content: [UInt8]

    func normalize(_ text: String) -> String { String(decoding: replaceBytes(Array(text.utf8)), as: UTF8.self) }

    func replaceBytes(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        bytes.withUnsafeBufferPointer { buffer in
            for segment in regex.segments(buffer) {
                if segment.isMatch { out += content } else { out += buffer[segment.range] }
            }
        }
        return out
    }
}

/// Drops combining marks (Mn, Mc, Me); meant to follow NFD.
struct StripAccents: Normalizer {
    func normalize(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.filter { !UnicodeProperty.marks.contains($0.properties.generalCategory) }))
    }
}

/// BERT's normalizer: control characters dropped and whitespace made spaces, CJK ideographs surrounded by
/// spaces, accents stripped (NFD, then non-spacing marks dropped), lowercase.
struct BertNormalizer: Normalizer {
    let cleanText: Bool
    let handleChineseChars: Bool
    let stripAccents: Bool
    let lowercase: Bool

    static func isChinese(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B920...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }

    func normalize(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            var s = s
            if cleanText {
                let isSpace = s == "\t" || s == "\n" || s == "\r" || s.properties.isWhitespace
                if !isSpace {
                    if s.value == 0 || s.value == 0xFFFD { continue }
                    switch s.properties.generalCategory {
                    case .control, .format, .unassigned, .privateUse, .surrogate: continue
                    default: break
                    }
                } else {
                    s = " "
                }
            }
            if handleChineseChars, BertNormalizer.isChinese(s.value) {
                scalars.append(" "); scalars.append(s); scalars.append(" ")
            } else {
                scalars.append(s)
            }
        }
        var out = String(scalars)
        if stripAccents {
            out = String(String.UnicodeScalarView(out.decomposedStringWithCanonicalMapping.unicodeScalars.filter {
                $0.properties.generalCategory != .nonspacingMark
            }))
        }
        return lowercase ? out.lowercased() : out
    }
}

/// The NMT normalizer: some control characters dropped, some space-like ones made spaces.
struct Nmt: Normalizer {
    func normalize(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            switch s.value {
            case 0x01...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x8F, 0x9F: continue
            case 0x09, 0x0A, 0x0C, 0x0D, 0x1680, 0x200B...0x200F, 0x2028, 0x2029, 0x2581, 0xFEFF, 0xFFFD: out.append(" ")
            default: out.append(s)
            }
        }
        return String(out)
    }
}

/// Each byte of the text as its byte-level character (the ByteLevel normalizer).
struct ByteLevelNormalizer: Normalizer {
    func normalize(_ text: String) -> String { String(decoding: ByteLevelAlphabet.map(Array(text.utf8)), as: UTF8.self) }
}
