/// `Selection`'s cuts (the first `count` elements of a stable sort of the magnitude keys, ascending or
/// descending) found over chunks, so a tensor never needs a full-size key array:
/// 1. a histogram of the keys' high 16 bits locates the bucket holding each cut;
/// 2. a histogram of the low 16 bits inside that bucket gives the exact threshold and how many keys
///    equal to it are kept (`Selection.cut`'s two radix passes, over chunks);
/// 3. only when a cut keeps some but not all of those equal keys, each chunk counts its equal keys, so
///    that a chunk knows how many earlier chunks kept (the lowest indices win, as in `Selection`).
/// The kept set is then exactly the one `Selection.cut` and its in-order scan give on the whole vector.
final class ChunkedCuts: @unchecked Sendable {
    /// One cut: select `count` keys, largest (`descending`) or smallest first.
    struct Request {
        let count: Int
        let descending: Bool
    }

    private static let bins = 1 << 16
    let requests: [Request]
    private let n: Int
    private(set) var cuts: [Selection.Cut]
    /// Requests still needing histograms (neither empty nor everything).
    private var open: [Int]
    private var bucket: [UInt32]
    private var below: [Int]
    /// Requests keeping only some of the keys equal to their threshold.
    private(set) var partial: [Bool]
    /// Whether each cut is known.
    private var resolved: [Bool]
    private var workers = 0
    private var chunks = 0
    /// Per worker: one histogram (high bits), then one per request (low bits).
    private var histograms: UnsafeMutablePointer<UInt64>?
    /// Per request and chunk: keys equal to the threshold, then kept ties before the chunk.
    private var ties: UnsafeMutablePointer<Int>?
    /// Per worker and request: kept ties so far in the chunk being scanned.
    private var scanned: UnsafeMutablePointer<Int>?

    init(_ requests: [Request], count n: Int) {
        self.requests = requests
        self.n = n
        cuts = requests.map { r in
            r.count <= 0 ? Selection.Cut(descending: r.descending, empty: true)
                : r.count >= n ? Selection.Cut(descending: r.descending, all: true) : Selection.Cut(descending: r.descending)
        }
        open = requests.indices.filter { requests[$0].count > 0 && requests[$0].count < n }
        needsHistograms = !open.isEmpty
        bucket = Array(repeating: 0, count: requests.count)
        below = Array(repeating: 0, count: requests.count)
        partial = Array(repeating: false, count: requests.count)
        resolved = Array(repeating: false, count: requests.count)
    }

    deinit {
        histograms?.deallocate()
        ties?.deallocate()
        scanned?.deallocate()
    }

    /// Whether any cut needs the histogram passes.
    let needsHistograms: Bool
    /// Whether any cut needs the per-chunk tie counts.
    var needsTieCounts: Bool { partial.contains(true) }

    func prepare(workers: Int, chunks: Int) {
        self.workers = workers
        self.chunks = chunks
        scanned = .allocate(capacity: max(1, workers * requests.count))
        scanned!.initialize(repeating: 0, count: max(1, workers * requests.count))
    }

    private func allocateHistograms(_ perWorker: Int) {
        histograms?.deallocate()
        histograms = .allocate(capacity: workers * perWorker * Self.bins)
        histograms!.initialize(repeating: 0, count: workers * perWorker * Self.bins)
    }

    // MARK: Pass 1: high 16 bits

    /// Two histograms per worker, filled in turn: runs of equal keys (the exact zeros of untouched
    /// weights) then do not wait on one counter.
    private static let ways = 2

    func beginHigh() { allocateHistograms(Self.ways) }

    /// Each bin holds the count (low 32 bits) and the OR of the keys' low 16 bits (high 32 bits): a
    /// bin whose OR is zero holds one key only, `bin << 16`. Differences of bf16 values mostly have
    /// at most 8 significant bits, so the cut's bucket usually needs no second pass.
    @inline(__always)
    func gatherHigh(_ keys: UnsafePointer<UInt32>, _ m: Int, worker: Int) {
        let h = histograms! + worker * Self.ways * Self.bins
        let h1 = h + Self.bins
        @inline(__always) func add(_ h: UnsafeMutablePointer<UInt64>, _ k: UInt32) {
            let b = Int(truncatingIfNeeded: k &>> 16)
            h[b] = (h[b] &+ 1) | UInt64(k & 0xFFFF) &<< 32
        }
        var j = 0
        while j + 2 <= m {
            add(h, keys[j])
            add(h1, keys[j + 1])
            j += 2
        }
        if j < m { add(h, keys[j]) }
    }

