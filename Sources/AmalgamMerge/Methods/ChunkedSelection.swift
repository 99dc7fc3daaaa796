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
    private var workers = 0
    private var chunks = 0
    /// Per worker: one histogram (high bits), then one per request (low bits).
    private var histograms: UnsafeMutablePointer<UInt32>?
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
        bucket = Array(repeating: 0, count: requests.count)
        below = Array(repeating: 0, count: requests.count)
        partial = Array(repeating: false, count: requests.count)
    }

    deinit {
        histograms?.deallocate()
        ties?.deallocate()
        scanned?.deallocate()
    }

    /// Whether any cut needs the histogram passes.
    var needsHistograms: Bool { !open.isEmpty }
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

    func beginHigh() { allocateHistograms(1) }

    @inline(__always)
    func gatherHigh(_ keys: UnsafePointer<UInt32>, _ m: Int, worker: Int) {
        let h = histograms! + worker * Self.bins
        for j in 0..<m { h[Int(truncatingIfNeeded: keys[j] &>> 16)] &+= 1 }
    }

    func endHigh() {
        let totals = summed(perWorker: 1, index: 0)
        for r in open {
            let position = requests[r].descending ? n - requests[r].count : requests[r].count - 1
            var b = 0, count = 0
            while count + totals[b] <= position { count += totals[b]; b += 1 }
            bucket[r] = UInt32(b)
            below[r] = count
        }
        allocateHistograms(requests.count)
    }

    // MARK: Pass 2: low 16 bits inside each cut's bucket

    @inline(__always)
    func gatherLow(_ keys: UnsafePointer<UInt32>, _ m: Int, worker: Int) {
        for r in open {
            let h = histograms! + (worker * requests.count + r) * Self.bins
            let top = bucket[r]
            for j in 0..<m where keys[j] &>> 16 == top { h[Int(truncatingIfNeeded: keys[j] & 0xFFFF)] &+= 1 }
        }
    }

    func endLow() {
        for r in open {
            let low = summed(perWorker: requests.count, index: r)
            let position = requests[r].descending ? n - requests[r].count : requests[r].count - 1
            var count = below[r], digit = 0
            while count + low[digit] <= position { count += low[digit]; digit += 1 }
            let equal = low[digit]
            let selectedBefore = requests[r].descending ? n - count - equal : count
            let kept = requests[r].count - selectedBefore
            cuts[r] = Selection.Cut(threshold: bucket[r] << 16 | UInt32(digit), tiesKept: kept, descending: requests[r].descending)
            partial[r] = kept > 0 && kept < equal
        }
        histograms?.deallocate()
        histograms = nil
        if needsTieCounts {
            ties = .allocate(capacity: requests.count * chunks)
            ties!.initialize(repeating: 0, count: requests.count * chunks)
        }
    }

    private func summed(perWorker: Int, index: Int) -> [Int] {
        var totals = [Int](repeating: 0, count: Self.bins)
        for w in 0..<workers {
            let h = histograms! + (w * perWorker + index) * Self.bins
            for b in 0..<Self.bins { totals[b] += Int(h[b]) }
        }
        return totals
    }

    // MARK: Pass 3 (only for partial ties): equal keys per chunk

    @inline(__always)
    func gatherTies(_ keys: UnsafePointer<UInt32>, _ m: Int, chunk: Int) {
        for r in requests.indices where partial[r] {
            let threshold = cuts[r].threshold
            var equal = 0
            for j in 0..<m { equal &+= keys[j] == threshold ? 1 : 0 }
            ties![r * chunks + chunk] += equal
        }
    }

    /// Turns per-chunk equal counts into the ties each chunk's scan starts from.
    func endTies() {
        for r in requests.indices where partial[r] {
            var total = 0
            for c in 0..<chunks {
                let equal = ties![r * chunks + c]
                ties![r * chunks + c] = min(total, cuts[r].tiesKept)
                total += equal
            }
        }
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
                var equal = 0
                for j in 0..<m { equal &+= keys[j] == threshold ? 1 : 0 }
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
