import AmalgamCore
import CAmalgamBLAS
import Foundation

/// mergekit-tokensurgeon's `common_interpolation`: a new token's row from the `k` shared tokens whose donor rows
/// are nearest to its donor row (Euclidean distance, or 1 − cosine similarity), weighted by a scheme; the new
/// row is the same weighting of the model's rows of those tokens. Everything in f64 (mergekit: f32).
struct CommonInterpolation: Sendable {
    let atoms: [Double]  // [count × dimension], the donor rows of the shared tokens
    let count: Int
    let dimension: Int
    let k: Int
    let cosine: Bool
    let scheme: TokenSurgeon.WeightScheme

    /// The chosen shared tokens (nearest first) and their weights.
    func fit(_ target: [Double]) -> (chosen: [Int], weights: [Double]) {
        let D = dimension
        var distances = [Double](repeating: 0, count: count)
        let targetNorm = target.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for a in 0..<count {
            if cosine {
                var dot = 0.0, norm = 0.0
                for j in 0..<D { dot += target[j] * atoms[a * D + j]; norm += atoms[a * D + j] * atoms[a * D + j] }
                distances[a] = 1 - dot / max(targetNorm * norm.squareRoot(), 1e-6)
            } else {
                var s = 0.0
                for j in 0..<D { let d = target[j] - atoms[a * D + j]; s += d * d }
                distances[a] = s.squareRoot()
            }
        }
        // The k smallest distances (ties: the smaller index first).
        let chosen = Array((0..<count).sorted { (distances[$0], $0) < (distances[$1], $1) }.prefix(k))
        let n = chosen.count
        switch scheme {
        case .distanceProportional:
            // Euclidean: inverse distance; cosine: the similarity itself (1 − distance), as mergekit.
            let raw = chosen.map { cosine ? 1 - distances[$0] : 1 / max(distances[$0], 1e-6) }
            let total = max(raw.reduce(0, +), 1e-6)
            return (chosen, raw.map { $0 / total })
        case .leastSquares:
            // min ‖Pᵀw − t‖ over the k chosen donor rows P.
            var a = [Double](repeating: 0, count: D * n)
            for (c, atom) in chosen.enumerated() { for j in 0..<D { a[j * n + c] = atoms[atom * D + j] } }
            return (chosen, LeastSquares.minimumNorm(a, rows: D, columns: n, target, rcond: Self.rcond(D, n)))
        case .barycentric:
            // [[P·Pᵀ, 1], [1ᵀ, 0]]·[w; λ] = [P·t; 1]: the least-squares weights that sum to one.
            let m = n + 1
            var a = [Double](repeating: 0, count: m * m)
            var b = [Double](repeating: 0, count: m)
            for (r, ar) in chosen.enumerated() {
                for (c, ac) in chosen.enumerated() {
                    var dot = 0.0
                    for j in 0..<D { dot += atoms[ar * D + j] * atoms[ac * D + j] }
                    a[r * m + c] = dot
                }
                a[r * m + n] = 1
                a[n * m + r] = 1
                var dot = 0.0
                for j in 0..<D { dot += atoms[ar * D + j] * target[j] }
                b[r] = dot
            }
            b[n] = 1
            return (chosen, Array(LeastSquares.minimumNorm(a, rows: m, columns: m, b, rcond: Self.rcond(m, m)).prefix(n)))
        }
    }

    /// torch.linalg.lstsq's default cut-off for the f32 matrices mergekit solves: f32's epsilon × max(m, n).
    static func rcond(_ m: Int, _ n: Int) -> Double { Double(Float.ulpOfOne) * Double(max(m, n)) }
}