    func endHigh() {
        var totals = [Int](repeating: 0, count: Self.bins)
        var lowBits = [UInt64](repeating: 0, count: Self.bins)
        for way in 0..<workers * Self.ways {
            let h = histograms! + way * Self.bins
            for b in 0..<Self.bins {
                totals[b] += Int(h[b] & 0xFFFF_FFFF)
                lowBits[b] |= h[b] &>> 32
            }
        }
        for r in open {
            let position = requests[r].descending ? n - requests[r].count : requests[r].count - 1
            var b = 0, count = 0
            while count + totals[b] <= position { count += totals[b]; b += 1 }
            bucket[r] = UInt32(b)
            below[r] = count
            if lowBits[b] == 0 { resolve(r, digit: 0, below: count, equal: totals[b]) }
        }
        open.removeAll { resolved[$0] }
        if open.isEmpty { finishCuts() } else { allocateHistograms(requests.count) }
    }


    /// Records request `r`'s cut once its threshold `bucket << 16 | digit` is known, with `below` keys
    /// under it and `equal` keys equal to it.
    private func resolve(_ r: Int, digit: Int, below count: Int, equal: Int) {
        let threshold = bucket[r] << 16 | UInt32(digit)
        let selectedBefore = requests[r].descending ? n - count - equal : count
        let kept = requests[r].count - selectedBefore
        cuts[r] = Selection.Cut(threshold: threshold, tiesKept: kept, descending: requests[r].descending)
        // Ties at zero are not partial: a task vector's zeros add nothing (and never agree in a sign
        // election) whether kept or dropped, so no chunk needs to know how many came before.
        partial[r] = kept > 0 && kept < equal && threshold != 0
        resolved[r] = true
    }

    /// Whether the low-bits pass is needed.
    var needsLowPass: Bool { !open.isEmpty }

    // MARK: Pass 2: low 16 bits inside each unresolved cut's bucket

    @inline(__always)
    func gatherLow(_ keys: UnsafePointer<UInt32>, _ m: Int, worker: Int) {
        let perWorker = requests.count * Self.bins
        for r in open {
            let h = UnsafeMutableRawPointer(histograms! + worker * perWorker).assumingMemoryBound(to: UInt32.self) + r * Self.bins
            let top = bucket[r]
            let tops = SIMD8<UInt32>(repeating: top)
            var j = 0
            // Few keys fall in the bucket: test eight at a time, count one by one only on a hit.
            while j + 8 <= m {
                let v = UnsafeRawPointer(keys + j).loadUnaligned(as: SIMD8<UInt32>.self)
                let hit = v &>> 16 .== tops
                if any(hit) { for l in 0..<8 where hit[l] { h[Int(truncatingIfNeeded: v[l] & 0xFFFF)] &+= 1 } }
                j += 8
            }
            while j < m {
                if keys[j] &>> 16 == top { h[Int(truncatingIfNeeded: keys[j] & 0xFFFF)] &+= 1 }
                j += 1
            }
        }
    }

    func endLow() {
        let perWorker = requests.count * Self.bins
        for r in open {
            var low = [Int](repeating: 0, count: Self.bins)
            for w in 0..<workers {
                let h = UnsafeMutableRawPointer(histograms! + w * perWorker).assumingMemoryBound(to: UInt32.self) + r * Self.bins
                for b in 0..<Self.bins { low[b] += Int(h[b]) }
            }
            let position = requests[r].descending ? n - requests[r].count : requests[r].count - 1
            var count = below[r], digit = 0
            while count + low[digit] <= position { count += low[digit]; digit += 1 }
            resolve(r, digit: digit, below: count, equal: low[digit])
        }
        open.removeAll()
        finishCuts()
    }

    private func finishCuts() {
        histograms?.deallocate()
        histograms = nil
        if needsTieCounts {
            ties = .allocate(capacity: requests.count * chunks)
            ties!.initialize(repeating: 0, count: requests.count * chunks)
        }
    }

    // MARK: Pass 3 (only for partial ties): equal keys per chunk

