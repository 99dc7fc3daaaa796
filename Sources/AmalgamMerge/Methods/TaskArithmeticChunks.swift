import AmalgamCore

extension TaskArithmetic: ChunkedMergeMethod {
    /// Every configuration merges in chunks (DELLA only on 2-D tensors, whose rows along dim 1 are
    /// contiguous): magnitude cuts come from `ChunkedCuts`, DARE's and DELLA's draws from the same
    /// per-chunk streams as `Sparsification`, DELLA's keep probabilities from the ranks in each row (a
    /// row straddling a tile is read whole through the tile's reader), L1 rescale factors from a pass
    /// of per-chunk sums.
    func chunkedKernel(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (any ChunkedKernel)? {
        let base = try requireBase(context)
        let others = inputs.indices.filter { $0 != base }
        if others.isEmpty || (sparsifier == .dellaMagprune && inputs[base].shape.count != 2) { return nil }
        let n = Tensor.elementCount(inputs[base].shape)
        // Below a chunk, histograms cost more than the whole-tensor path.
        if n < Sparsification.randomChunk { return nil }
        var weights: [Float] = []
        var thinning: [TaskArithmeticChunks.Thinning] = []
        for (position, index) in others.enumerated() {
            let input = inputs[index]
            weights.append(Float(try modelNumber("weight", input, context)))
            guard let sparsifier else { thinning.append(.keep); continue }
            let density = try modelNumber("density", input, context)
            if density >= 1 { thinning.append(.keep); continue }
            switch sparsifier {
            case .magnitude:
                thinning.append(density <= 0 ? .drop
                    : .cuts(ChunkedCuts([.init(count: max(1, Int(density * Double(n))), descending: true)], count: n)))
            case .magnitudeOutliers:
                let gamma = try modelNumber("gamma", input, context)
                let target = Int(density * Double(n)), top = Int(gamma * Double(n))
                let bottom = max(0, n - target - top)
                // Ascending ranks [bottom, bottom + target): below the second cut and not below the first.
                thinning.append(.cuts(ChunkedCuts([.init(count: min(n, bottom + max(0, target)), descending: false),
                                                   .init(count: bottom, descending: false)], count: n)))
            case .random:
                thinning.append(.random(density, seed: SeedDerivation.seed(context.seed, stream: position)))
            case .dellaMagprune:
                if density <= 0 { thinning.append(.drop); continue }
                let epsilon = try dellaEpsilon(input, density: density, context: context)
                thinning.append(.della(density, epsilon: epsilon, seed: SeedDerivation.seed(context.seed, stream: position),
                                       row: inputs[base].shape[1]))
            }
        }
        return TaskArithmeticChunks(base: base, others: others, weights: weights, thinning: thinning,
                                    signConsensus: signConsensus, normalize: try globalBool("normalize", context),
                                    rescale: try globalBool("rescale", context), lambda: Float(try globalNumber("lambda", context)))
    }
}

/// `TaskArithmetic.merge` tile by tile, with the same operations in the same order on every element, so
/// the output is the same bytes (up to the rounding of the f64 L1 sums behind `rescale`).
final class TaskArithmeticChunks: ChunkedKernel, @unchecked Sendable {
    /// How one task vector is thinned.
    enum Thinning {
        case keep
        /// Density ≤ 0 under a magnitude sparsifier: all zero (no rescale).
        case drop
        /// Magnitude cuts: the first request alone, or the first without the second (breadcrumbs).
        case cuts(ChunkedCuts)
        /// DARE: keep with this probability, drawn from the chunk streams of this seed.
        case random(Double, seed: UInt64)
        /// DELLA: keep with a probability from `density ± epsilon` by magnitude rank in rows of `row`
        /// elements, drawn from the chunk streams of this seed.
        case della(Double, epsilon: Double, seed: UInt64, row: Int)
    }

    private enum Stage { case start, range, high, low, ties, l1, output }

