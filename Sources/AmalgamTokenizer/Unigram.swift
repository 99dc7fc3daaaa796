/// SentencePiece's unigram model (`model.type == "Unigram"`): each piece is cut into the vocabulary
/// entries whose scores (log probabilities) sum highest, by Viterbi over the byte positions. A scalar no
/// entry covers is the unknown token, scored the lowest score minus 10; adjacent unknowns fuse into one,
/// which `byte_fallback` then writes as `<0xNN>` tokens.
struct Unigram: TokenModel {
    let vocab: [ByteKey: Int32]
    let tokens: [String?]
    let scores: [Double]
    let unk: Int32?
    let byteFallback: Bool
    let byteFallbackIds: [Int32]
    /// The longest entry in bytes: how far the prefix search looks.
    let maxTokenBytes: Int
    let unknownScore: Double
    var vocabularyCount: Int { scores.count }

    static let unknownPenalty = 10.0

    init(_ node: JSONNode) throws(TokenizerError) {
        let vocabNode = try node.required("vocab")
        guard let entries = vocabNode.value.arrayValue else { throw vocabNode.invalid("expected an array of [token, score]") }
        var vocab: [ByteKey: Int32] = [:]
        var tokens: [String?] = []
        var scores: [Double] = []
        var longest = 0
        for (id, entry) in entries.enumerated() {
            guard let pair = entry.arrayValue, pair.count == 2, let token = pair[0].stringValue, let score = pair[1].doubleValue else {
                throw JSONNode(value: entry, file: node.file, path: "\(vocabNode.path)[\(id)]").invalid("expected [token, score]")
            }
            vocab[ByteKey(bytes: ArraySlice(token.utf8))] = Int32(id)
            tokens.append(token)
            scores.append(score)
            longest = max(longest, token.utf8.count)
        }
        if let unkNode = node.optional("unk_id") {
            guard let id = unkNode.value.intValue, id >= 0, id < scores.count else {
                throw unkNode.invalid("the unknown token's id is not an index of the vocabulary")
            }
            unk = Int32(id)
        } else {
            unk = nil
        }
        if let alpha = node.optional("alpha"), let value = alpha.value.doubleValue, value != 0 {
            throw .unsupportedOption(path: node.file, key: alpha.path, reason: "unigram sampling is random; Amalgam encodes deterministically, set it to null")
        }
        self.vocab = vocab
        self.tokens = tokens
        self.scores = scores
        maxTokenBytes = longest
        unknownScore = (scores.min() ?? 0) - Unigram.unknownPenalty
        byteFallback = try node.bool("byte_fallback", default: false)
        byteFallbackIds = (0..<256).map { b in vocab[ByteKey(bytes: ArraySlice(hexByteToken(UInt8(b)).utf8))] ?? -1 }
    }

    func id(of token: String) -> Int? { vocab[ByteKey(bytes: ArraySlice(token.utf8))].map(Int.init) }

    func tokenize(_ piece: ArraySlice<UInt8>, byteLevel: Bool, into out: inout [Int]) {
        let bytes = byteLevel ? ByteLevelAlphabet.map(piece) : Array(piece)
        guard !bytes.isEmpty else { return }
        let n = bytes.count
        // best[e]: the best path ending at byte e: its score, where its last token starts, which token.
        var bestScore = [Double](repeating: 0, count: n + 1)
        var bestStart = [Int](repeating: -1, count: n + 1)
        var bestId = [Int32](repeating: 0, count: n + 1)
        var start = 0
        while start < n {
            let here = bestScore[start]
            let charLength = utf8Length(bytes[start])
            var hasSingle = false
            for length in stride(from: 1, through: min(maxTokenBytes, n - start), by: 1) {
                guard let id = vocab[ByteKey(bytes: bytes[start..<(start + length)])] else { continue }
                let end = start + length
                let candidate = scores[Int(id)] + here
                if bestStart[end] < 0 || candidate > bestScore[end] {
                    bestScore[end] = candidate
                    bestStart[end] = start
                    bestId[end] = id
                }
                if length == charLength { hasSingle = true }
            }
            if !hasSingle {
                let end = min(n, start + charLength)
                let candidate = unknownScore + here
                if bestStart[end] < 0 || candidate > bestScore[end] {
                    bestScore[end] = candidate
                    bestStart[end] = start
                    bestId[end] = unk ?? -1
                }
            }
            start += charLength
        }
        // Back from the end; adjacent unknown tokens fuse into one string, as tokenizers does.
        var pieces: [Range<Int>] = []
        var end = n
        var fusedStart: Int? = nil, fusedEnd = 0
        while end > 0 {
            let s = bestStart[end]
            if bestId[end] == (unk ?? -1) {
                if fusedStart == nil { fusedEnd = end }
                fusedStart = s
            } else {
                if let f = fusedStart { pieces.append(f..<fusedEnd); fusedStart = nil }
                pieces.append(s..<end)
            }
            end = s
        }
        if let f = fusedStart { pieces.append(f..<fusedEnd) }
        for range in pieces.reversed() {
            let text = bytes[range]
            if let id = vocab[ByteKey(bytes: text)] { out.append(Int(id)); continue }
            if byteFallback, text.allSatisfy({ byteFallbackIds[Int($0)] >= 0 }) {
                for b in text { out.append(Int(byteFallbackIds[Int(b)])) }
                continue
            }
            // Without an unknown id tokenizers fails; Amalgam drops the text.
            if let unk { out.append(Int(unk)) }
        }
    }
}

/// The UTF-8 length of a scalar from its first byte.
func utf8Length(_ b0: UInt8) -> Int { b0 < 0x80 ? 1 : b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : 2 }

/// `<0xNN>`: the token of one byte in byte-fallback vocabularies.
func hexByteToken(_ b: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return "<0x" + String(digits[Int(b >> 4)]) + String(digits[Int(b & 15)]) + ">"
}