/// The minimum-norm least-squares solution of A·x = b by LAPACK's gelsy (torch.linalg.lstsq's CPU default):
/// Householder QR with column pivoting, the rank being the number of diagonal entries of R above `rcond` ×
/// the largest, then a complete orthogonal factorisation. f64.
enum LeastSquares {
    /// `a`: row-major [rows × columns]; `b`: [rows]. Returns x [columns].
    static func minimumNorm(_ a: [Double], rows m: Int, columns n: Int, _ b: [Double], rcond: Double) -> [Double] {
        // Column-major for LAPACK; b holds max(m, n) entries, x in its first n.
        var columnMajor = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { columnMajor[j * m + i] = a[i * n + j] } }
        var rhs = b + [Double](repeating: 0, count: max(0, n - m))
        var rows = Int32(m), columns = Int32(n), nrhs: Int32 = 1, lda = Int32(max(1, m)), ldb = Int32(max(1, m, n))
        var pivots = [Int32](repeating: 0, count: n)
        var cutoff = rcond, rank: Int32 = 0, info: Int32 = 0
        var query = 0.0, lwork: Int32 = -1
        dgelsy_(&rows, &columns, &nrhs, &columnMajor, &lda, &rhs, &ldb, &pivots, &cutoff, &rank, &query, &lwork, &info)
        lwork = Int32(query)
        var work = [Double](repeating: 0, count: Int(max(lwork, 1)))
        dgelsy_(&rows, &columns, &nrhs, &columnMajor, &lda, &rhs, &ldb, &pivots, &cutoff, &rank, &work, &lwork, &info)
        precondition(info == 0, "dgelsy failed (info \(info)) on a \(m)×\(n) system")
        return Array(rhs.prefix(n))
    }
}

/// mergekit-tokensurgeon's `subword`: the model's rows of the ids the MODEL's tokenizer gives for the new token's
/// text (a word-start token's text begins with a space; a special token's text is its role name, as mergekit's
/// `unnormalize_token`), combined by `method`. Sums run in f32 in id order, as mergekit's in an f32 model.
enum SubwordCombination {
    /// `rows(id)` gives the model's row of an id. Empty ids: zeros.
    static func combine(ids: [Int], method: TokenSurgeon.SubwordMethod, isHead: Bool, columns C: Int,
                        row: (Int) -> ArraySlice<Float>) -> [Float] {
        var out = [Float](repeating: 0, count: C)
        guard !ids.isEmpty else { return out }
        func add(_ id: Int, _ w: Float) {
            let r = row(id)
            var j = 0
            for v in r { out[j] += w * v; j += 1 }
        }
        switch method {
        case .mean, .sum:
            for id in ids { add(id, 1) }
            if method == .mean { for j in 0..<C { out[j] /= Float(ids.count) } }
        case .weightedMean:
            // Weights 1…n; the embedding weights the last id most, the lm_head the first.
            let weights = (1...ids.count).map(Float.init)
            for (id, w) in zip(ids, isHead ? weights : Array(weights.reversed())) { add(id, w) }
            let total = weights.reduce(0, +)
            for j in 0..<C { out[j] /= total }
        case .firstLast:
            // The embedding takes the last id's row, the lm_head the first's.
            out = Array(row(isHead ? ids[0] : ids[ids.count - 1]))
        }
        return out
    }
}

extension TokenSurgeon {
    /// `count` rows drawn from the Gaussian with the mean and covariance of the rows of `values` (row-major
    /// [rows × columns]), mergekit's `john_hewitt`: mean + L·z, L the Cholesky factor of the (population)
    /// covariance, z standard normal from `generator`. nil when the covariance is not positive definite.
    public static func johnHewittRows(values: [Float], rows: Int, columns C: Int, count: Int,
                                      generator: inout SeededGenerator) -> [[Float]]? {
        var mean = [Double](repeating: 0, count: C)
        for r in 0..<rows { for j in 0..<C { mean[j] += Double(values[r * C + j]) } }
        for j in 0..<C { mean[j] /= Double(rows) }
        var cov = [Double](repeating: 0, count: C * C)
        var centered = [Double](repeating: 0, count: C)
        for r in 0..<rows {
            for j in 0..<C { centered[j] = Double(values[r * C + j]) - mean[j] }
            for i in 0..<C { for j in 0...i { cov[i * C + j] += centered[i] * centered[j] } }
        }
        for i in 0..<C { for j in 0...i { cov[i * C + j] /= Double(rows) } }
        // Cholesky: cov = L·Lᵀ, L lower triangular (row-major).
        var l = [Double](repeating: 0, count: C * C)
        for i in 0..<C {
            for j in 0...i {
                var s = cov[i * C + j]
                for p in 0..<j { s -= l[i * C + p] * l[j * C + p] }
                if i == j {
                    guard s > 0 else { return nil }
                    l[i * C + i] = s.squareRoot()
                } else {
                    l[i * C + j] = s / l[j * C + j]
                }
            }
        }
        var z = [Double](repeating: 0, count: C)
        return (0..<count).map { _ in
            for j in 0..<C { z[j] = Double(generator.normal()) }
            return (0..<C).map { i in
                var s = mean[i]
                for p in 0...i { s += l[i * C + p] * z[p] }
                return Float(s)
            }
        }
    }
}