    let base: Int
    let others: [Int]
    let weights: [Float]
    let thinning: [Thinning]
    let signConsensus: Bool
    let normalize: Bool
    let rescale: Bool
    let lambda: Float
    private var stage = Stage.start
    private var tileSize = 0
    private var chunks = 0
    /// Per worker: a delta tile per model, keys, two masks, sum, mixed, divisor.
    private var scratch: [UnsafeMutableRawPointer] = []
    /// Per worker and model: the DARE or DELLA stream being drawn.
    private var generators: UnsafeMutablePointer<SeededGenerator>?
    /// DELLA's row length (0: no DELLA), and per worker: two rows of values, two rows of packed rank
    /// keys (entries and sort scratch), a tile of keep probabilities.
    private let row: Int
    private var rows: [UnsafeMutableRawPointer] = []
    /// Per model and chunk: L1 norm before and after thinning.
    private var l1: UnsafeMutablePointer<Double>?
    private var scales: [Float?]

    init(base: Int, others: [Int], weights: [Float], thinning: [Thinning], signConsensus: Bool, normalize: Bool,
         rescale: Bool, lambda: Float) {
        self.base = base
        self.others = others
        self.weights = weights
        self.thinning = thinning
        self.signConsensus = signConsensus
        self.normalize = normalize
        self.rescale = rescale
        self.lambda = lambda
        scales = Array(repeating: nil, count: others.count)
        row = thinning.lazy.compactMap { if case let .della(_, _, _, row) = $0 { return row } else { return nil } }.first ?? 0
    }

    /// A DELLA tile reads the rows it straddles whole.
    var reach: Int { row }

    deinit {
        for s in scratch { s.deallocate() }
        for r in rows { r.deallocate() }
        l1?.deallocate()
        generators?.deallocate()
    }

    private var allCuts: [ChunkedCuts] {
        thinning.compactMap { if case let .cuts(c) = $0 { return c } else { return nil } }
    }

    func prepare(workers: Int, chunks: Int, tileSize: Int) {
        self.tileSize = tileSize
        self.chunks = chunks
        scratch = (0..<workers).map { _ in .allocate(byteCount: (others.count + 6) * tileSize * 4, alignment: 64) }
        generators = .allocate(capacity: workers * others.count)
        generators!.initialize(repeating: SeededGenerator(seed: 0), count: workers * others.count)
        for c in allCuts { c.prepare(workers: workers, chunks: chunks) }
        if row > 0 { rows = (0..<workers).map { _ in .allocate(byteCount: 24 * row + 8 * tileSize, alignment: 64) } }
    }

    func beginPass(_ pass: Int) -> Bool {
        let cuts = allCuts
        let needsL1 = rescale && thinning.contains { if case .keep = $0 { return false } else if case .drop = $0 { return false } else { return true } }
        func next(after s: Stage) -> Stage {
            switch s {
            case .start: return cuts.contains(where: \.needsRangePass) ? .range : next(after: .range)
            case .range: return cuts.contains(where: \.needsHistograms) ? .high : next(after: .high)
            case .high: return cuts.contains(where: \.needsLowPass) ? .low : next(after: .low)
            case .low: return cuts.contains(where: \.needsTieCounts) ? .ties : next(after: .ties)
            case .ties: return needsL1 ? .l1 : .output
            case .l1, .output: return .output
            }
        }
        stage = next(after: stage)
        switch stage {
        case .range: for c in cuts where c.needsRangePass { c.beginRange() }
        case .high: for c in cuts where c.needsHistograms { c.beginHigh() }
        case .l1:
            l1 = .allocate(capacity: 2 * others.count * chunks)
            l1!.initialize(repeating: 0, count: 2 * others.count * chunks)
        default: break
        }
        return stage != .output
    }

    func endPass() {
        switch stage {
        case .range: for c in allCuts where c.needsRangePass { c.endRange() }
        case .high: for c in allCuts where c.needsHistograms { c.endHigh() }
        case .low: for c in allCuts where c.needsLowPass { c.endLow() }
        case .ties: for c in allCuts where c.needsTieCounts { c.endTies() }
        case .l1:
            for p in others.indices {
                var before = 0.0, after = 0.0
                for c in 0..<chunks {
                    before += l1![(2 * p) * chunks + c]
                    after += l1![(2 * p + 1) * chunks + c]
                }
                // As `Sparsification.rescaleL1`.
                scales[p] = before < 1e-7 || after < 1e-7 ? nil : Float(Float(before) / Float(after))
            }
        default: break
        }
    }