    @inline(__always)
    func gatherTies(_ keys: UnsafePointer<UInt32>, _ m: Int, chunk: Int) {
        for r in requests.indices where partial[r] {
            ties![r * chunks + chunk] += Self.countEqual(keys, m, cuts[r].threshold)
        }
    }

    /// Whether the tie counts still need `chunk`: chunks after the one where every partial cut's kept
    /// ties run out need no count (their scans keep no ties). `finished` chunks, counted in order.
    func needsTieCount(_ chunk: Int, finished: Int) -> Bool {
        while countedPrefix < finished && countedPrefix < chunks && chunkDone[countedPrefix] {
            for r in requests.indices where partial[r] { tiePrefix[r] += ties![r * chunks + countedPrefix] }
            countedPrefix += 1
        }
        return requests.indices.contains { partial[$0] && tiePrefix[$0] < cuts[$0].tiesKept }
    }

    /// Records that `chunk`'s equal keys are counted.
    func tieCounted(_ chunk: Int) {
        if chunkDone.isEmpty { chunkDone = Array(repeating: false, count: chunks) }
        chunkDone[chunk] = true
    }

    private var chunkDone: [Bool] = []
    private var countedPrefix = 0
    private lazy var tiePrefix = [Int](repeating: 0, count: requests.count)

    /// Turns per-chunk equal counts into the ties each chunk's scan starts from (chunks never counted
    /// lie past the last kept tie: they start with every kept tie behind them).
    func endTies() {
        for r in requests.indices where partial[r] {
            var total = 0
            for c in 0..<chunks {
                let equal = c < chunkDone.count && chunkDone[c] ? ties![r * chunks + c] : cuts[r].tiesKept
                ties![r * chunks + c] = min(total, cuts[r].tiesKept)
                total += equal
            }
        }
    }

    /// How many of `keys` equal `value`.
    @inline(__always)
    static func countEqual(_ keys: UnsafePointer<UInt32>, _ m: Int, _ value: UInt32) -> Int {
        var lanes = SIMD8<UInt32>()
        let target = SIMD8<UInt32>(repeating: value), one = SIMD8<UInt32>(repeating: 1)
        var j = 0
        while j + 8 <= m {
            lanes.replace(with: lanes &+ one, where: UnsafeRawPointer(keys + j).loadUnaligned(as: SIMD8<UInt32>.self) .== target)
            j += 8
        }
        var total = Int(lanes.wrappedSum())
        while j < m { total += keys[j] == value ? 1 : 0; j += 1 }
        return total
    }

    // MARK: Selecting

    /// Writes all ones where request `r` selects the key, else zero. Tiles of a chunk must come in
    /// order on one worker.
    @inline(__always)
    func select(_ r: Int, _ keys: UnsafePointer<UInt32>, _ m: Int, tile: ChunkTile, into mask: UnsafeMutablePointer<UInt32>) {
        let cut = cuts[r]
        if cut.all { mask.update(repeating: ~0, count: m); return }
        if cut.empty { mask.update(repeating: 0, count: m); return }
        let threshold = cut.threshold
        var inclusive = cut.tiesKept > 0
        if partial[r] {
            let kept = scanned! + tile.worker * requests.count + r
            if tile.startsChunk { kept.pointee = ties![r * chunks + tile.chunk] }
            if kept.pointee >= cut.tiesKept {
                inclusive = false
            } else {
                let equal = Self.countEqual(keys, m, threshold)
                if kept.pointee + equal > cut.tiesKept {
                    // The tile where the kept ties run out: in index order, as `Selection.Cut.Scan`.
                    var scan = Selection.Cut.Scan(cut: cut, ties: kept.pointee)
                    for j in 0..<m { mask[j] = scan.selects(keys[j]) ? ~0 : 0 }
                    kept.pointee = scan.ties
                    return
                }
                kept.pointee += equal
            }
        }
        switch (cut.descending, inclusive) {
        case (true, true): for j in 0..<m { mask[j] = keys[j] >= threshold ? ~0 : 0 }
        case (true, false): for j in 0..<m { mask[j] = keys[j] > threshold ? ~0 : 0 }
        case (false, true): for j in 0..<m { mask[j] = keys[j] <= threshold ? ~0 : 0 }
        case (false, false): for j in 0..<m { mask[j] = keys[j] < threshold ? ~0 : 0 }
        }
    }
}
