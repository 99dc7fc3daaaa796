/// Chunked kernels of the element-wise methods: nearswap, passthrough (with `scale`), ram (no
/// statistics) and ramplus_tl (one pass of per-chunk integer counts). Each does the whole-tensor
/// method's operations in the same order on every element, so the bytes are the same.

extension NearSwap: ChunkedMergeMethod {
    func chunkedKernel(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (any ChunkedKernel)? {
        guard inputs.count == 2, let base = context.baseIndex else { return nil }
        return NearSwapChunks(t: Float(try globalNumber("t", context)), base: base)
    }
}

/// `NearSwap.merge` tile by tile.
final class NearSwapChunks: ChunkedKernel, @unchecked Sendable {
    let t: Float
    let base: Int

    init(t: Float, base: Int) {
        self.t = t
        self.base = base
    }

    func prepare(workers: Int, chunks: Int, tileSize: Int) {}
    func beginPass(_ pass: Int) -> Bool { false }
    func gather(_ tile: ChunkTile) {}
    func endPass() {}

    func apply(_ tile: ChunkTile, into out: UnsafeMutablePointer<Float>) {
        let a = tile.input(base), b = tile.input(1 - base)
        for j in 0..<tile.count {
            let w = min(max(t / max(abs(a[j] - b[j]), 1e-6), 0), 1)
            out[j] = w * b[j] + (1 - w) * a[j]
        }
    }
}

extension Passthrough: ChunkedMergeMethod {
    func chunkedKernel(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (any ChunkedKernel)? {
        guard inputs.count == 1 else { return nil }
        return ScaleChunks(scale: Float(try modelNumber("scale", inputs[0], context)))
    }
}

/// `Passthrough.merge` tile by tile: the input, times `scale` unless it is 1.
final class ScaleChunks: ChunkedKernel, @unchecked Sendable {
    let scale: Float

    init(scale: Float) { self.scale = scale }

    func prepare(workers: Int, chunks: Int, tileSize: Int) {}
    func beginPass(_ pass: Int) -> Bool { false }
    func gather(_ tile: ChunkTile) {}
    func endPass() {}

    func apply(_ tile: ChunkTile, into out: UnsafeMutablePointer<Float>) {
        let x = tile.input(0)
        if scale == 1 { out.update(from: x, count: tile.count); return }
        for j in 0..<tile.count { out[j] = x[j] * scale }
    }
}

extension RAM: ChunkedMergeMethod {
    func chunkedKernel(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (any ChunkedKernel)? {
        let base = try requireBase(context)
        let others = inputs.indices.filter { $0 != base }
        if others.isEmpty { return nil }
        let epsilon = Float(try globalNumber("epsilon", context))
        var boost: (r: Double, alpha: Double)?
        if plus {
            let r = try globalNumber("r", context)
            let alpha = try globalNumber("alpha", context)
            boost = (r, alpha)
        }
        return RAMChunks(base: base, others: others, epsilon: epsilon, boost: boost)
    }
}

/// `RAM.merge` tile by tile. ramplus_tl's boosts need each model's counts of shared and unique
/// positions over the whole tensor: one pass of per-chunk integer counts (exact in any order).
final class RAMChunks: ChunkedKernel, @unchecked Sendable {
    let base: Int
    let others: [Int]
    let epsilon: Float
    /// ramplus_tl's `r` and `alpha`; nil for ram.
    let boostParameters: (r: Double, alpha: Double)?
    private var chunks = 0
    /// Per chunk and model: shared, unique.
    private var counts: UnsafeMutablePointer<Int>?
    private var boost: [Float]

    init(base: Int, others: [Int], epsilon: Float, boost: (r: Double, alpha: Double)?) {
        self.base = base
        self.others = others
        self.epsilon = epsilon
        boostParameters = boost
        self.boost = Array(repeating: 1, count: others.count)
    }

    deinit { counts?.deallocate() }

    func prepare(workers: Int, chunks: Int, tileSize: Int) {
        self.chunks = chunks
        guard boostParameters != nil else { return }
        counts = .allocate(capacity: 2 * others.count * chunks)
        counts!.initialize(repeating: 0, count: 2 * others.count * chunks)
    }

