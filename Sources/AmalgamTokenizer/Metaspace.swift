import AmalgamCore
/// SentencePiece's handling of spaces: each space becomes "▁" (U+2581) and a "▁" is put before the text,
/// so a word is encoded the same at the start of the text as after a space.
struct MetaspaceOptions: Sendable {
    enum PrependScheme: String, Sendable { case always, first, never }
    let replacement: String
    let prependScheme: PrependScheme
    let split: Bool

    init(_ node: JSONNode) throws(TokenizerError) {
        replacement = try node.string("replacement", default: "\u{2581}")
        if let scheme = node.optional("prepend_scheme") {
            guard let name = scheme.value.stringValue, let parsed = PrependScheme(rawValue: name) else {
                throw scheme.invalid("expected \"always\", \"first\" or \"never\"")
            }
            prependScheme = parsed
        } else {
            // Files written before tokenizers 0.14 have `add_prefix_space` instead.
            prependScheme = try node.bool("add_prefix_space", default: true) ? .always : .never
        }
        split = try node.bool("split", default: true)
    }
}

/// The Metaspace pre-tokenizer: spaces to "▁", the prefix "▁", and (with `split`) a cut before each "▁".
struct Metaspace: PreTokenizer {
    let options: MetaspaceOptions
    let replacement: [UInt8]

    init(_ options: MetaspaceOptions) {
        self.options = options
        replacement = Array(options.replacement.utf8)
    }

    func preTokenize(_ text: inout PreTokenized) {
        text.materializeByteLevel()
        for k in text.pieces.indices {
            var bytes = replaceBytes(Array(text.pieces[k].bytes), [0x20], replacement)
            let prefixed = bytes.starts(with: replacement)
            switch options.prependScheme {
            case .always where !prefixed: bytes = replacement + bytes
            case .first where !prefixed && text.pieces[k].atOrigin: bytes = replacement + bytes
            default: break
            }
            text.pieces[k].bytes = ArraySlice(bytes)
        }
        if options.split {
            let pattern = SplitPattern.literal(replacement)
            text.split { SplitBehavior.mergedWithNext.apply(pattern.segments($0)) }
        }
    }
}

/// The Metaspace decoder: "▁" back to spaces, the prefix space of the first token dropped.
struct MetaspaceDecoder: Decoder {
    let options: MetaspaceOptions

    func decodeChain(_ tokens: [String]) -> [String] {
        // Scalars, not Characters: a "▁" followed by a combining mark is still a "▁".
        let replacement = options.replacement.unicodeScalars.first ?? "\u{2581}"
        return tokens.enumerated().map { i, token in
            var out = String.UnicodeScalarView()
            for c in token.unicodeScalars {
                if c == replacement {
                    // As tokenizers does: every "▁" of the first token goes, not only the first one.
                    if i == 0 && options.prependScheme != .never { continue }
                    out.append(" ")
                } else {
                    out.append(c)
                }
            }
            return String(out)
        }
    }
}