    func needsChunk(_ chunk: Int, finished: Int) -> Bool {
        guard stage == .ties else { return true }
        return allCuts.contains { $0.needsTieCounts && $0.needsTieCount(chunk, finished: finished) }
    }

    func finished(_ chunk: Int) {
        if stage == .ties { for c in allCuts where c.needsTieCounts { c.tieCounted(chunk) } }
    }

    // Scratch layout of a worker.
    @inline(__always) private func delta(_ tile: ChunkTile, _ p: Int) -> UnsafeMutablePointer<Float> {
        scratch[tile.worker].assumingMemoryBound(to: Float.self) + p * tileSize
    }
    @inline(__always) private func work(_ tile: ChunkTile, _ k: Int) -> UnsafeMutableRawPointer {
        scratch[tile.worker] + (others.count + k) * tileSize * 4
    }

    /// Magnitude keys of model `p`'s task vector on this tile.
    @inline(__always)
    private func keys(_ tile: ChunkTile, _ p: Int) -> UnsafeMutablePointer<UInt32> {
        let keys = work(tile, 0).assumingMemoryBound(to: UInt32.self)
        let x = tile.input(others[p]), b = tile.input(base)
        for j in 0..<tile.count { keys[j] = (x[j] - b[j]).bitPattern & 0x7FFF_FFFF }
        return keys
    }

    func sample(count n: Int, _ tile: (_ start: Int, _ count: Int) -> ChunkTile) {
        let cuts = thinning.indices.compactMap { p -> (Int, ChunkedCuts)? in if case let .cuts(c) = thinning[p] { return (p, c) } else { return nil } }
        if cuts.isEmpty { return }
        for start in ChunkedCuts.sampleStarts(n) {
            let t = tile(start, ChunkedCuts.sampleRun)
            for (p, c) in cuts { c.addSample(keys(t, p), t.count) }
        }
        for (_, c) in cuts { c.endSample() }
    }

    func gather(_ tile: ChunkTile) {
        let m = tile.count
        for p in others.indices {
            switch (stage, thinning[p]) {
            case let (.range, .cuts(c)) where c.needsRangePass: c.gatherRange(keys(tile, p), m, worker: tile.worker, chunk: tile.chunk)
            case let (.high, .cuts(c)) where c.needsHistograms: c.gatherHigh(keys(tile, p), m, worker: tile.worker)
            case let (.low, .cuts(c)) where c.needsLowPass: c.gatherLow(keys(tile, p), m, worker: tile.worker)
            case let (.ties, .cuts(c)) where c.needsTieCounts: c.gatherTies(keys(tile, p), m, chunk: tile.chunk)
            case (.l1, .cuts), (.l1, .random), (.l1, .della):
                let d = taskVector(tile, p)
                l1![(2 * p) * chunks + tile.chunk] += Kernels.l1(UnsafeBufferPointer(start: d, count: m))
                thin(tile, p, d)
                l1![(2 * p + 1) * chunks + tile.chunk] += Kernels.l1(UnsafeBufferPointer(start: d, count: m))
            default: break
            }
        }
    }

    /// δ = x − base of model `p` on this tile, in its scratch tile.
    @inline(__always)
    private func taskVector(_ tile: ChunkTile, _ p: Int) -> UnsafeMutablePointer<Float> {
        let d = delta(tile, p), x = tile.input(others[p]), b = tile.input(base)
        for j in 0..<tile.count { d[j] = x[j] - b[j] }
        return d
    }

