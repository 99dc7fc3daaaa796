/// `Selection`'s cuts (the first `count` elements of a stable sort of the magnitude keys, ascending or
/// descending) found over chunks, so a tensor never needs a full-size key array:
/// 0. a sample of the keys (a few hundred short runs spread over the tensor) guesses a narrow range of
///    high-16-bit buckets around each cut; one pass then counts the keys below and above the range
///    with vector compares and histograms only the few inside it, per chunk. When the cut lies inside
///    the range, that locates its bucket (and, when the bucket holds one value, each chunk's count of
///    it: step 3 is then free); when the guess missed, step 1 runs as if there had been no guess;
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
    /// Whether each request's cut bucket (`bucket`, `below`) is known.
    private var located: [Bool]
    /// Per request: the buckets the sample puts around the cut (nil: no guess, or too wide).
    private var ranges: [ClosedRange<UInt32>?]
    private var samples: [UInt32] = []
    private var rangeDone = false
    /// Range pass, per worker: for each guessed request, [below, bucket counts (count | OR of the low
    /// bits << 32)…, above]; then per request and chunk, each bucket's count (`rangeWidth` each).
    private var rangeHistograms: UnsafeMutablePointer<UInt64>?
    private var rangeChunkCounts: UnsafeMutablePointer<UInt32>?
    private var rangeOffset: [Int]
    private var rangeStride = 0
    /// Per request: whether each chunk's count of keys equal to the threshold is known (no ties pass).
    private var tiesKnown: [Bool]

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
        resolved = Array(repeating: false, count: requests.count)
        located = Array(repeating: false, count: requests.count)
        ranges = Array(repeating: nil, count: requests.count)
        rangeOffset = Array(repeating: 0, count: requests.count)
        // Sized here, not lazily: the range pass's workers read them at once (a lazy first read from two
        // threads initialises it twice, unsynchronised: ThreadSanitizer reported it).
        binShift = Array(repeating: 0, count: requests.count)
        binCount = Array(repeating: 0, count: requests.count)
        countOffset = Array(repeating: nil, count: requests.count)
        tieCounts = Array(repeating: nil, count: requests.count)
        tiePrefix = Array(repeating: 0, count: requests.count)
        tiesKnown = Array(repeating: false, count: requests.count)
    }

    deinit {
        histograms?.deallocate()
        rangeHistograms?.deallocate()
        rangeChunkCounts?.deallocate()
        ties?.deallocate()
        scanned?.deallocate()
    }

    /// Whether any cut still needs the full high-bits histogram pass (no guessed range, or it missed).
    var needsHistograms: Bool { !needsRangePass && open.contains { !located[$0] } }
    /// Whether any cut needs the per-chunk tie counts.
    var needsTieCounts: Bool { requests.indices.contains { partial[$0] && !tiesKnown[$0] } }

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

    // MARK: Pass 0: a sample, then counts around the guessed range

    /// Runs of `sampleRun` keys at `sampleRuns` evenly spaced places (16,384 keys: the range pass's
    /// cost is the keys inside the guessed range, so a larger sample and a narrower margin pay).
    static let sampleRuns = 512, sampleRun = 32
    /// Quantile margin on each side of a cut's position in the sample; the widest range of buckets kept,
    /// the widest whose per-chunk bucket counts are kept, and the most bins of a range's histogram.
    private static let margin = 0.012, widestRange: UInt32 = 16384, widestCounted = 1024, maxBins = 1 << 14

    /// Where the sample runs start in a tensor of `n` elements.
    static func sampleStarts(_ n: Int) -> [Int] {
        guard n >= sampleRuns * sampleRun else { return [] }
        return (0..<sampleRuns).map { i in i * (n - sampleRun) / (sampleRuns - 1) }
    }

    /// Adds sampled keys.
    func addSample(_ keys: UnsafePointer<UInt32>, _ m: Int) {
        samples.append(contentsOf: UnsafeBufferPointer(start: keys, count: m))
    }

    /// Per request with a range: bins of `1 << binShift[r]` keys from the range's first key.
    private var binShift: [Int]
    private var binCount: [Int]
    /// Per request: where its per-chunk bucket counts start (nil: not counted, the range is too wide).
    private var countOffset: [Int?]
    private var countsPerChunk = 0

    /// Turns the sample into a range of buckets around each open cut.
    func endSample() {
        defer { samples = [] }
        guard samples.count >= Self.sampleRuns else { return }
        samples.sort()
        let s = samples.count
        var offset = 0
        for r in open {
            let position = requests[r].descending ? n - requests[r].count : requests[r].count - 1
            let q = Double(position) / Double(n)
            let a = min(s - 1, max(0, Int(((q - Self.margin) * Double(s)).rounded(.down))))
            let b = min(s - 1, max(0, Int(((q + Self.margin) * Double(s)).rounded(.up))))
            let lo = samples[a] &>> 16, hi = samples[b] &>> 16
            guard hi - lo < Self.widestRange else { continue }
            ranges[r] = lo...hi
            let keys = (Int(hi - lo) + 1) << 16
            var shift = 0
            while (keys + (1 << shift) - 1) >> shift > Self.maxBins { shift += 1 }
            binShift[r] = shift
            binCount[r] = (keys + (1 << shift) - 1) >> shift
            rangeOffset[r] = offset
            offset += binCount[r] + 2
            if Int(hi - lo) < Self.widestCounted {
                countOffset[r] = countsPerChunk
                countsPerChunk += Int(hi - lo) + 1
            }
        }
        rangeStride = offset
    }

    /// Whether the range pass is next.
    var needsRangePass: Bool { !rangeDone && open.contains { ranges[$0] != nil && !located[$0] } }

    func beginRange() {
        rangeHistograms = .allocate(capacity: max(1, workers * rangeStride))
        rangeHistograms!.initialize(repeating: 0, count: max(1, workers * rangeStride))
        rangeChunkCounts = .allocate(capacity: max(1, chunks * countsPerChunk))
        rangeChunkCounts!.initialize(repeating: 0, count: max(1, chunks * countsPerChunk))
    }

    /// Chunk `c`'s bucket counts of request `r`, when they are kept.
    @inline(__always)
    private func chunkCounts(_ r: Int, _ c: Int) -> UnsafeMutablePointer<UInt32>? {
        countOffset[r].map { rangeChunkCounts! + c * countsPerChunk + $0 }
    }

    @inline(__always)
    func gatherRange(_ keys: UnsafePointer<UInt32>, _ m: Int, worker: Int, chunk: Int) {
        for r in open where !located[r] {
            guard let range = ranges[r] else { continue }
            let h = rangeHistograms! + worker * rangeStride + rangeOffset[r]
            let perChunk = chunkCounts(r, chunk)
            let shift = UInt32(binShift[r]), mask = (UInt32(1) &<< shift) &- 1
            let lowest = range.lowerBound &<< 16, beyond = (range.upperBound &+ 1) &<< 16
            let lo = SIMD8<UInt32>(repeating: lowest), hi = SIMD8<UInt32>(repeating: beyond), one = SIMD8<UInt32>(repeating: 1)
            // Exact zeros (untouched weights) are common and sit in the first bin when the range starts
            // at 0: they are counted with the others outside the scatter.
            let zero = SIMD8<UInt32>(repeating: lowest == 0 ? 0 : UInt32.max)
            var under = SIMD8<UInt32>(), over = SIMD8<UInt32>(), zeros = SIMD8<UInt32>()
            @inline(__always) func add(_ k: UInt32) {
                let offset = k &- lowest
                let b = Int(truncatingIfNeeded: offset &>> shift)
                h[b + 1] = (h[b + 1] &+ 1) | UInt64(k & mask) &<< 32
                if let perChunk { perChunk[Int(truncatingIfNeeded: offset &>> 16)] &+= 1 }
            }
            var j = 0
            // Most keys fall outside the range: count them eight at a time, histogram the rest.
            while j + 8 <= m {
                let v = UnsafeRawPointer(keys + j).loadUnaligned(as: SIMD8<UInt32>.self)
                let isUnder = v .< lo, isOver = v .>= hi, isZero = v .== zero
                under.replace(with: under &+ one, where: isUnder)
                over.replace(with: over &+ one, where: isOver)
                zeros.replace(with: zeros &+ one, where: isZero)
                let inside = .!(isUnder .| isOver .| isZero)
                if any(inside) { for l in 0..<8 where inside[l] { add(v[l]) } }
                j += 8
            }
            var underCount = UInt64(under.wrappedSum()), overCount = UInt64(over.wrappedSum())
            var zeroCount = UInt64(zeros.wrappedSum())
            while j < m {
                let k = keys[j]
                if k < lowest { underCount += 1 } else if k >= beyond { overCount += 1 } else if k == 0 { zeroCount += 1 } else { add(k) }
                j += 1
            }
            h[0] &+= underCount
            h[1] &+= zeroCount
            h[binCount[r] + 1] &+= overCount
            if let perChunk { perChunk[0] &+= UInt32(truncatingIfNeeded: zeroCount) }
        }
    }

    func endRange() {
        for r in open where !located[r] {
            guard let range = ranges[r] else { continue }
            let bins = binCount[r], shift = binShift[r]
            var totals = [Int](repeating: 0, count: bins + 2)
            var lowBits = [UInt64](repeating: 0, count: bins + 2)
            for w in 0..<workers {
                let h = rangeHistograms! + w * rangeStride + rangeOffset[r]
                for b in 0..<bins + 2 {
                    totals[b] += Int(h[b] & 0xFFFF_FFFF)
                    lowBits[b] |= h[b] &>> 32
                }
            }
            let position = requests[r].descending ? n - requests[r].count : requests[r].count - 1
            // The guess missed: the full histogram pass finds the bucket.
            guard position >= totals[0], position < n - totals[bins + 1] else { continue }
            var b = 1, count = totals[0]
            while count + totals[b] <= position { count += totals[b]; b += 1 }
            let binStart = (range.lowerBound &<< 16) &+ UInt32((b - 1) << shift)
            // Bins nest in buckets: the bucket's first bin, and the keys below it.
            let perBucket = 1 << (16 - shift)
            let firstBin = 1 + ((b - 1) / perBucket) * perBucket
            bucket[r] = binStart &>> 16
            below[r] = totals[0] + totals[1..<firstBin].reduce(0, +)
            located[r] = true
            guard lowBits[b] == 0 else { continue }   // several values in the bin: the low-bits pass
            resolve(r, digit: Int(binStart & 0xFFFF), below: count, equal: totals[b])
            // When the bucket holds only the threshold, the chunks' counts of the bucket are the ties.
            let inBucket = totals[firstBin..<min(bins + 1, firstBin + perBucket)].reduce(0, +)
            if partial[r], inBucket == totals[b], countOffset[r] != nil {
                let q = Int(bucket[r] - range.lowerBound)
                tieCounts[r] = (0..<chunks).map { Int(chunkCounts(r, $0)![q]) }
            }
        }
        rangeDone = true
        rangeHistograms?.deallocate()
        rangeHistograms = nil
        afterLocating()
        rangeChunkCounts?.deallocate()
        rangeChunkCounts = nil
    }

    /// Per request: each chunk's keys equal to the threshold, when the range pass counted them.
    private var tieCounts: [[Int]?]

    /// After a pass that located buckets: drops resolved requests; readies the low-bits pass once every
    /// open request is located, or the cuts when none is open.
    private func afterLocating() {
        open.removeAll { resolved[$0] }
        if open.isEmpty { finishCuts() } else if open.allSatisfy({ located[$0] }) { allocateHistograms(requests.count) }
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
        for r in open where !located[r] {
            let position = requests[r].descending ? n - requests[r].count : requests[r].count - 1
            var b = 0, count = 0
            while count + totals[b] <= position { count += totals[b]; b += 1 }
            bucket[r] = UInt32(b)
            below[r] = count
            located[r] = true
            if lowBits[b] == 0 { resolve(r, digit: 0, below: count, equal: totals[b]) }
        }
        histograms?.deallocate()
        histograms = nil
        afterLocating()
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
    var needsLowPass: Bool { !open.isEmpty && open.allSatisfy { located[$0] } }

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
        guard partial.contains(true) else { return }
        ties = .allocate(capacity: requests.count * chunks)
        ties!.initialize(repeating: 0, count: requests.count * chunks)
        for r in requests.indices where partial[r] {
            guard let counts = tieCounts[r] else { continue }
            // Counted by the range pass: each chunk starts from the kept ties before it.
            var total = 0
            for c in 0..<chunks {
                ties![r * chunks + c] = min(total, cuts[r].tiesKept)
                total += counts[c]
            }
            tiesKnown[r] = true
        }
    }

    // MARK: Pass 3 (only for partial ties): equal keys per chunk

    @inline(__always)
    func gatherTies(_ keys: UnsafePointer<UInt32>, _ m: Int, chunk: Int) {
        for r in requests.indices where partial[r] && !tiesKnown[r] {
            ties![r * chunks + chunk] += Self.countEqual(keys, m, cuts[r].threshold)
        }
    }

    /// Whether the tie counts still need `chunk`: chunks after the one where every partial cut's kept
    /// ties run out need no count (their scans keep no ties). `finished` chunks, counted in order.
    func needsTieCount(_ chunk: Int, finished: Int) -> Bool {
        while countedPrefix < finished && countedPrefix < chunks && chunkDone[countedPrefix] {
            for r in requests.indices where partial[r] && !tiesKnown[r] { tiePrefix[r] += ties![r * chunks + countedPrefix] }
            countedPrefix += 1
        }
        return requests.indices.contains { partial[$0] && !tiesKnown[$0] && tiePrefix[$0] < cuts[$0].tiesKept }
    }

    /// Records that `chunk`'s equal keys are counted.
    func tieCounted(_ chunk: Int) {
        if chunkDone.isEmpty { chunkDone = Array(repeating: false, count: chunks) }
        chunkDone[chunk] = true
    }

    private var chunkDone: [Bool] = []
    private var countedPrefix = 0
    private var tiePrefix: [Int]

    /// Turns per-chunk equal counts into the ties each chunk's scan starts from (chunks never counted
    /// lie past the last kept tie: they start with every kept tie behind them).
    func endTies() {
        for r in requests.indices where partial[r] && !tiesKnown[r] {
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

    /// For a single descending cut (TIES's top-k), the rule on this tile when a plain compare gives it:
    /// keep keys above `threshold` (or at least it, when `inclusive`). With `countTies`, the caller
    /// must count this tile's keys equal to the threshold and call `keptTies` with that count, which
    /// says whether the rule held (else the tile holds the last kept ties: use `select`). Nil when
    /// `select` is needed. Tiles of a chunk must come in order on one worker, as for `select`.
    @inline(__always)
    func plainRule(_ tile: ChunkTile) -> (threshold: UInt32, inclusive: Bool, countTies: Bool)? {
        guard requests.count == 1 else { return nil }
        let cut = cuts[0]
        guard cut.descending || cut.all || cut.empty else { return nil }
        if cut.all { return (0, true, false) }
        if cut.empty { return (UInt32.max, false, false) }
        guard partial[0] else { return (cut.threshold, cut.tiesKept > 0, false) }
        let kept = scanned! + tile.worker * requests.count
        if tile.startsChunk { kept.pointee = ties![tile.chunk] }
        if kept.pointee >= cut.tiesKept { return (cut.threshold, false, false) }
        return (cut.threshold, true, true)
    }

    /// After a `plainRule` with `countTies`: whether keeping all `equal` ties of the tile stays within
    /// the kept ties (then they are recorded as kept); false: the tile must go through `select`.
    @inline(__always)
    func keptTies(_ equal: Int, tile: ChunkTile) -> Bool {
        let kept = scanned! + tile.worker * requests.count
        guard kept.pointee + equal <= cuts[0].tiesKept else { return false }
        kept.pointee += equal
        return true
    }

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