    func beginPass(_ pass: Int) -> Bool { pass == 0 && boostParameters != nil }

    /// How many models change element `j` of the tile by more than epsilon.
    @inline(__always)
    private func changed(_ tile: ChunkTile, _ j: Int) -> Int {
        let b = tile.input(base)[j]
        var c = 0
        for i in others where abs(tile.input(i)[j] - b) > epsilon { c += 1 }
        return c
    }

    func gather(_ tile: ChunkTile) {
        let b = tile.input(base)
        let slot = counts! + 2 * others.count * tile.chunk
        for j in 0..<tile.count {
            let c = changed(tile, j)
            if c == 0 { continue }
            for (m, i) in others.enumerated() where abs(tile.input(i)[j] - b[j]) > epsilon {
                slot[2 * m + (c > 1 ? 0 : 1)] += 1
            }
        }
    }

    func endPass() {
        guard let parameters = boostParameters else { return }
        let (r, alpha) = parameters
        for m in others.indices {
            var shared = 0, unique = 0
            for c in 0..<chunks {
                shared += counts![2 * others.count * c + 2 * m]
                unique += counts![2 * others.count * c + 2 * m + 1]
            }
            // As `RAM.merge`.
            let rho = Float(shared) / max(Float(unique), epsilon)
            boost[m] = 1 + Float(r) * min(max(rho, 0), Float(alpha))
        }
    }

    func apply(_ tile: ChunkTile, into out: UnsafeMutablePointer<Float>) {
        let b = tile.input(base)
        for j in 0..<tile.count {
            let c = changed(tile, j)
            if c == 0 { out[j] = b[j]; continue }
            var sum: Float = 0
            for (m, i) in others.enumerated() {
                let v = tile.input(i)[j] - b[j]
                if abs(v) > epsilon { sum += c == 1 ? v * boost[m] : v / Float(c) }
            }
            out[j] = b[j] + sum
        }
    }
}

extension ModelStock: ChunkedMergeMethod {
    /// Over the whole tensor (not `filter_wise`, whose rows would straddle chunks): one pass of
    /// per-chunk f64 sums (each task vector's squares, each pair's products), then the interpolation.
    func chunkedKernel(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (any ChunkedKernel)? {
        let base = try requireBase(context)
        let others = inputs.indices.filter { $0 != base }
        guard others.count >= 2, !(try globalBool("filter_wise", context)) else { return nil }
        return ModelStockChunks(base: base, others: others)
    }
}

/// `ModelStock.merge` (whole-tensor cosine) over chunks.
final class ModelStockChunks: ChunkedKernel, @unchecked Sendable {
    let base: Int
    let others: [Int]
    private let pairs: [(Int, Int)]
    /// Per chunk: Σo² of each task vector, then Σoₐ·o_b of each pair.
    private var sums: ChunkSums?
    private var t: Float = 0

    init(base: Int, others: [Int]) {
        self.base = base
        self.others = others
        var pairs: [(Int, Int)] = []
        for a in others.indices { for b in others.indices where b > a { pairs.append((a, b)) } }
        self.pairs = pairs
    }

    func prepare(workers: Int, chunks: Int, tileSize: Int) {
        sums = ChunkSums(chunks: chunks, perChunk: others.count + pairs.count)
    }

    func beginPass(_ pass: Int) -> Bool { pass == 0 }

    func gather(_ tile: ChunkTile) {
        let s = sums![tile.chunk]
        let b = tile.input(base)
        for j in 0..<tile.count {
            for (p, i) in others.enumerated() {
                let o = Double(tile.input(i)[j] - b[j])
                s[p] += o * o
            }
            for (k, (p, q)) in pairs.enumerated() {
                s[others.count + k] += Double(tile.input(others[p])[j] - b[j]) * Double(tile.input(others[q])[j] - b[j])
            }
        }
    }

