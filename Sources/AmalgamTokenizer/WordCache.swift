import AmalgamCore
import Foundation

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
