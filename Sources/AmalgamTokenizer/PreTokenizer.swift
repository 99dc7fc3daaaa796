import AmalgamCore
/// A piece of text between pre-tokenizer splits, as UTF-8.
struct Piece {
    var bytes: ArraySlice<UInt8>
    /// Whether the piece starts at offset 0 of the input (Metaspace's `prepend_scheme: first` needs it).
    var atOrigin: Bool
}

/// The pieces of one segment on their way to the model.
struct PreTokenized {
    var pieces: [Piece]
    /// Set by the ByteLevel pre-tokenizer: the model maps each byte through the byte-level alphabet. The
    /// mapping is left to the model because it then needs neither the mapped text nor its allocation.
    var byteLevel = false

    /// Applies the byte-level mapping now, for a stage that runs after ByteLevel and must see its output.
    mutating func materializeByteLevel() {
        guard byteLevel else { return }
        for k in pieces.indices { pieces[k].bytes = ArraySlice(ByteLevelAlphabet.map(pieces[k].bytes)) }
        byteLevel = false
    }

    /// Replaces every piece by the pieces `split` cuts it into (ranges into the piece's bytes).
    mutating func split(_ split: (UnsafeBufferPointer<UInt8>) -> [Range<Int>]) {
        var out: [Piece] = []
        out.reserveCapacity(pieces.count)
        for piece in pieces {
            let ranges = piece.bytes.withUnsafeBufferPointer { split($0) }
            let base = piece.bytes.startIndex
            for (k, r) in ranges.enumerated() {
                out.append(Piece(bytes: piece.bytes[(base + r.lowerBound)..<(base + r.upperBound)],
                                 atOrigin: piece.atOrigin && k == 0 && r.lowerBound == 0))
            }
        }
        pieces = out
    }
}

/// The second pipeline stage: cuts each segment into pieces the model encodes separately (`pre_tokenizer`).
protocol PreTokenizer: Sendable {
    func preTokenize(_ text: inout PreTokenized)
}

/// Builds the pre-tokenizer named by a `pre_tokenizer` node's `type`.
func makePreTokenizer(_ node: JSONNode) throws(TokenizerError) -> any PreTokenizer {
    let type = try node.string("type")
    switch type {
    case "ByteLevel":
        return ByteLevelPreTokenizer(addPrefixSpace: try node.bool("add_prefix_space", default: true),
                                     useRegex: try node.bool("use_regex", default: true))
    case "Split":
        let split = try node.splitPattern("pattern")
        return Split(pattern: split, behavior: try behavior(node, "behavior"), invert: try node.bool("invert", default: false))
    case "Digits":
        return Digits(individual: try node.bool("individual_digits", default: false))
    case "Metaspace":
        return Metaspace(try MetaspaceOptions(node))
    case "Whitespace":
        return Whitespace()
    case "WhitespaceSplit":
        return WhitespaceSplit()
    case "BertPreTokenizer":
        return BertPreTokenizer()
    case "Punctuation":
        return Punctuation(behavior: node.optional("behavior") == nil ? .isolated : try behavior(node, "behavior"))
    case "CharDelimiterSplit":
        let delimiter = try node.string("delimiter")
        guard delimiter.unicodeScalars.count == 1, let scalar = delimiter.unicodeScalars.first else {
            throw try node.required("delimiter").invalid("expected one character")
        }
        return CharDelimiterSplit(delimiter: scalar)
    case "Sequence":
        return PreTokenizerSequence(stages: try node.array("pretokenizers").map { (n) throws(TokenizerError) in try makePreTokenizer(n) })
    default:
        throw node.unsupported(type, supported: ["ByteLevel", "Split", "Digits", "Metaspace", "Whitespace", "WhitespaceSplit",
                                                 "BertPreTokenizer", "Punctuation", "CharDelimiterSplit", "Sequence"])
    }
}

/// A `behavior` key: how a split keeps its delimiters.
private func behavior(_ node: JSONNode, _ key: String) throws(TokenizerError) -> SplitBehavior {
    let name = try node.string(key)
    // tokenizers writes the names in CamelCase; its Python API also accepts snake_case ones.
    let camel = name.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    guard let behavior = SplitBehavior(rawValue: camel) else {
        throw try node.required(key).invalid("unknown behavior \"\(name)\"; expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous")
    }
    return behavior
}

/// GPT-2's pre-tokenizer: an optional leading space, the GPT-2 regex, then the byte-level alphabet.
struct ByteLevelPreTokenizer: PreTokenizer {
    let addPrefixSpace: Bool
    let useRegex: Bool

    func preTokenize(_ text: inout PreTokenized) {
        text.materializeByteLevel()
        if addPrefixSpace {
            for k in text.pieces.indices where text.pieces[k].bytes.first != 0x20 {
                text.pieces[k].bytes = ArraySlice([0x20] + text.pieces[k].bytes)
            }
        }
        if useRegex { text.split { SplitBehavior.isolated.apply(SplitPattern.gpt2.segments($0)) } }
        text.byteLevel = true
    }
}

