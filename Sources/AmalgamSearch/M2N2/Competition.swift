/// Per-example scores of a set of members: row k is member k, column j is training example j, each
/// value in [0, 1] (for a classifier: 1 when member k labels example j correctly).
public struct ScoreMatrix: Sendable, Equatable {
    /// Number of members (rows).
    public let rows: Int
    /// Number of training examples (columns).
    public let columns: Int
    /// Row-major values, `rows × columns`.
    public internal(set) var values: [Float]

    /// An all-zero matrix (the archive before any insertion).
    public init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
        values = [Float](repeating: 0, count: rows * columns)
    }

    /// A matrix from row-major values.
    public init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns, "score matrix needs rows × columns values")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    /// One member's scores.
    public func row(_ k: Int) -> ArraySlice<Float> { values[k * columns ..< (k + 1) * columns] }

    /// Replaces one member's scores.
    public mutating func setRow(_ k: Int, _ row: UnsafeBufferPointer<Float>) {
        precondition(row.count == columns, "a score row needs one value per example")
        values.withUnsafeMutableBufferPointer { v in
            for j in 0..<columns { v[k * columns + j] = row[j] }
        }
    }

    /// Σ_k S_kj for every example j.
    public func columnSums() -> [Double] {
        var sums = [Double](repeating: 0, count: columns)
        for k in 0..<rows {
            for j in 0..<columns { sums[j] += Double(values[k * columns + j]) }
        }
        return sums
    }

    /// Mean score of each member (training accuracy for a classifier).
    public func rowMeans() -> [Double] {
        (0..<rows).map { k in row(k).reduce(0.0) { $0 + Double($1) } / Double(max(columns, 1)) }
    }
}

/// Resource competition (M2N2's implicit fitness sharing): each example is a resource of total value 1
/// shared among the members that solve it, so a member is worth the examples few others solve.
public enum Competition {
    /// `1 / z_j` where `z_j = (Σ_k S_kj)^α`, with a zero `z_j` replaced by 1 (nobody solves j).
    public static func inverseCrowding(columnSums: [Double], alpha: Double) -> [Double] {
        columnSums.map { c in
            let z = alpha == 1 ? c : (alpha == 0 ? 1 : Foundation.pow(c, alpha))
            return z == 0 ? 1 : 1 / z
        }
    }

    /// Fitness `f_k = Σ_j S_kj / z_j` of the first `rows` rows of `scores`.
    public static func fitness(_ scores: ScoreMatrix, rows: Int? = nil, inverseCrowding: [Double]) -> [Double] {
        let n = scores.columns
        precondition(inverseCrowding.count == n, "one inverse crowding per example")
        return scores.values.withUnsafeBufferPointer { v in
            inverseCrowding.withUnsafeBufferPointer { w in
                (0..<(rows ?? scores.rows)).map { k in
                    sum(n, v.baseAddress! + k * n, nil, w.baseAddress!)
                }
            }
        }
    }

    /// Attraction of each member to parent `p`: `g_k = Σ_j max(0, S_kj/z_j − S_pj/z_j)`, what member k
    /// solves that `p` does not, weighted by how rare it is. Zero for `p` itself.
    public static func attraction(
        _ scores: ScoreMatrix, rows: Int? = nil, to p: Int, inverseCrowding: [Double]
    ) -> [Double] {
        let n = scores.columns
        precondition(inverseCrowding.count == n, "one inverse crowding per example")
        return scores.values.withUnsafeBufferPointer { v in
            inverseCrowding.withUnsafeBufferPointer { w in
                (0..<(rows ?? scores.rows)).map { k in
                    sum(n, v.baseAddress! + k * n, v.baseAddress! + p * n, w.baseAddress!)
                }
            }
        }
    }

    /// Σ_{j < n} of `x_j · w_j` (or, with `y`, of `max(0, x_j · w_j − y_j · w_j)`), scores widened to Double,
    /// in four interleaved partial sums (j mod 4) added as (s0 + s1) + (s2 + s3), the tail into s0: a fixed
    /// order with four times shorter dependency chains than one running sum. The four partial sums are the
    /// lanes of one `SIMD4<Double>`: the same additions in the same order as four scalars.
    @inline(__always)
    static func sum(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>?, _ w: UnsafePointer<Double>) -> Double {
        var s = SIMD4<Double>()
        var j = 0
        while j + 4 <= n {
            let ws = UnsafeRawPointer(w + j).loadUnaligned(as: SIMD4<Double>.self)
            var t = SIMD4<Double>(UnsafeRawPointer(x + j).loadUnaligned(as: SIMD4<Float>.self)) * ws
            if let y {
                t -= SIMD4<Double>(UnsafeRawPointer(y + j).loadUnaligned(as: SIMD4<Float>.self)) * ws
                t.replace(with: 0, where: t .< 0)
            }
            s += t
            j += 4
        }
        var s0 = s[0]
        while j < n {
            var t = Double(x[j]) * w[j]
            if let y { t = max(0, t - Double(y[j]) * w[j]) }
            s0 += t
            j += 1
        }
        return (s0 + s[1]) + (s[2] + s[3])
    }

    /// The index of the lowest fitness; the first one on ties (as `argmin` does).
    public static func weakest(_ fitness: [Double]) -> Int {
        var best = 0
        for k in 1..<fitness.count where fitness[k] < fitness[best] { best = k }
        return best
    }
}

import Foundation
