import AmalgamCore
import Foundation

/// UTF-8 bytes as a dictionary key. Strings would compare canonically equivalent text as equal ("é" and
/// "e\u{301}"), which would merge tokens a vocabulary keeps apart.
struct ByteKey: Hashable, Sendable {
    var bytes: ArraySlice<UInt8>

    func hash(into hasher: inout Hasher) { bytes.withUnsafeBytes { hasher.combine(bytes: $0) } }

    static func == (a: ByteKey, b: ByteKey) -> Bool {
        a.bytes.count == b.bytes.count && a.bytes.withUnsafeBytes { x in
            b.bytes.withUnsafeBytes { y in x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 }
        }
    }
}

/// The byte-pair-encoding model (`model.type == "BPE"`): a piece starts as one symbol per character (or
/// per byte in byte-level vocabularies) and the adjacent pair with the lowest merge rank is merged until
/// no pair has a rank. Words already seen come from a cache.
struct BPE: Sendable {
    /// Token bytes → id.
    let vocab: [ByteKey: Int32]
    /// Id → token text, for decoding (nil where the vocabulary has a hole).
    let tokens: [String?]
    /// The tokens of one Unicode scalar, by scalar value, for the initial symbols.
    let scalarIds: [UInt32: Int32]
    /// The id of each byte's byte-level character (-1 when missing).
    let byteLevelIds: [Int32]
    /// The id of each `<0xNN>` token (-1 when missing).
    let byteFallbackIds: [Int32]
    let merges: MergeTable
    let unk: Int32?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    let cache = WordCache()

    init(_ node: JSONNode) throws(TokenizerError) {
        if let dropout = node.optional("dropout"), dropout.value.doubleValue != 0 {
            throw .unsupportedOption(path: node.file, key: dropout.path, reason: "BPE dropout is random; Amalgam encodes deterministically, set it to null")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] where try !node.string(key, default: "").isEmpty {
            throw .unsupportedOption(path: node.file, key: node.key(key), reason: "subword prefixes and suffixes are not supported")
        }
        let vocabNode = try node.required("vocab")
        guard let entries = vocabNode.value.objectValue else { throw vocabNode.invalid("expected an object of token: id") }
        var vocab: [ByteKey: Int32] = [:]
        vocab.reserveCapacity(entries.count)
        var tokens: [String?] = []
        var scalarIds: [UInt32: Int32] = [:]
        for (token, idValue) in entries {
            guard let id = idValue.intValue, id >= 0, id < Int(Int32.max) else {
                throw vocabNode.invalid("the id of \"\(token)\" is not a non-negative integer")
            }
            vocab[ByteKey(bytes: ArraySlice(token.utf8))] = Int32(id)
            if id >= tokens.count { tokens += Array(repeating: nil, count: id + 1 - tokens.count) }
            tokens[id] = token
            let scalars = token.unicodeScalars
            if scalars.count == 1 { scalarIds[scalars.first!.value] = Int32(id) }
        }
        self.vocab = vocab
        self.tokens = tokens
        self.scalarIds = scalarIds
        byteLevelIds = ByteLevelAlphabet.scalars.map { scalarIds[$0.value] ?? -1 }
        byteFallbackIds = (0..<256).map { b in
            vocab[ByteKey(bytes: ArraySlice(String(format: "<0x%02X>", b).utf8))] ?? -1
        }
        if let unkName = node.optional("unk_token") {
            guard let name = unkName.value.stringValue else { throw unkName.invalid("expected a string") }
            guard let id = vocab[ByteKey(bytes: ArraySlice(name.utf8))] else {
                throw unkName.invalid("the unknown token \"\(name)\" is not in the vocabulary")
            }
            unk = id
        } else {
            unk = nil
        }
        fuseUnk = try node.bool("fuse_unk", default: false)
        byteFallback = try node.bool("byte_fallback", default: false)
        ignoreMerges = try node.bool("ignore_merges", default: false)
        merges = try MergeTable(node.array("merges"), vocab: vocab)
    }

    /// Appends the ids of one piece; `byteLevel` says its bytes still have to go through the alphabet.
    func tokenize(_ piece: ArraySlice<UInt8>, byteLevel: Bool, into out: inout [Int]) {
        guard !piece.isEmpty else { return }
        if ignoreMerges {
            let key = ByteKey(bytes: byteLevel ? ArraySlice(ByteLevelAlphabet.map(piece)) : piece)
            if let id = vocab[key] { out.append(Int(id)); return }
        }
        let cacheable = piece.count <= WordCache.maxWordBytes
        if cacheable, cache.get(piece, into: &out) { return }
        var symbols = byteLevel ? byteLevelSymbols(piece) : scalarSymbols(piece)
        merges.mergeAll(&symbols)
        if cacheable { cache.put(piece, symbols) }
        for id in symbols { out.append(Int(id)) }
    }

    private func byteLevelSymbols(_ piece: ArraySlice<UInt8>) -> [Int32] {
        var symbols: [Int32] = []
        symbols.reserveCapacity(piece.count)
        var unknown = UnknownRun()
        for b in piece {
            let id = byteLevelIds[Int(b)]
            if id >= 0 { unknown.flush(into: &symbols); symbols.append(id) } else { unknown.add(self, into: &symbols) }
        }
        unknown.flush(into: &symbols)
        return symbols
    }

    private func scalarSymbols(_ piece: ArraySlice<UInt8>) -> [Int32] {
        var symbols: [Int32] = []
        symbols.reserveCapacity(piece.count)
        var unknown = UnknownRun()
        var i = piece.startIndex
        while i < piece.endIndex {
            let b0 = piece[i]
            let length = b0 < 0x80 ? 1 : b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : 2
            var value = UInt32(b0) & (length == 1 ? 0x7F : length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
            for k in 1..<max(length, 1) { value = value << 6 | (UInt32(piece[i + k]) & 0x3F) }
            if let id = scalarIds[value] {
                unknown.flush(into: &symbols)
                symbols.append(id)
            } else if byteFallback, piece[i..<(i + length)].allSatisfy({ byteFallbackIds[Int($0)] >= 0 }) {
                // As tokenizers does, a pending unknown token is not written before the bytes.
                for k in i..<(i + length) { symbols.append(byteFallbackIds[Int(piece[k])]) }
            } else {
                unknown.add(self, into: &symbols)
            }
            i += length
        }
        unknown.flush(into: &symbols)
        return symbols
    }

    /// The unknown token of the characters not in the vocabulary, fused into one when `fuse_unk`.
    private struct UnknownRun {
        var pending: Int32?

        mutating func add(_ model: BPE, into symbols: inout [Int32]) {
            guard let unk = model.unk else { return }  // without an unknown token the character is dropped
            if pending != nil && !model.fuseUnk { symbols.append(unk) }
            pending = unk
        }

        mutating func flush(into symbols: inout [Int32]) {
            if let p = pending { symbols.append(p); pending = nil }
        }
    }
}
