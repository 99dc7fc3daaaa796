/// The third pipeline stage: turns each pre-tokenized piece into ids (`model`).
protocol TokenModel: Sendable {
    /// Id → token text, for decoding (nil where the vocabulary has a hole).
    var tokens: [String?] { get }
    /// The number of vocabulary entries (added tokens not in it are numbered after them).
    var vocabularyCount: Int { get }
    /// The id of a token of the vocabulary.
    func id(of token: String) -> Int?
    /// Appends the ids of one piece; `byteLevel` says its bytes still have to go through the alphabet.
    func tokenize(_ piece: ArraySlice<UInt8>, byteLevel: Bool, into out: inout [Int])
}

/// Builds the model named by the `model` node's `type` (BPE when absent, as tokenizers reads old files).
func makeModel(_ node: JSONNode) throws(TokenizerError) -> any TokenModel {
    let type = try node.string("type", default: "BPE")
    switch type {
    case "BPE": return try BPE(node)
    case "Unigram": return try Unigram(node)
    case "WordPiece": return try WordPiece(node)
    case "WordLevel": return try WordLevel(node)
    default: throw node.unsupported(type, supported: ["BPE", "Unigram", "WordPiece", "WordLevel"])
    }
}

extension BPE: TokenModel {
    var vocabularyCount: Int { vocab.count }
    func id(of token: String) -> Int? { vocab[ByteKey(bytes: ArraySlice(token.utf8))].map(Int.init) }
}

/// A `{token: id}` vocabulary as a byte-keyed table and an id-ordered list.
private func readVocabulary(_ node: JSONNode) throws(TokenizerError) -> (ids: [ByteKey: Int32], tokens: [String?]) {
    let vocabNode = try node.required("vocab")
    guard let entries = vocabNode.value.objectValue else { throw vocabNode.invalid("expected an object of token: id") }
    var ids: [ByteKey: Int32] = [:]
    ids.reserveCapacity(entries.count)
    var tokens: [String?] = []
    for (token, idValue) in entries {
        guard let id = idValue.intValue, id >= 0, id < Int(Int32.max) else {
            throw vocabNode.invalid("the id of \"\(token)\" is not a non-negative integer")
        }
        ids[ByteKey(bytes: ArraySlice(token.utf8))] = Int32(id)
        if id >= tokens.count { tokens += Array(repeating: nil, count: id + 1 - tokens.count) }
        tokens[id] = token
    }
    return (ids, tokens)
}

/// BERT's WordPiece: each piece is cut greedily into the longest vocabulary entries, continuations
/// written with `continuing_subword_prefix` ("##"); a piece that cannot be cut, or is longer than
/// `max_input_chars_per_word` scalars, is the unknown token.
struct WordPiece: TokenModel {
    let vocab: [ByteKey: Int32]
    let tokens: [String?]
    let prefix: [UInt8]
    let unk: Int32?
    let maxChars: Int
    var vocabularyCount: Int { vocab.count }

    init(_ node: JSONNode) throws(TokenizerError) {
        (vocab, tokens) = try readVocabulary(node)
        prefix = Array(try node.string("continuing_subword_prefix", default: "##").utf8)
        unk = vocab[ByteKey(bytes: ArraySlice(try node.string("unk_token", default: "[UNK]").utf8))]
        maxChars = try node.int("max_input_chars_per_word", default: 100)
    }

    func id(of token: String) -> Int? { vocab[ByteKey(bytes: ArraySlice(token.utf8))].map(Int.init) }

    func tokenize(_ piece: ArraySlice<UInt8>, byteLevel: Bool, into out: inout [Int]) {
        let bytes = byteLevel ? ByteLevelAlphabet.map(piece) : Array(piece)
        guard !bytes.isEmpty else { return }
        // Without an unknown token in the vocabulary tokenizers fails; Amalgam drops the piece.
        let unknown = unk.map { [Int($0)] } ?? []
        let boundaries = scalarBoundaries(bytes)
        guard boundaries.count - 1 <= maxChars else { out += unknown; return }
        var found: [Int] = []
        var start = 0  // index into boundaries
        while start < boundaries.count - 1 {
            var end = boundaries.count - 1
            var hit: Int32?
            while end > start {
                let word = bytes[boundaries[start]..<boundaries[end]]
                let key = start > 0 ? ArraySlice(prefix + word) : word
                if let id = vocab[ByteKey(bytes: key)] { hit = id; break }
                end -= 1
            }
            guard let hit else { out += unknown; return }
            found.append(Int(hit))
            start = end
        }
        out += found
    }
}

/// The byte offsets where the scalars of valid UTF-8 start, and its length last.
func scalarBoundaries(_ bytes: [UInt8]) -> [Int] {
    var out: [Int] = []
    out.reserveCapacity(bytes.count + 1)
    for (i, b) in bytes.enumerated() where b & 0xC0 != 0x80 { out.append(i) }
    out.append(bytes.count)
    return out
}

/// A word-level vocabulary: each piece is one token, or the unknown token.
struct WordLevel: TokenModel {
    let vocab: [ByteKey: Int32]
    let tokens: [String?]
    let unk: Int32?
    var vocabularyCount: Int { vocab.count }

    init(_ node: JSONNode) throws(TokenizerError) {
        (vocab, tokens) = try readVocabulary(node)
        unk = vocab[ByteKey(bytes: ArraySlice(try node.string("unk_token", default: "<unk>").utf8))]
    }

    func id(of token: String) -> Int? { vocab[ByteKey(bytes: ArraySlice(token.utf8))].map(Int.init) }

    func tokenize(_ piece: ArraySlice<UInt8>, byteLevel: Bool, into out: inout [Int]) {
        let key = byteLevel ? ArraySlice(ByteLevelAlphabet.map(piece)) : piece
        guard !key.isEmpty else { return }
        if let id = vocab[ByteKey(bytes: key)] ?? unk { out.append(Int(id)) }
    }
}