    /// Zeroes what the sparsifier drops (before any rescale).
    @inline(__always)
    private func thin(_ tile: ChunkTile, _ p: Int, _ d: UnsafeMutablePointer<Float>) {
        let m = tile.count
        let mask = work(tile, 1).assumingMemoryBound(to: UInt32.self)
        switch thinning[p] {
        case .keep: return
        case .drop: d.update(repeating: 0, count: m); return
        case let .cuts(c):
            let keys = work(tile, 0).assumingMemoryBound(to: UInt32.self)
            for j in 0..<m { keys[j] = d[j].bitPattern & 0x7FFF_FFFF }
            c.select(0, keys, m, tile: tile, into: mask)
            if c.requests.count == 2 {
                let lower = work(tile, 2).assumingMemoryBound(to: UInt32.self)
                c.select(1, keys, m, tile: tile, into: lower)
                for j in 0..<m { mask[j] &= ~lower[j] }
            }
        case let .random(probability, seed):
            var generator = stream(tile, p, seed)
            for j in 0..<m { mask[j] = generator.bernoulli(probability) ? ~0 : 0 }
            generators![tile.worker * others.count + p] = generator
        case let .della(density, epsilon, seed, _):
            let probabilities = dellaProbabilities(tile, p, density: density, epsilon: epsilon)
            var generator = stream(tile, p, seed)
            for j in 0..<m { mask[j] = generator.bernoulli(probabilities[j]) ? ~0 : 0 }
            generators![tile.worker * others.count + p] = generator
        }
        let bits = UnsafeMutableRawPointer(d).assumingMemoryBound(to: UInt32.self)
        for j in 0..<m { bits[j] &= mask[j] }
    }

    /// Model `p`'s random stream at this tile: tiles of a `randomChunk` come in order on one worker, so
    /// the draws continue where the previous tile left them, as in `Sparsification.bernoulliMask`.
    @inline(__always)
    private func stream(_ tile: ChunkTile, _ p: Int, _ seed: UInt64) -> SeededGenerator {
        let g = generators! + tile.worker * others.count + p
        if tile.start % Sparsification.randomChunk == 0 {
            g.pointee = SeededGenerator(seed: SeedDerivation.seed(seed, stream: tile.start / Sparsification.randomChunk))
        }
        return g.pointee
    }

    /// DELLA's keep probability of each element of the tile for model `p`, as
    /// `Sparsification.dellaProbabilities`: ranks of |δ| in each row (ties: lower index first).
    private func dellaProbabilities(_ tile: ChunkTile, _ p: Int, density: Double, epsilon: Double) -> UnsafeMutablePointer<Double> {
        let buffer = rows[tile.worker]
        let rowBase = buffer.assumingMemoryBound(to: Float.self), rowModel = rowBase + row
        let packed = (buffer + 8 * row).assumingMemoryBound(to: UInt64.self)
        let sortScratch = (buffer + 16 * row).assumingMemoryBound(to: UInt64.self)
        let probabilities = (buffer + 24 * row).assumingMemoryBound(to: Double.self)
        let m = tile.count, start = tile.start
        if row < 2 { probabilities.update(repeating: density, count: m); return probabilities }
        let step = 2 * epsilon / Double(row - 1)
        let x = tile.input(others[p]), b = tile.input(base)
        var i = start
        while i < start + m {
            let rowStart = i / row * row, end = min(rowStart + row, start + m)
            if rowStart >= start && rowStart + row <= start + m {
                for r in 0..<row {
                    packed[r] = UInt64(Selection.key(x[rowStart - start + r] - b[rowStart - start + r])) << 32 | UInt64(r)
                }
            } else {
                tile.reader!.read(base, from: rowStart, count: row, into: rowBase)
                tile.reader!.read(others[p], from: rowStart, count: row, into: rowModel)
                for r in 0..<row { packed[r] = UInt64(Selection.key(rowModel[r] - rowBase[r])) << 32 | UInt64(r) }
            }
            Sparsification.sortRanked(packed, row, scratch: sortScratch)
            for (rank, entry) in UnsafeBufferPointer(start: packed, count: row).enumerated() {
                let position = rowStart + Int(entry & 0xFFFF_FFFF)
                if position >= i && position < end { probabilities[position - start] = (density - epsilon) + Double(rank) * step }
            }
            i = end
        }
        return probabilities
    }

