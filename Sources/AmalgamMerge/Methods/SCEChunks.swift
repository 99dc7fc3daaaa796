import AmalgamCore

extension SCE: ChunkedMergeMethod {
    /// In chunks: with `select_topk` < 1, a pass counting the non-zero variances, then `ChunkedCuts`'
    /// histogram passes for the top-k variances; a pass of per-chunk sums of each thinned task vector's
    /// squares (its weight); then the output.
    func chunkedKernel(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (any ChunkedKernel)? {
        let base = try requireBase(context)
        let others = inputs.indices.filter { $0 != base }
        if others.isEmpty { return nil }
        let topk = try globalNumber("select_topk", context)
        return SCEChunks(base: base, others: others, density: topk < 1 ? topk : nil,
                         count: Tensor.elementCount(inputs[base].shape))
    }
}

/// `SCE.merge` tile by tile, with the same operations in the same order on every element, so the
/// output is the same bytes (up to the rounding of the f64 sums behind the weights).
final class SCEChunks: ChunkedKernel, @unchecked Sendable {
    private enum Stage { case start, count, high, low, ties, weights, output }

    let base: Int
    let others: [Int]
    /// `select_topk` when it thins (< 1).
    let density: Double?
    let n: Int
    private var stage = Stage.start
    private var tileSize = 0
    private var workers = 0
    private var chunks = 0
    /// Per worker: a task-vector tile per model, keys, mask, sum, mixed, divisor.
    private var scratch: [UnsafeMutableRawPointer] = []
    /// Per chunk: non-zero variances.
    private var nonzero: ChunkSums?
    /// The top-k cut of the variances (nil: no selection).
    private var cuts: ChunkedCuts?
    /// Per chunk: each thinned task vector's Σ τ².
    private var squares: ChunkSums?
    private var weights: [Float] = []

    init(base: Int, others: [Int], density: Double?, count n: Int) {
        self.base = base
        self.others = others
        self.density = density
        self.n = n
    }

    deinit { for s in scratch { s.deallocate() } }

    func prepare(workers: Int, chunks: Int, tileSize: Int) {
        self.tileSize = tileSize
        self.workers = workers
        self.chunks = chunks
        scratch = (0..<workers).map { _ in .allocate(byteCount: (others.count + 5) * tileSize * 4, alignment: 64) }
        if let density, density <= 0 {
            cuts = ChunkedCuts([.init(count: 0, descending: true)], count: n)
            cuts!.prepare(workers: workers, chunks: chunks)
        }
    }

    func beginPass(_ pass: Int) -> Bool {
        func next(after s: Stage) -> Stage {
            switch s {
            case .start: return density != nil && cuts == nil ? .count : next(after: .count)
            case .count: return cuts?.needsHistograms == true ? .high : next(after: .high)
            case .high: return cuts?.needsLowPass == true ? .low : next(after: .low)
            case .low: return cuts?.needsTieCounts == true ? .ties : next(after: .ties)
            case .ties, .weights, .output: return s == .ties ? .weights : .output
            }
        }
        stage = next(after: stage)
        switch stage {
        case .count: nonzero = ChunkSums(chunks: chunks, perChunk: 1)
        case .high: cuts!.beginHigh()
        case .weights: squares = ChunkSums(chunks: chunks, perChunk: others.count)
        default: break
        }
        return stage != .output
    }

    func endPass() {
        switch stage {
        case .count:
            let k = Int(nonzero!.totals()[0] * density!)
            cuts = ChunkedCuts([.init(count: k, descending: true)], count: n)
            cuts!.prepare(workers: workers, chunks: chunks)
        case .high: cuts!.endHigh()
        case .low: cuts!.endLow()
        case .ties: cuts!.endTies()
        case .weights:
            // As `SCE.merge`: ωᵢ = mean(τᵢ²) / Σⱼ mean(τⱼ²), uniform when that sum is below 1e-6.
            let totals = squares!.totals()
            weights = totals.map { Float($0 / Double(max(n, 1))) }
            let total = weights.reduce(0, +)
            weights = abs(total) < 1e-6 ? weights.map { _ in 1 / Float(weights.count) } : weights.map { $0 / total }
        default: break
        }
    }

