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
