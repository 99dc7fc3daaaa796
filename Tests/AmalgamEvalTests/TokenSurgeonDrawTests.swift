import AmalgamCore
import AmalgamEval
import Foundation
import Testing

/// tokensurgeon's `john_hewitt` rows come from Amalgam's seeded generator, not torch's, so they cannot be
/// compared with mergekit's bytes: their distribution is checked instead (mean and covariance of many draws
/// against the model rows' own), and the check is shown to reject standard normal draws (`randn`).
@Suite struct TokenSurgeonDrawTests {
    /// A 300 × 6 "embedding" with a non-zero mean, unequal variances and strong correlations.
    static func embedding() -> (values: [Float], rows: Int, columns: Int) {
        var rng = SeededGenerator(seed: 7)
        let rows = 300, C = 6
        var v = [Float](repeating: 0, count: rows * C)
        for r in 0..<rows {
            let a = rng.normal(), b = rng.normal()
            for j in 0..<C { v[r * C + j] = Float(j) * 0.5 - 1 + (Float(j) + 1) * 0.4 * a + (j % 2 == 0 ? 0.8 : -0.3) * b + 0.2 * rng.normal() }
        }
        return (v, rows, C)
    }

    static func moments(_ v: [Float], rows: Int, columns C: Int) -> (mean: [Double], cov: [Double]) {
        var mean = [Double](repeating: 0, count: C)
        for r in 0..<rows { for j in 0..<C { mean[j] += Double(v[r * C + j]) } }
        for j in 0..<C { mean[j] /= Double(rows) }
        var cov = [Double](repeating: 0, count: C * C)
        for r in 0..<rows {
            for i in 0..<C { for j in 0..<C { cov[i * C + j] += (Double(v[r * C + i]) - mean[i]) * (Double(v[r * C + j]) - mean[j]) } }
        }
        return (mean, cov.map { $0 / Double(rows) })
    }

    /// The largest difference of mean and of covariance, relative to the largest variance of the model rows.
    static func distance(drawn: [[Float]], from e: (values: [Float], rows: Int, columns: Int)) -> (mean: Double, cov: Double) {
        let target = moments(e.values, rows: e.rows, columns: e.columns)
        let sample = moments(drawn.flatMap { $0 }, rows: drawn.count, columns: e.columns)
        let scale = (0..<e.columns).map { target.cov[$0 * e.columns + $0] }.max()!
        let dm = zip(target.mean, sample.mean).map { abs($0 - $1) }.max()! / scale.squareRoot()
        let dc = zip(target.cov, sample.cov).map { abs($0 - $1) }.max()! / scale
        return (dm, dc)
    }

    @Test func johnHewittDrawsHaveTheModelRowsMeanAndCovariance() throws {
        let e = Self.embedding()
        var rng = SeededGenerator(seed: 1)
        let drawn = try #require(TokenSurgeon.johnHewittRows(values: e.values, rows: e.rows, columns: e.columns, count: 20_000, generator: &rng))
        let d = Self.distance(drawn: drawn, from: e)
        // 20,000 draws: the standard error of a covariance entry is ≈ σ²·√(2/20000) = 0.01·σ².
        #expect(d.mean < 0.05 && d.cov < 0.05, "mean off by \(d.mean), covariance by \(d.cov) (relative to the largest variance)")
        // The same check rejects standard normal rows (randn), so it can fail.
        var other = SeededGenerator(seed: 1)
        let standard = (0..<20_000).map { _ in (0..<e.columns).map { _ in other.normal() } }
        let s = Self.distance(drawn: standard, from: e)
        #expect(s.mean > 0.2 || s.cov > 0.2, "standard normal draws pass: mean \(s.mean), covariance \(s.cov)")
    }

    @Test func johnHewittIsTheSameForTheSameSeed() throws {
        let e = Self.embedding()
        var a = SeededGenerator(seed: 3), b = SeededGenerator(seed: 3), c = SeededGenerator(seed: 4)
        let x = TokenSurgeon.johnHewittRows(values: e.values, rows: e.rows, columns: e.columns, count: 5, generator: &a)
        let y = TokenSurgeon.johnHewittRows(values: e.values, rows: e.rows, columns: e.columns, count: 5, generator: &b)
        let z = TokenSurgeon.johnHewittRows(values: e.values, rows: e.rows, columns: e.columns, count: 5, generator: &c)
        #expect(x != nil && x == y)
        #expect(x != z)
    }

    @Test func johnHewittRefusesASingularCovariance() {
        // 3 rows in 6 dimensions: the covariance has rank 2.
        let e = Self.embedding()
        var rng = SeededGenerator(seed: 1)
        #expect(TokenSurgeon.johnHewittRows(values: Array(e.values.prefix(18)), rows: 3, columns: 6, count: 4, generator: &rng) == nil)
    }
}