    func needsChunk(_ chunk: Int, finished: Int) -> Bool {
        guard stage == .ties, let cuts else { return true }
        return cuts.needsTieCounts && cuts.needsTieCount(chunk, finished: finished)
    }

    func finished(_ chunk: Int) {
        if stage == .ties, let cuts, cuts.needsTieCounts { cuts.tieCounted(chunk) }
    }

    @inline(__always) private func work(_ tile: ChunkTile, _ k: Int) -> UnsafeMutableRawPointer {
        scratch[tile.worker] + (others.count + k) * tileSize * 4
    }

    /// τᵢ = xᵢ − base of every model on this tile.
    @inline(__always)
    private func taskVectors(_ tile: ChunkTile) -> [UnsafeMutablePointer<Float>] {
        let b = tile.input(base)
        return others.enumerated().map { p, i in
            let d = scratch[tile.worker].assumingMemoryBound(to: Float.self) + p * tileSize, x = tile.input(i)
            for j in 0..<tile.count { d[j] = x[j] - b[j] }
            return d
        }
    }

    /// The variance keys of this tile (and how many are non-zero).
    @inline(__always)
    private func keys(_ tile: ChunkTile, _ vectors: [UnsafeMutablePointer<Float>]) -> (UnsafeMutablePointer<UInt32>, Int) {
        let keys = work(tile, 0).assumingMemoryBound(to: UInt32.self)
        let nonzero = SCE.varianceKeys(vectors.map { UnsafePointer($0) }, count: tile.count, into: keys)
        return (keys, nonzero)
    }

    /// The task vectors of this tile with the positions `select_topk` drops zeroed.
    @inline(__always)
    private func thinnedTaskVectors(_ tile: ChunkTile) -> [UnsafeMutablePointer<Float>] {
        let vectors = taskVectors(tile)
        guard let cuts else { return vectors }
        let m = tile.count
        let (keys, _) = self.keys(tile, vectors)
        let mask = work(tile, 1).assumingMemoryBound(to: UInt32.self)
        cuts.select(0, keys, m, tile: tile, into: mask)
        for d in vectors {
            let bits = UnsafeMutableRawPointer(d).assumingMemoryBound(to: UInt32.self)
            for j in 0..<m { bits[j] &= mask[j] }
        }
        return vectors
    }

    func gather(_ tile: ChunkTile) {
        let m = tile.count
        switch stage {
        case .count:
            nonzero![tile.chunk][0] += Double(keys(tile, taskVectors(tile)).1)
        case .high: cuts!.gatherHigh(keys(tile, taskVectors(tile)).0, m, worker: tile.worker)
        case .low: cuts!.gatherLow(keys(tile, taskVectors(tile)).0, m, worker: tile.worker)
        case .ties: cuts!.gatherTies(keys(tile, taskVectors(tile)).0, m, chunk: tile.chunk)
        case .weights:
            let s = squares![tile.chunk]
            for (p, d) in thinnedTaskVectors(tile).enumerated() {
                let v = UnsafeBufferPointer(start: d, count: m)
                s[p] += Kernels.dot(v, v)
            }
        default: break
        }
    }

    func apply(_ tile: ChunkTile, into out: UnsafeMutablePointer<Float>) {
        let m = tile.count
        let vectors = thinnedTaskVectors(tile)
        // As `SignConsensus.mix` with the weights as scales and coefficients, then `SCE.merge`.
        let sum = work(tile, 2).assumingMemoryBound(to: Float.self)
        let mixed = work(tile, 3).assumingMemoryBound(to: Float.self)
        let divisor = work(tile, 4).assumingMemoryBound(to: Float.self)
        sum.update(repeating: 0, count: m)
        for d in vectors { for j in 0..<m { sum[j] += d[j] } }
        mixed.update(repeating: 0, count: m)
        divisor.update(repeating: 0, count: m)
        for (p, d) in vectors.enumerated() {
            let w = weights[p]
            for j in 0..<m {
                let agree = SignConsensus.agrees(d[j], sum: sum[j])
                mixed[j] += agree ? d[j] * w : 0
                divisor[j] += agree ? w : 0
            }
        }
        let b = tile.input(base)
        for j in 0..<m { out[j] = b[j] + mixed[j] / max(divisor[j], 1e-6) }
    }
}