    func endPass() {
        let totals = sums!.totals()
        // As `ModelStock.merge`.
        let norms = totals[0..<others.count].map { $0.squareRoot() }
        var cosSum = 0.0
        for (k, (p, q)) in pairs.enumerated() {
            cosSum += min(max(totals[others.count + k] / max(norms[p] * norms[q], 1e-6), -1), 1)
        }
        let count = Double(others.count)
        let cosTheta = cosSum / Double(pairs.count)
        let denominator = 1 + (count - 1) * cosTheta
        t = Float(abs(denominator) < 1e-6 ? 0 : count * cosTheta / denominator)
    }

    func apply(_ tile: ChunkTile, into out: UnsafeMutablePointer<Float>) {
        let b = tile.input(base)
        let count = Float(others.count)
        for j in 0..<tile.count {
            var sum: Float = 0
            for i in others { sum += tile.input(i)[j] }
            out[j] = t * (sum / count) + (1 - t) * b[j]
        }
    }
}

extension NuSlerp: ChunkedMergeMethod {
    /// Flattened (the default) or 1-D tensors only: one pass of per-chunk f64 sums (the two vectors'
    /// squares and their product), then the interpolation. Row- and column-wise interpolations (one
    /// angle per row or column) merge whole.
    func chunkedKernel(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (any ChunkedKernel)? {
        let others = inputs.indices.filter { $0 != context.baseIndex }
        guard others.count == 2, try globalBool("nuslerp_flatten", context) || inputs[others[0]].shape.count < 2 else { return nil }
        let w1 = try modelNumber("weight", inputs[others[0]], context)
        let w2 = try modelNumber("weight", inputs[others[1]], context)
        let total = w1 + w2
        return NuSlerpChunks(t: abs(total) < 1e-6 ? 0.5 : w2 / total, base: context.baseIndex, first: others[0], second: others[1])
    }
}

/// `NuSlerp.merge` of whole flattened tensors over chunks.
final class NuSlerpChunks: ChunkedKernel, @unchecked Sendable {
    let t: Double
    let base: Int?
    let first: Int
    let second: Int
    /// Per chunk: Σa², Σb², Σa·b.
    private var sums: ChunkSums?
    private var scratch: [UnsafeMutablePointer<Float>] = []
    private var tileSize = 0
    private var c0: Float = 0
    private var c1: Float = 0

    init(t: Double, base: Int?, first: Int, second: Int) {
        self.t = t
        self.base = base
        self.first = first
        self.second = second
    }

    deinit {
        for s in scratch { s.deallocate() }
    }

    func prepare(workers: Int, chunks: Int, tileSize: Int) {
        self.tileSize = tileSize
        sums = ChunkSums(chunks: chunks, perChunk: 3)
        scratch = (0..<workers).map { _ in .allocate(capacity: 2 * tileSize) }
    }

    func beginPass(_ pass: Int) -> Bool { pass == 0 }

    /// The two vectors of this tile (task vectors when there is a base).
    @inline(__always)
    private func vectors(_ tile: ChunkTile) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        guard let base else { return (tile.input(first), tile.input(second)) }
        let a = scratch[tile.worker], b = a + tileSize
        let x = tile.input(first), y = tile.input(second), z = tile.input(base)
        for j in 0..<tile.count {
            a[j] = x[j] - z[j]
            b[j] = y[j] - z[j]
        }
        return (a, b)
    }

    func gather(_ tile: ChunkTile) {
        let (a, b) = vectors(tile)
        let va = UnsafeBufferPointer(start: a, count: tile.count), vb = UnsafeBufferPointer(start: b, count: tile.count)
        let s = sums![tile.chunk]
        s[0] += Kernels.dot(va, va)
        s[1] += Kernels.dot(vb, vb)
        s[2] += Kernels.dot(va, vb)
    }

    func endPass() {
        let total = sums!.totals()
        (c0, c1) = NuSlerp.coefficients(t: t, squaresA: total[0], squaresB: total[1], dot: total[2])
    }

    func apply(_ tile: ChunkTile, into out: UnsafeMutablePointer<Float>) {
        let (a, b) = vectors(tile)
        for j in 0..<tile.count { out[j] = c0 * a[j] + c1 * b[j] }
        if let base {
            let z = tile.input(base)
            for j in 0..<tile.count { out[j] = z[j] + out[j] }
        }
    }
}
