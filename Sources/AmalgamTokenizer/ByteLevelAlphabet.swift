/// GPT-2's reversible map from the 256 byte values to printable characters (`bytes_to_unicode`): printable
/// Latin-1 bytes stand for themselves, the others for U+0100 onwards, so a byte-level vocabulary never
/// holds spaces or control characters.
enum ByteLevelAlphabet {
    /// The scalar each byte stands for.
    static let scalars: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The UTF-8 of each byte's character.
    static let utf8: [[UInt8]] = scalars.map { Array(String($0).utf8) }

    /// The byte each alphabet scalar stands for.
    static let bytes: [UInt32: UInt8] = Dictionary(uniqueKeysWithValues: scalars.enumerated().map { ($1.value, UInt8($0)) })

    /// Raw bytes written in the alphabet (as UTF-8).
    static func map<C: Collection<UInt8>>(_ raw: C) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count * 2)
        for b in raw { out.append(contentsOf: utf8[Int(b)]) }
        return out
    }

    /// The bytes a token's text stands for, or nil if it holds a character outside the alphabet.
    static func unmap(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        for scalar in text.unicodeScalars {
            guard let b = bytes[scalar.value] else { return nil }
            out.append(b)
        }
        return out
    }
}
