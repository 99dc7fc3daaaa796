/// The last stage of decoding: turns token strings back into text (`decoder`). Each decoder maps the
/// token list to a new list, as tokenizers' `decode_chain`; the results are concatenated at the end.
protocol Decoder: Sendable {
    func decodeChain(_ tokens: [String]) -> [String]
}

/// Builds the decoder named by a `decoder` node's `type`.
func makeDecoder(_ node: JSONNode) throws(TokenizerError) -> any Decoder {
    let type = try node.string("type")
    switch type {
    case "ByteLevel": return ByteLevelDecoder()
    case "Metaspace": return MetaspaceDecoder(options: try MetaspaceOptions(node))
    case "ByteFallback": return ByteFallbackDecoder()
    case "Fuse": return FuseDecoder()
    case "Strip":
        let content = try node.string("content")
        guard content.unicodeScalars.count == 1, let scalar = content.unicodeScalars.first else {
            throw JSONNode(value: node.value["content"]!, file: node.file, path: node.key("content")).invalid("expected one character")
        }
        return StripDecoder(content: scalar, start: try node.int("start", default: 0), stop: try node.int("stop", default: 0))
    case "Replace":
        let pattern = try node.pattern("pattern")
        guard let literal = literalPattern(pattern) else {
            throw .unsupportedOption(path: node.file, key: node.key("pattern"),
                                     reason: "the regex \(pattern.text) is not supported; only literal patterns are")
        }
        return ReplaceDecoder(pattern: Array(literal.utf8), content: Array(try node.string("content").utf8))
    case "Sequence":
        return DecoderSequence(stages: try node.array("decoders").map { (n) throws(TokenizerError) in try makeDecoder(n) })
    default:
        throw node.unsupported(type, supported: ["ByteLevel", "Metaspace", "ByteFallback", "Fuse", "Strip", "Replace", "Sequence"])
    }
}

/// Byte-level tokens back to bytes, then the bytes to one string (invalid UTF-8 becomes U+FFFD). A token
/// with a character outside the alphabet (an added token, say) contributes its own UTF-8.
struct ByteLevelDecoder: Decoder {
    func decodeChain(_ tokens: [String]) -> [String] {
        var bytes: [UInt8] = []
        for token in tokens { bytes += ByteLevelAlphabet.unmap(token) ?? Array(token.utf8) }
        return [String(decoding: bytes, as: UTF8.self)]
    }
}

/// Runs of `<0xNN>` tokens back to the text their bytes spell; a run that is not valid UTF-8 gives one
/// U+FFFD per byte, as tokenizers does.
struct ByteFallbackDecoder: Decoder {
    static func byte(_ token: String) -> UInt8? {
        let u = Array(token.utf8)
        guard u.count == 6, u.starts(with: Array("<0x".utf8)), u[5] == UInt8(ascii: ">") else { return nil }
        return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
    }

    func decodeChain(_ tokens: [String]) -> [String] {
        var out: [String] = []
        var pending: [UInt8] = []
        func flush() {
            guard !pending.isEmpty else { return }
            if let text = String(validating: pending, as: UTF8.self) {
                out.append(text)
            } else {
                out += Array(repeating: "\u{FFFD}", count: pending.count)
            }
            pending.removeAll()
        }
        for token in tokens {
            if let b = ByteFallbackDecoder.byte(token) {
                pending.append(b)
            } else {
                flush()
                out.append(token)
            }
        }
        flush()
        return out
    }
}

/// All tokens joined into one.
struct FuseDecoder: Decoder {
    func decodeChain(_ tokens: [String]) -> [String] { [tokens.joined()] }
}

/// Removes up to `start` leading and `stop` trailing `content` characters from each token.
struct StripDecoder: Decoder {
    let content: Unicode.Scalar
    let start: Int
    let stop: Int

    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.map { token in
            let scalars = Array(token.unicodeScalars)
            var lower = 0
            while lower < min(start, scalars.count), scalars[lower] == content { lower += 1 }
            var upper = scalars.count
            while scalars.count - upper < stop, upper > lower, scalars[upper - 1] == content { upper -= 1 }
            var view = String.UnicodeScalarView()
            view.append(contentsOf: scalars[lower..<upper])
            return String(view)
        }
    }
}

/// Replaces a literal in each token.
struct ReplaceDecoder: Decoder {
    let pattern: [UInt8]
    let content: [UInt8]

    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.map { String(decoding: replaceBytes(Array($0.utf8), pattern, content), as: UTF8.self) }
    }
}

/// Decoders applied in order.
struct DecoderSequence: Decoder {
    let stages: [any Decoder]
    func decodeChain(_ tokens: [String]) -> [String] { stages.reduce(tokens) { $1.decodeChain($0) } }
}
