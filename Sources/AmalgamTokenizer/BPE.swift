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

/// Merge rank and result by pair of ids, in an open-addressing table: this lookup is the hot loop.
struct MergeTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]  // rank << 32 | new id
    private let mask: Int

    init(_ merges: [JSONNode], vocab: [ByteKey: Int32]) throws(TokenizerError) {
        var capacity = 16
        while capacity < merges.count * 2 { capacity <<= 1 }
        keys = Array(repeating: .max, count: capacity)
        values = Array(repeating: 0, count: capacity)
        mask = capacity - 1
        for (rank, merge) in merges.enumerated() {
            let parts: [String]
            if let s = merge.value.stringValue {
                parts = s.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else if let a = merge.value.arrayValue, a.count == 2, let x = a[0].stringValue, let y = a[1].stringValue {
                parts = [x, y]
            } else {
                throw merge.invalid("expected \"a b\" or [\"a\", \"b\"]")
            }
            guard parts.count == 2 else { throw merge.invalid("expected two tokens separated by one space") }
            let id = { (s: String) in vocab[ByteKey(bytes: ArraySlice(s.utf8))] }
            guard let a = id(parts[0]), let b = id(parts[1]), let merged = id(parts[0] + parts[1]) else {
                throw merge.invalid("\"\(parts[0])\" + \"\(parts[1])\": a token of this merge is not in the vocabulary")
            }
            insert(pair: UInt64(UInt32(a)) << 32 | UInt64(UInt32(b)), rank: UInt32(rank), id: UInt32(merged))
        }
    }

    @inline(__always) private func slot(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask }

    private mutating func insert(pair key: UInt64, rank: UInt32, id: UInt32) {
        var s = slot(key)
        while keys[s] != .max && keys[s] != key { s = (s + 1) & mask }
        keys[s] = key  // a later duplicate replaces an earlier one, as in tokenizers' HashMap
        values[s] = UInt64(rank) << 32 | UInt64(id)
    }

    /// The rank << 32 | new id of merging `a` and `b`, or UInt64.max.
    @inline(__always) func lookup(_ a: Int32, _ b: Int32) -> UInt64 {
        let key = UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
        var s = slot(key)
        while true {
            let k = keys[s]
            if k == key { return values[s] }
            if k == .max { return .max }
            s = (s + 1) & mask
        }
    }

    /// Merges the lowest-ranked adjacent pair (the leftmost among equals) until none is left.
    func mergeAll(_ symbols: inout [Int32]) {
        guard symbols.count > 1 else { return }
        var pairs = (0..<(symbols.count - 1)).map { lookup(symbols[$0], symbols[$0 + 1]) }
        while true {
            var best = UInt64.max, at = -1
            for k in pairs.indices where pairs[k] < best { best = pairs[k]; at = k }
            guard at >= 0 else { return }
            symbols[at] = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
            symbols.remove(at: at + 1)
            pairs.remove(at: at)
            if at < pairs.count { pairs[at] = lookup(symbols[at], symbols[at + 1]) }
            if at > 0 { pairs[at - 1] = lookup(symbols[at - 1], symbols[at]) }
        }
    }
}

/// Encoded words by their bytes, shared by threads; like tokenizers' cache it stops growing when full.
/// An open-addressing table over fixed, manually allocated buffers: looking a word up is the most
/// frequent thing encoding does, and Swift's `Dictionary` (SipHash, array keys, retain/release) and even
/// class-held arrays (exclusivity checks) made it a fifth of the time.
final class WordCache: @unchecked Sendable {
    static let maxWordBytes = 256
    private static let slotBits = 18
    private static let maxEntries = 1 << 17
    private static let maxKeyBytes = 1 << 22
    private static let maxIds = 1 << 20

    private let slots: UnsafeMutablePointer<Int32>  // entry index, or -1 when empty
    private let hashes: UnsafeMutablePointer<UInt64>
    private let keyStarts: UnsafeMutablePointer<Int32>
    private let keyLengths: UnsafeMutablePointer<Int32>
    private let idStarts: UnsafeMutablePointer<Int32>
    private let idCounts: UnsafeMutablePointer<Int32>
    private let keyBytes: UnsafeMutablePointer<UInt8>
    private let ids: UnsafeMutablePointer<Int32>
    private var entries = 0, keyBytesUsed = 0, idsUsed = 0
    private let lock = Lock()

    init() {
        slots = .allocate(capacity: 1 << WordCache.slotBits)
        slots.initialize(repeating: -1, count: 1 << WordCache.slotBits)
        hashes = .allocate(capacity: WordCache.maxEntries)
        keyStarts = .allocate(capacity: WordCache.maxEntries)
        keyLengths = .allocate(capacity: WordCache.maxEntries)
        idStarts = .allocate(capacity: WordCache.maxEntries)
        idCounts = .allocate(capacity: WordCache.maxEntries)
        keyBytes = .allocate(capacity: WordCache.maxKeyBytes)
        ids = .allocate(capacity: WordCache.maxIds)
    }

    deinit {
        for p in [slots, keyStarts, keyLengths, idStarts, idCounts, ids] { p.deallocate() }
        hashes.deallocate()
        keyBytes.deallocate()
    }

    @inline(__always) private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    @inline(__always) private static func firstSlot(_ h: UInt64) -> Int {
        Int(truncatingIfNeeded: (h &* 0x9E37_79B9_7F4A_7C15) >> UInt64(64 - slotBits))
    }

    /// The entry holding `word`, or the empty slot where it would go (as `-1 - slot`).
    @inline(__always) private func find(_ word: UnsafeBufferPointer<UInt8>, _ h: UInt64) -> Int {
        let mask = (1 << WordCache.slotBits) - 1
        var s = WordCache.firstSlot(h)
        while true {
            let e = Int(slots[s])
            if e < 0 { return -1 - s }
            if hashes[e] == h, Int(keyLengths[e]) == word.count,
               word.count == 0 || memcmp(keyBytes + Int(keyStarts[e]), word.baseAddress!, word.count) == 0 {
                return e
            }
            s = (s + 1) & mask
        }
    }

    /// Appends the cached ids of `word` and returns true, or returns false if it is not cached.
    func get(_ word: ArraySlice<UInt8>, into out: inout [Int]) -> Bool {
        word.withUnsafeBufferPointer { w in
            let h = WordCache.hash(w)
            return lock.withLock {
                let e = find(w, h)
                guard e >= 0 else { return false }
                let start = Int(idStarts[e])
                for k in start..<(start + Int(idCounts[e])) { out.append(Int(ids[k])) }
                return true
            }
        }
    }

    func put(_ word: ArraySlice<UInt8>, _ wordIds: [Int32]) {
        word.withUnsafeBufferPointer { w in
            let h = WordCache.hash(w)
            lock.withLock {
                guard entries < WordCache.maxEntries, keyBytesUsed + w.count <= WordCache.maxKeyBytes,
                      idsUsed + wordIds.count <= WordCache.maxIds else { return }
                let found = find(w, h)
                guard found < 0 else { return }
                slots[-1 - found] = Int32(entries)
                hashes[entries] = h
                keyStarts[entries] = Int32(keyBytesUsed)
                keyLengths[entries] = Int32(w.count)
                if w.count > 0 { (keyBytes + keyBytesUsed).update(from: w.baseAddress!, count: w.count) }
                keyBytesUsed += w.count
                idStarts[entries] = Int32(idsUsed)
                idCounts[entries] = Int32(wordIds.count)
                for (k, id) in wordIds.enumerated() { ids[idsUsed + k] = id }
                idsUsed += wordIds.count
                entries += 1
            }
        }
    }
}
