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
        let pattern = try node.pattern("pattern")
        guard let literal = literalPattern(pattern) else {
            throw .unsupportedOption(path: node.file, key: node.key("pattern"),
                                     reason: "the regex \(pattern.text) is not supported; only literal patterns are")
        }
        return Replace(pattern: literal, content: try node.string("content"))
    case "Strip":
        return Strip(left: try node.bool("strip_left", default: true), right: try node.bool("strip_right", default: true))
    case "Sequence":
        return NormalizerSequence(stages: try node.array("normalizers").map { (n) throws(TokenizerError) in try makeNormalizer(n) })
    default:
        throw node.unsupported(type, supported: ["NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Prepend", "Replace", "Strip", "Sequence"])
    }
}

/// The literal a `{"String": s}` pattern, or a regex without metacharacters, stands for.
func literalPattern(_ pattern: (text: String, isRegex: Bool)) -> String? {
    if !pattern.isRegex { return pattern.text }
    let meta: Set<Character> = ["\\", ".", "^", "$", "|", "?", "*", "+", "(", ")", "[", "]", "{", "}"]
    return pattern.text.contains(where: { meta.contains($0) }) ? nil : pattern.text
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
