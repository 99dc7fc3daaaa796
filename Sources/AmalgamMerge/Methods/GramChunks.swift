/// Methods whose result is a combination of the inputs (or of their task vectors) with coefficients
/// that depend only on the inputs' dot products: karcher and multislerp. Whole or in chunks, they read
/// the Gram matrix (f64 sums) in one pass, solve for the coefficients, and write `Σ cᵢ·xᵢ` (plus the
/// base) with `Gram.combine`, so both paths do the same f32 operations on every element.
enum Gram {
    /// `g[i][j] = vᵢ·vⱼ` (f64 sums of f32 products).
    static func of(_ vectors: [[Float]]) -> [[Double]] {
        var g = [[Double]](repeating: [Double](repeating: 0, count: vectors.count), count: vectors.count)
        for i in vectors.indices {
            for j in i..<vectors.count {
                g[i][j] = Kernels.dot(vectors[i], vectors[j])
                g[j][i] = g[i][j]
            }
        }
        return g
    }

    /// `G·a`: the dot product of each vector with `Σ aⱼ·vⱼ`.
    static func products(_ g: [[Double]], _ a: [Double]) -> [Double] {
        g.map { row in zip(row, a).reduce(0) { $0 + $1.0 * $1.1 } }
    }

    /// `‖Σ aᵢ·vᵢ‖ = √(aᵀ·G·a)`.
    static func norm(_ g: [[Double]], _ a: [Double]) -> Double {
        max(0, zip(a, products(g, a)).reduce(0) { $0 + $1.0 * $1.1 }).squareRoot()
    }

    /// `out = Σ cᵢ·(xᵢ − base)` over the inputs with a non-zero coefficient, in order, plus `base`
    /// (f32; without a base, `Σ cᵢ·xᵢ`).
    @inline(__always)
    static func combine(_ inputs: [UnsafePointer<Float>], coefficients: [Float], base: UnsafePointer<Float>?, count: Int,
                        into out: UnsafeMutablePointer<Float>) {
        out.update(repeating: 0, count: count)
        for (x, c) in zip(inputs, coefficients) where c != 0 {
            if let base { for j in 0..<count { out[j] += c * (x[j] - base[j]) } }
            else { for j in 0..<count { out[j] += c * x[j] } }
        }
        if let base { for j in 0..<count { out[j] = base[j] + out[j] } }
    }

    /// `combine` over whole tensors.
    static func combine(_ inputs: [[Float]], coefficients: [Float], base: [Float]?) -> [Float] {
        let n = inputs.first?.count ?? 0
        if n == 0 { return [] }
        return withPointers(inputs + (base.map { [$0] } ?? [])) { pointers in
            [Float](unsafeUninitializedCapacity: n) { out, count in
                combine(Array(pointers.prefix(inputs.count)), coefficients: coefficients,
                        base: base == nil ? nil : pointers.last!, count: n, into: out.baseAddress!)
                count = n
            }
        }
    }

    /// Calls `body` with the start of each array (all non-empty).
    static func withPointers<R>(_ arrays: [[Float]], _ body: ([UnsafePointer<Float>]) -> R) -> R {
        func take(_ i: Int, _ taken: [UnsafePointer<Float>]) -> R {
            if i == arrays.count { return body(taken) }
            return arrays[i].withUnsafeBufferPointer { take(i + 1, taken + [$0.baseAddress!]) }
        }
        return take(0, [])
    }
}

extension Karcher: ChunkedMergeMethod {
    /// Two or more inputs: the Gram matrix in one pass of per-chunk sums, then the output.
    func chunkedKernel(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (any ChunkedKernel)? {
        guard inputs.count >= 2 else { return nil }
        let maxIterations = Int(try globalNumber("max_iter", context)), tol = try globalNumber("tol", context)
        return GramChunks(models: Array(inputs.indices), base: nil) { gram throws(MergeError) in
            Karcher.coefficients(gram: gram, maxIterations: maxIterations, tol: tol)
        }
    }
}

extension MultiSlerp: ChunkedMergeMethod {
    /// Two or more models besides the base: the task vectors' Gram matrix in one pass, then the output.
    func chunkedKernel(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (any ChunkedKernel)? {
        let others = inputs.indices.filter { $0 != context.baseIndex }
        guard others.count >= 2 else { return nil }
        let weights = try self.weights(inputs, others: others, context: context)
        let eps = try globalNumber("eps", context)
        return GramChunks(models: others, base: context.baseIndex) { gram throws(MergeError) in
            try coefficients(gram: gram, weights: weights, eps: eps, context: context)
        }
    }
}

/// A Gram-matrix method over chunks: `vᵢ·vⱼ` per chunk (vᵢ = xᵢ − base, or xᵢ), summed in chunk order,
/// then `solve` gives the coefficients and `Gram.combine` writes each tile.
final class GramChunks: ChunkedKernel, @unchecked Sendable {
    let models: [Int]
    let base: Int?
    let solve: @Sendable ([[Double]]) throws(MergeError) -> [Float]
    private let pairs: [(Int, Int)]
    private var sums: ChunkSums?
    private var scratch: [UnsafeMutablePointer<Float>] = []
    private var tileSize = 0
    private var coefficients: [Float] = []

    init(models: [Int], base: Int?, solve: @escaping @Sendable ([[Double]]) throws(MergeError) -> [Float]) {
        self.models = models
        self.base = base
        self.solve = solve
        var pairs: [(Int, Int)] = []
        for i in models.indices { for j in i..<models.count { pairs.append((i, j)) } }
        self.pairs = pairs
    }

    deinit { for s in scratch { s.deallocate() } }

    func prepare(workers: Int, chunks: Int, tileSize: Int) {
        self.tileSize = tileSize
        sums = ChunkSums(chunks: chunks, perChunk: pairs.count)
        if base != nil { scratch = (0..<workers).map { _ in .allocate(capacity: models.count * tileSize) } }
    }

    func beginPass(_ pass: Int) -> Bool { pass == 0 }

    func gather(_ tile: ChunkTile) {
        let m = tile.count
        let vectors: [UnsafePointer<Float>] = models.enumerated().map { p, i in
            guard let base else { return UnsafePointer(tile.input(i)) }
            let d = scratch[tile.worker] + p * tileSize, x = tile.input(i), b = tile.input(base)
            for j in 0..<m { d[j] = x[j] - b[j] }
            return UnsafePointer(d)
        }
        let s = sums![tile.chunk]
        for (k, (p, q)) in pairs.enumerated() {
            s[k] += Kernels.dot(UnsafeBufferPointer(start: vectors[p], count: m), UnsafeBufferPointer(start: vectors[q], count: m))
        }
    }

    func endPass() throws(MergeError) {
        let totals = sums!.totals()
        var gram = [[Double]](repeating: [Double](repeating: 0, count: models.count), count: models.count)
        for (k, (p, q)) in pairs.enumerated() {
            gram[p][q] = totals[k]
            gram[q][p] = totals[k]
        }
        coefficients = try solve(gram)
    }

    func apply(_ tile: ChunkTile, into out: UnsafeMutablePointer<Float>) {
        Gram.combine(models.map { UnsafePointer(tile.input($0)) }, coefficients: coefficients,
                     base: base.map { UnsafePointer(tile.input($0)) }, count: tile.count, into: out)
    }
}