/// Cuts on a pattern, keeping the delimiters as `behavior` says; `invert` swaps matches and the rest.
struct Split: PreTokenizer {
    let pattern: SplitPattern
    let behavior: SplitBehavior
    let invert: Bool

    func preTokenize(_ text: inout PreTokenized) {
        text.materializeByteLevel()
        text.split { bytes in
            var segments = pattern.segments(bytes)
            if invert { for k in segments.indices { segments[k].isMatch.toggle() } }
            return behavior.apply(segments)
        }
    }
}

/// Cuts text into runs of scalars that do or do not satisfy `matches`, each matching scalar alone.
func scalarSegments(_ bytes: UnsafeBufferPointer<UInt8>, _ matches: (Unicode.Scalar) -> Bool) -> [(range: Range<Int>, isMatch: Bool)] {
    var out: [(range: Range<Int>, isMatch: Bool)] = []
    var i = 0, runStart = 0
    for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
        let next = i + UTF8.width(scalar)
        if matches(scalar) {
            if runStart < i { out.append((runStart..<i, false)) }
            out.append((i..<next, true))
            runStart = next
        }
        i = next
    }
    if runStart < i { out.append((runStart..<i, false)) }
    return out
}

/// Isolates numbers (Unicode `N*`, as Rust's `char::is_numeric`): each digit alone or runs of them.
struct Digits: PreTokenizer {
    let individual: Bool

    func preTokenize(_ text: inout PreTokenized) {
        text.materializeByteLevel()
        let behavior: SplitBehavior = individual ? .isolated : .contiguous
        text.split { behavior.apply(scalarSegments($0) { classify($0) == .number }) }
    }
}

/// `\w+|[^\w\s]+`, whitespace dropped; `\w` as Rust's regex has it (alphabetic, marks, Nd, Pc, joiners).
struct Whitespace: PreTokenizer {
    enum Kind { case word, punctuation, space }

    static func kind(_ s: Unicode.Scalar) -> Kind {
        let p = s.properties
        if p.isAlphabetic || p.isJoinControl { return .word }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return .word
        default: return p.isWhitespace ? .space : .punctuation
        }
    }

    func preTokenize(_ text: inout PreTokenized) {
        text.materializeByteLevel()
        text.split { bytes in
            var out: [Range<Int>] = []
            var i = 0, start = 0
            var current = Kind.space
            for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
                let kind = Whitespace.kind(scalar)
                if kind != current {
                    if current != .space, start < i { out.append(start..<i) }
                    start = i
                    current = kind
                }
                i += UTF8.width(scalar)
            }
            if current != .space, start < i { out.append(start..<i) }
            return out
        }
    }
}

/// Cuts on whitespace and drops it.
struct WhitespaceSplit: PreTokenizer {
    func preTokenize(_ text: inout PreTokenized) {
        text.materializeByteLevel()
        text.split { bytes in
            SplitBehavior.removed.apply(scalarSegments(bytes) { $0.properties.isWhitespace })
        }
    }
}

/// Pre-tokenizers applied in order, each to every piece the previous one made.
struct PreTokenizerSequence: PreTokenizer {
    let stages: [any PreTokenizer]
    func preTokenize(_ text: inout PreTokenized) { for stage in stages { stage.preTokenize(&text) } }
}

/// Punctuation as BERT defines it: ASCII punctuation (symbols included) or a Unicode P* category.
func isBertPunctuation(_ s: Unicode.Scalar) -> Bool {
    if s.value < 128 { return (0x21...0x2F).contains(s.value) || (0x3A...0x40).contains(s.value) || (0x5B...0x60).contains(s.value) || (0x7B...0x7E).contains(s.value) }
    return UnicodeProperty.punctuation.contains(s.properties.generalCategory)
}

/// BERT's pre-tokenizer: cut on whitespace (dropped), then isolate each punctuation character.
struct BertPreTokenizer: PreTokenizer {
    func preTokenize(_ text: inout PreTokenized) {
        text.materializeByteLevel()
        text.split { SplitBehavior.removed.apply(scalarSegments($0) { $0.properties.isWhitespace }) }
        text.split { SplitBehavior.isolated.apply(scalarSegments($0, isBertPunctuation)) }
    }
}

/// Each punctuation character split off as `behavior` says.
struct Punctuation: PreTokenizer {
    let behavior: SplitBehavior
    func preTokenize(_ text: inout PreTokenized) {
        text.materializeByteLevel()
        text.split { behavior.apply(scalarSegments($0, isBertPunctuation)) }
    }
}

/// Cuts on one character, which is dropped.
struct CharDelimiterSplit: PreTokenizer {
    let delimiter: Unicode.Scalar
    func preTokenize(_ text: inout PreTokenized) {
        text.materializeByteLevel()
        text.split { SplitBehavior.removed.apply(scalarSegments($0) { $0 == delimiter }) }
    }
}
