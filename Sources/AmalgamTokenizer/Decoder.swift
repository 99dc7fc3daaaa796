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
        let content = Array(try node.string("content").utf8)
        switch try node.splitPattern("pattern") {
        case let .literal(bytes): return ReplaceDecoder(pattern: bytes, content: content)
        case let .regex(regex): return RegexReplaceDecoder(replace: RegexReplace(regex: regex, content: content))
        default: return RegexReplaceDecoder(replace: RegexReplace(regex: try regexOf(node, "pattern"), content: content))
        }
    case "WordPiece":
        return WordPieceDecoder(prefix: try node.string("prefix", default: "##"), cleanup: try node.bool("cleanup", default: true))
    case "CTC":
        return CTCDecoder(pad: try node.string("pad_token", default: "<pad>"),
                          wordDelimiter: try node.string("word_delimiter_token", default: "|"), cleanup: try node.bool("cleanup", default: true))
    case "BPEDecoder":
        return BPESuffixDecoder(suffix: try node.string("suffix", default: "</w>"))
    case "Sequence":
        return DecoderSequence(stages: try node.array("decoders").map { (n) throws(TokenizerError) in try makeDecoder(n) })
    default:
        throw node.unsupported(type, supported: ["ByteLevel", "Metaspace", "ByteFallback", "Fuse", "Strip", "Replace", "WordPiece", "CTC",
                                                 "BPEDecoder", "Sequence"])
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

/// Replaces the matches of a regex in each token.
struct RegexReplaceDecoder: Decoder {
    let replace: RegexReplace
    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.map { String(decoding: replace.replaceBytes(Array($0.utf8)), as: UTF8.self) }
    }
}

/// The spaces BERT-style decoders take out before punctuation and contractions.
func wordPieceCleanup(_ text: String) -> String {
    var out = text
    for (from, to) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                       (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
        out = String(decoding: replaceBytes(Array(out.utf8), Array(from.utf8), Array(to.utf8)), as: UTF8.self)
    }
    return out
}

/// WordPiece tokens back to words: a continuation (`##x`) joins the previous token, others get a space.
struct WordPieceDecoder: Decoder {
    let prefix: String
    let cleanup: Bool

    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { i, token in
            var t = token
            if i != 0 { t = t.utf8.starts(with: prefix.utf8) ? String(decoding: Array(t.utf8.dropFirst(prefix.utf8.count)), as: UTF8.self) : " " + t }
            return cleanup ? wordPieceCleanup(t) : t
        }
    }
}

/// CTC output: repeated tokens collapsed, padding dropped, the word delimiter made a space.
struct CTCDecoder: Decoder {
    let pad: String
    let wordDelimiter: String
    let cleanup: Bool

    func decodeChain(_ tokens: [String]) -> [String] {
        var out: [String] = []
        var previous: String?
        for token in tokens {
            defer { previous = token }
            if token == previous { continue }
            var t = String(decoding: replaceBytes(Array(token.utf8), Array(pad.utf8), []), as: UTF8.self)
            if cleanup {
                t = String(decoding: replaceBytes(Array(wordPieceCleanup(t).utf8), Array(wordDelimiter.utf8), [0x20]), as: UTF8.self)
            }
            if !t.isEmpty { out.append(t) }
        }
        return out
    }
}

/// The end-of-word suffix of classic BPE (`</w>`) made a space, except on the last token.
struct BPESuffixDecoder: Decoder {
    let suffix: String
    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { i, token in
            String(decoding: replaceBytes(Array(token.utf8), Array(suffix.utf8), i == tokens.count - 1 ? [] : [0x20]), as: UTF8.self)
        }
    }
}
