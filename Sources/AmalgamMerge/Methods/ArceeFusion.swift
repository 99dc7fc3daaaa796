import AmalgamCore
import Foundation

/// Arcee Fusion: take the other model's value only where its importance `|b − a|·KL(softmax b ‖ softmax a)`
/// (KL per row of the last dim) is an outlier: at least `median + 1.5·IQR` of all importances.
public struct ArceeFusion: MergeMethod {
    /// The method; it has no configuration of its own.
    public init() {}
    /// The name configs use.
    public var name: String { "arcee_fusion" }
    /// Parameters read once per tensor, with mergekit 0.1.5's defaults.
    public var globalParameters: [ParameterSpec] { [] }
    /// Parameters read for each model, with mergekit 0.1.5's defaults.
    public var perModelParameters: [ParameterSpec] { [] }
    /// The config must name a `base_model`.
    public var requiresBase: Bool { true }
    /// A tensor only one model has passes through unchanged.
    public var missingTensorPolicy: MissingTensorPolicy { .passthroughSingleton }

    /// Merges one tensor as the type's summary describes.
    public func merge(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (values: [Float], shape: [Int]) {
        if inputs.count == 1 { return (inputs[0].values, inputs[0].shape) }
        let baseIndex = try requireBase(context)
        let aligned = try align(inputs, context)
        guard inputs.count == 2 else {
            throw fail(context, "fuses the base and exactly one other model, got \(inputs.count)")
        }
        let a = aligned.tensors[baseIndex], b = aligned.tensors[1 - baseIndex]
        let n = a.count
        if n == 0 { return (a, aligned.shape) }
        let rowLength = aligned.shape.last ?? 1
        var importance = [Float](repeating: 0, count: n)
        var row = 0
        while row * rowLength < n {
            let range = row * rowLength..<(row + 1) * rowLength
            let kl = Float(ArceeFusion.divergence(b[range], a[range]))
            for j in range { importance[j] = abs(b[j] - a[j]) * kl }
            row += 1
        }
        // Quantiles as mergekit reads them: sorted[int(q·(n−1))] with q·(n−1) in f32. mergekit samples
        // a million elements above that size; we use all of them.
        var keys = importance.map { $0.bitPattern }   // importances are ≥ 0: bit order is numeric order
        func quantile(_ q: Float) -> Float {
            let index = Int(q * Float(n - 1))
            return Float(bitPattern: keys.withUnsafeMutableBufferPointer { Selection.nthElement($0, index) })
        }
        let q1 = quantile(0.25), median = quantile(0.5), q3 = quantile(0.75)
        let threshold = median + 1.5 * (q3 - q1)
        var out = a
        for i in 0..<n where importance[i] >= threshold { out[i] = a[i] + (b[i] - a[i]) }
        return (out, aligned.shape)
    }

    /// Σ p·log(p/q) with p = softmax(x) + 1e-8, q = softmax(y) + 1e-8.
    static func divergence<C: Collection<Float>>(_ x: C, _ y: C) -> Double {
        let p = softmax(x), q = softmax(y)
        var total = 0.0
        for (pi, qi) in zip(p, q) {
            let pe = Double(Float(pi) + 1e-8), qe = Double(Float(qi) + 1e-8)
            total += pe * log(pe / qe)
        }
        return total
    }

    static func softmax<C: Collection<Float>>(_ x: C) -> [Double] {
        let top = Double(x.max() ?? 0)
        let e = x.map { exp(Double($0) - top) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }
}

extension ArceeFusion: ChunkedMergeMethod {
    /// Two inputs: the importance quantiles from `ChunkedCuts`' histogram passes over the importance
    /// keys (each tile computes the KL divergence of the rows it touches; a row straddling a tile is
    /// read whole), then the output.
    func chunkedKernel(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (any ChunkedKernel)? {
        guard inputs.count == 2, Tensor.elementCount(inputs[0].shape) >= 2 else { return nil }
        let base = try requireBase(context)
        return ArceeFusionChunks(base: base, other: 1 - base, row: inputs[base].shape.last ?? 1,
                                 count: Tensor.elementCount(inputs[base].shape))
    }
}

/// `ArceeFusion.merge` over chunks: the three quantiles are ascending cuts of the importance keys (only
/// their thresholds matter, so no tie counts), then the same compare and update per element.
final class ArceeFusionChunks: ChunkedKernel, @unchecked Sendable {
    private enum Stage { case start, high, low, output }

    let base: Int
    let other: Int
    let row: Int
    let n: Int
    private let cuts: ChunkedCuts
    private var stage = Stage.start
    private var threshold: Float = 0
    /// Per worker: two rows of values, a tile of importances; a tile of their keys.
    private var buffers: [UnsafeMutablePointer<Float>] = []
    private var keyBuffers: [UnsafeMutablePointer<UInt32>] = []
    /// Each row's KL divergence, stored by the tile where the row starts in the first pass and read in
    /// the later ones (one f32 per row).
    private var divergences: UnsafeMutablePointer<Float>?
    private var passesRun = 0
    private var tileSize = 0

    init(base: Int, other: Int, row: Int, count n: Int) {
        self.base = base
        self.other = other
        self.row = max(row, 1)
        self.n = n
        // As `ArceeFusion.merge`: sorted[int(q·(n−1))] with q·(n−1) in f32.
        cuts = ChunkedCuts([Float(0.25), 0.5, 0.75].map { .init(count: Int($0 * Float(n - 1)) + 1, descending: false) }, count: n)
    }

    deinit {
        for b in buffers { b.deallocate() }
        for k in keyBuffers { k.deallocate() }
        divergences?.deallocate()
    }

    var reach: Int { row }

    func prepare(workers: Int, chunks: Int, tileSize: Int) {
        self.tileSize = tileSize
        buffers = (0..<workers).map { _ in .allocate(capacity: 2 * row + tileSize) }
        keyBuffers = (0..<workers).map { _ in .allocate(capacity: tileSize) }
        cuts.prepare(workers: workers, chunks: chunks)
        divergences = .allocate(capacity: (n + row - 1) / row)
    }

    func beginPass(_ pass: Int) -> Bool {
        switch stage {
        case .start: stage = cuts.needsHistograms ? .high : .output
        case .high: stage = cuts.needsLowPass ? .low : .output
        case .low, .output: stage = .output
        }
        if stage == .high { cuts.beginHigh() }
        if stage == .output {
            let q = (0..<3).map { Float(bitPattern: cuts.cuts[$0].threshold) }
            threshold = q[1] + 1.5 * (q[2] - q[0])
        }
        return stage != .output
    }

    func endPass() {
        passesRun += 1
        switch stage {
        case .high: cuts.endHigh()
        case .low: cuts.endLow()
        default: break
        }
    }

    /// |b − a|·KL(row) of each element of the tile (as `ArceeFusion.merge`).
    private func importance(_ tile: ChunkTile) -> UnsafeMutablePointer<Float> {
        let buffer = buffers[tile.worker], out = buffer + 2 * row
        let a = tile.input(base), b = tile.input(other)
        let m = tile.count, start = tile.start
        var i = start
        while i < start + m {
            let rowStart = i / row * row, end = min(rowStart + row, start + m)
            let kl: Float
            if passesRun > 0 {
                kl = divergences![rowStart / row]
            } else if rowStart >= start && rowStart + row <= start + m {
                kl = Float(ArceeFusion.divergence(UnsafeBufferPointer(start: b + rowStart - start, count: row),
                                                  UnsafeBufferPointer(start: a + rowStart - start, count: row)))
            } else {
                tile.reader!.read(base, from: rowStart, count: row, into: buffer)
                tile.reader!.read(other, from: rowStart, count: row, into: buffer + row)
                kl = Float(ArceeFusion.divergence(UnsafeBufferPointer(start: buffer + row, count: row), UnsafeBufferPointer(start: buffer, count: row)))
            }
            if passesRun == 0 && rowStart >= start { divergences![rowStart / row] = kl }
            for j in i..<end { out[j - start] = abs(b[j - start] - a[j - start]) * kl }
            i = end
        }
        return out
    }

    func gather(_ tile: ChunkTile) {
        let values = importance(tile), keys = keyBuffers[tile.worker]
        // Importances are ≥ 0: their bit patterns sort as they do (the whole-tensor path's keys).
        for j in 0..<tile.count { keys[j] = values[j].bitPattern }
        switch stage {
        case .high: cuts.gatherHigh(keys, tile.count, worker: tile.worker)
        case .low: cuts.gatherLow(keys, tile.count, worker: tile.worker)
        default: break
        }
    }

    func apply(_ tile: ChunkTile, into out: UnsafeMutablePointer<Float>) {
        let values = importance(tile)
        let a = tile.input(base), b = tile.input(other)
        for j in 0..<tile.count { out[j] = values[j] >= threshold ? a[j] + (b[j] - a[j]) : a[j] }
    }
}