    /// δ·scale·weight of model `p` in one loop when its thinning is a plain compare on this tile (all
    /// of TIES's tiles but the one holding the last kept ties): the same operations, in the same order,
    /// as `taskVector`, `thin` and the products in `apply`. False: nothing was done.
    @inline(__always)
    private func fusedTaskVector(_ tile: ChunkTile, _ p: Int) -> Bool {
        let m = tile.count
        let threshold: UInt32, inclusive: Bool, countTies: Bool
        switch thinning[p] {
        case .keep: (threshold, inclusive, countTies) = (0, true, false)
        case let .cuts(c):
            guard let rule = c.plainRule(tile) else { return false }
            (threshold, inclusive, countTies) = rule
        case .drop, .random, .della: return false
        }
        let d = delta(tile, p), x = tile.input(others[p]), b = tile.input(base)
        let w = weights[p]
        if countTies {
            var equal = 0
            for j in 0..<m { equal &+= (x[j] - b[j]).bitPattern & 0x7FFF_FFFF == threshold ? 1 : 0 }
            guard case let .cuts(c) = thinning[p], c.keptTies(equal, tile: tile) else { return false }
        }
        // Keep keys above `above`, or every key: `k ≥ t` is `k > t − 1`, and `k ≥ 0` always holds.
        let keepAll = inclusive && threshold == 0
        let above = inclusive ? threshold &- 1 : threshold
        switch (keepAll, scales[p]) {
        case (true, let s?):
            for j in 0..<m { var r = x[j] - b[j]; r *= s; r *= w; d[j] = r }
        case (true, nil):
            for j in 0..<m { var r = x[j] - b[j]; r *= w; d[j] = r }
        case (false, let s?):
            for j in 0..<m {
                let v = x[j] - b[j]
                var r: Float = v.bitPattern & 0x7FFF_FFFF > above ? v : 0
                r *= s
                r *= w
                d[j] = r
            }
        case (false, nil):
            for j in 0..<m {
                let v = x[j] - b[j]
                var r: Float = v.bitPattern & 0x7FFF_FFFF > above ? v : 0
                r *= w
                d[j] = r
            }
        }
        return true
    }

    func apply(_ tile: ChunkTile, into out: UnsafeMutablePointer<Float>) {
        let m = tile.count
        for p in others.indices where !fusedTaskVector(tile, p) {
            let d = taskVector(tile, p)
            thin(tile, p, d)
            if let s = scales[p] { for j in 0..<m { d[j] *= s } }
            let w = weights[p]
            for j in 0..<m { d[j] *= w }
        }
        let mixed = work(tile, 4).assumingMemoryBound(to: Float.self)
        if signConsensus {
            let sum = work(tile, 3).assumingMemoryBound(to: Float.self)
            let divisor = work(tile, 5).assumingMemoryBound(to: Float.self)
            sum.update(repeating: 0, count: m)
            for p in others.indices {
                let d = delta(tile, p)
                for j in 0..<m { sum[j] += d[j] }
            }
            mixed.update(repeating: 0, count: m)
            divisor.update(repeating: 0, count: m)
            for p in others.indices {
                let d = delta(tile, p), w = weights[p]
                for j in 0..<m {
                    let agree = sum[j] >= 0 ? d[j] > 0 : d[j] < 0
                    mixed[j] += agree ? d[j] : 0
                    divisor[j] += agree ? w : 0
                }
            }
            if normalize { for j in 0..<m { mixed[j] /= divisor[j] == 0 ? 1 : divisor[j] } }
        } else {
            mixed.update(from: delta(tile, 0), count: m)
            for p in others.indices.dropFirst() {
                let d = delta(tile, p)
                for j in 0..<m { mixed[j] += d[j] }
            }
            if normalize {
                var divisor: Float = weights.reduce(0, +)
                if abs(divisor) < 1e-8 { divisor = 1 }
                for j in 0..<m { mixed[j] /= divisor }
            }
        }
        let b = tile.input(base)
        if lambda != 1 { for j in 0..<m { out[j] = b[j] + mixed[j] * lambda } }
        else { for j in 0..<m { out[j] = b[j] + mixed[j] } }
    }
}
