import Foundation

/// SentencePiece's compiled normalization rules (`Precompiled`, `precompiled_charsmap`): a darts-clone
/// double-array trie over UTF-8 whose values are offsets into a blob of NUL-terminated replacements. As
/// `tokenizers` applies it: each grapheme cluster shorter than 6 bytes is looked up whole; otherwise (or
/// when it has no entry) each of its scalars is, and text without an entry is kept.
struct Precompiled: Normalizer {
    /// The trie's units.
    let units: [UInt32]
    /// The replacement texts, NUL-terminated, addressed by the trie's values.
    let replacements: [UInt8]

    /// Reads the base64 map: a little-endian u32 trie size in bytes, the trie, then the replacements.
    init(base64 text: String, node: JSONNode) throws(TokenizerError) {
        guard let data = Data(base64Encoded: text), data.count >= 4 else {
            throw node.invalid("not a base64 precompiled charsmap")
        }
        let bytes = [UInt8](data)
        let trieBytes = Int(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
        guard trieBytes % 4 == 0, 4 + trieBytes <= bytes.count else { throw node.invalid("the charsmap's trie size exceeds the map") }
        units = stride(from: 4, to: 4 + trieBytes, by: 4).map {
            UInt32(bytes[$0]) | UInt32(bytes[$0 + 1]) << 8 | UInt32(bytes[$0 + 2]) << 16 | UInt32(bytes[$0 + 3]) << 24
        }
        replacements = Array(bytes[(4 + trieBytes)...])
        guard !units.isEmpty else { throw node.invalid("the charsmap's trie is empty") }
    }

    /// The replacement of the shortest key that prefixes `key` (as `tokenizers` takes the first result of
    /// its common-prefix search), or nil.
    func replacement<C: Collection<UInt8>>(_ key: C) -> ArraySlice<UInt8>? {
        var position = Int(offset(units[0]))
        for c in key {
            if c == 0 { break }
            position ^= Int(c)
            guard position < units.count else { return nil }
            let unit = units[position]
            guard unit & ((1 << 31) | 0xFF) == UInt32(c) else { return nil }
            position ^= Int(offset(unit))
            guard position < units.count else { return nil }
            if (unit >> 8) & 1 == 1 {
                let start = Int(units[position] & ((1 << 31) - 1))
                guard start <= replacements.count else { return nil }
                var end = start
                while end < replacements.count, replacements[end] != 0 { end += 1 }
                return replacements[start..<end]
            }
        }
        return nil
    }

    private func offset(_ unit: UInt32) -> UInt32 { (unit >> 10) << ((unit & (1 << 9)) >> 6) }

    func normalize(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for grapheme in text {
            let bytes = Array(String(grapheme).utf8)
            if bytes.count < 6, let r = replacement(bytes) {
                out += r
                continue
            }
            for scalar in grapheme.unicodeScalars {
                let part = Array(String(scalar).utf8)
                out += replacement(part) ?? part[...]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
