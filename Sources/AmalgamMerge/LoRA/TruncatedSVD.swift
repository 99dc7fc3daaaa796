import AmalgamCore
import CAmalgamBLAS

/// The leading singular triplets of a large f32 matrix M [m, n], by the randomised range finder with
/// power iterations (Halko, Martinsson & Tropp 2011, algorithm 4.4): Y = M·Ω for a seeded Gaussian Ω
/// [n, l], l = rank + oversampling, re-orthonormalised after each product with M or Mᵀ; then the exact SVD
/// of the small l-column projection. Memory beyond M is O((m + n)·l), so a 4096×14336 layer needs tens of
/// MB, not the 500+ MB of a full SVD's factors. When l ≥ min(m, n) the full SVD is taken instead (exact).
///
/// Error: with q power iterations the truncation error exceeds the optimal (full-SVD) error by a factor
/// that decays like (σ_{l+1}/σ_k)^(2q+1); see docs/lora.md for what was measured against mergekit's
/// `torch.linalg.svd`.
public struct TruncatedSVD: Sendable {
    /// Left singular vectors, column-major [m, rank] (column j is u_j).
    public let u: [Double]
    /// Singular values, descending.
    public let s: [Double]
    /// Right singular vectors, column-major [n, rank] (column j is v_j).
    public let v: [Double]
    public let rows: Int
    public let columns: Int
    /// Whether the full SVD was taken (the matrix was small for the rank asked).
    public let isExact: Bool

    public var rank: Int { s.count }

    /// How the factorisation is approximated.
    public struct Settings: Sendable, Equatable {
        /// Extra sampled directions beyond the rank (Halko et al.: 5–10 suffice for a decaying spectrum).
        public var oversampling: Int
        /// Products with MᵀM after the first sample; each sharpens a slowly decaying spectrum.
        public var powerIterations: Int
        public var seed: UInt64

        public init(oversampling: Int = 16, powerIterations: Int = 2, seed: UInt64 = 0) {
            self.oversampling = oversampling
            self.powerIterations = powerIterations
            self.seed = seed
        }
    }

    /// Factorises M given as `values`: row-major [rows, columns], or with `transposed` the row-major
    /// storage of Mᵀ (so an embedding [vocab, hidden] gives M = [hidden, vocab] without a copy).
    public init(values: UnsafeBufferPointer<Float>, rows m: Int, columns n: Int, transposed: Bool, rank k: Int, settings: Settings) {
        precondition(values.count == m * n && k >= 1)
        rows = m
        columns = n
        let small = min(m, n)
        let l = min(small, k + settings.oversampling)
        if l >= small {
            (u, s, v) = Self.full(values: values, rows: m, columns: n, transposed: transposed, keep: min(k, small))
            isExact = true
            return
        }
        isExact = false
        // Column-major views: row-major M is column-major Mᵀ [n, m] (ld n); row-major Mᵀ is column-major M (ld m).
        let mat = values.baseAddress!
        func timesM(_ x: [Float]) -> [Float] {  // M·x, x [n, l] → [m, l]
            var y = [Float](repeating: 0, count: m * l)
            if transposed {
                cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(l), Int32(n), 1, mat, Int32(m), x, Int32(n), 0, &y, Int32(m))
            } else {
                cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, Int32(m), Int32(l), Int32(n), 1, mat, Int32(n), x, Int32(n), 0, &y, Int32(m))
            }
            return y
        }
        func timesMT(_ x: [Float]) -> [Float] {  // Mᵀ·x, x [m, l] → [n, l]
            var z = [Float](repeating: 0, count: n * l)
            if transposed {
                cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, Int32(n), Int32(l), Int32(m), 1, mat, Int32(m), x, Int32(m), 0, &z, Int32(n))
            } else {
                cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(l), Int32(m), 1, mat, Int32(n), x, Int32(m), 0, &z, Int32(n))
            }
            return z
        }
        var rng = SeededGenerator(seed: settings.seed)
        let omega = (0..<(n * l)).map { _ in rng.normal() }
        var q = Self.orthonormalColumns(timesM(omega), rows: m, columns: l)
        for _ in 0..<settings.powerIterations {
            let z = Self.orthonormalColumns(timesMT(q.map { Float($0) }), rows: n, columns: l)
            q = Self.orthonormalColumns(timesM(z.map { Float($0) }), rows: m, columns: l)
        }
        // Z = Mᵀ·Q [n, l] = Ṽ·S·Ũᵀ, so Q·Qᵀ·M = Q·Zᵀ = (Q·Ũ)·S·Ṽᵀ.
        let z = timesMT(q.map { Float($0) }).map { Double($0) }
        let (zu, zs, zv) = Self.svd(z, rows: n, columns: l)   // zu [n, l] = Ṽ, zv [l, l] = Ũ
        let keep = min(k, l)
        var left = [Double](repeating: 0, count: m * keep)
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(keep), Int32(l), 1, q, Int32(m), zv, Int32(l), 0, &left, Int32(m))
        u = left
        s = Array(zs.prefix(keep))
        v = Array(zu.prefix(n * keep))
    }

    /// The full SVD in f64 (LAPACK dgesdd), keeping the leading `keep` triplets.
    private static func full(values: UnsafeBufferPointer<Float>, rows m: Int, columns n: Int, transposed: Bool, keep: Int) -> ([Double], [Double], [Double]) {
        // The storage read column-major is Mᵀ [n, m] (row-major M) or M [m, n] (row-major Mᵀ).
        let a = values.map { Double($0) }
        if transposed {
            let (uu, ss, vv) = svd(a, rows: m, columns: n)
            return (Array(uu.prefix(m * keep)), Array(ss.prefix(keep)), Array(vv.prefix(n * keep)))
        }
        let (uu, ss, vv) = svd(a, rows: n, columns: m)   // Mᵀ = U'·S·V'ᵀ, so M = V'·S·U'ᵀ
        return (Array(vv.prefix(m * keep)), Array(ss.prefix(keep)), Array(uu.prefix(n * keep)))
    }

    /// Thin SVD of a column-major [rows, columns] matrix: U [rows, p], S [p], V [columns, p] (column-major), p = min.
    static func svd(_ matrix: [Double], rows: Int, columns: Int) -> (u: [Double], s: [Double], v: [Double]) {
        var a = matrix
        let p = min(rows, columns)
        var s = [Double](repeating: 0, count: p)
        var u = [Double](repeating: 0, count: rows * p)
        var vt = [Double](repeating: 0, count: p * columns)
        var m = Int32(rows), n = Int32(columns), lda = Int32(rows), ldu = Int32(rows), ldvt = Int32(p)
        var iwork = [Int32](repeating: 0, count: 8 * p)
        var info: Int32 = 0
        var query = 0.0
        var lwork: Int32 = -1
        var jobz = CChar(UInt8(ascii: "S"))
        dgesdd_(&jobz, &m, &n, &a, &lda, &s, &u, &ldu, &vt, &ldvt, &query, &lwork, &iwork, &info)
        lwork = Int32(query)
        var work = [Double](repeating: 0, count: Int(lwork))
        dgesdd_(&jobz, &m, &n, &a, &lda, &s, &u, &ldu, &vt, &ldvt, &work, &lwork, &iwork, &info)
        precondition(info == 0, "dgesdd failed (info \(info)) on a \(rows)×\(columns) matrix")
        var v = [Double](repeating: 0, count: columns * p)
        for i in 0..<p { for j in 0..<columns { v[j + i * columns] = vt[i + j * p] } }
        return (u, s, v)
    }

    /// An orthonormal basis of the columns of a column-major [rows, columns] matrix (Householder QR, f64).
    static func orthonormalColumns(_ matrix: [Float], rows: Int, columns: Int) -> [Double] {
        orthonormalColumns(matrix.map { Double($0) }, rows: rows, columns: columns)
    }

    static func orthonormalColumns(_ matrix: [Double], rows: Int, columns: Int) -> [Double] {
        var a = matrix
        var m = Int32(rows), n = Int32(columns), k = Int32(columns), lda = Int32(rows)
        var tau = [Double](repeating: 0, count: columns)
        var info: Int32 = 0
        var query = 0.0
        var lwork: Int32 = -1
        dgeqrf_(&m, &n, &a, &lda, &tau, &query, &lwork, &info)
        lwork = max(Int32(query), n)
        var work = [Double](repeating: 0, count: Int(lwork))
        dgeqrf_(&m, &n, &a, &lda, &tau, &work, &lwork, &info)
        precondition(info == 0, "dgeqrf failed (info \(info))")
        lwork = -1
        dorgqr_(&m, &n, &k, &a, &lda, &tau, &query, &lwork, &info)
        lwork = max(Int32(query), n)
        work = [Double](repeating: 0, count: Int(lwork))
        dorgqr_(&m, &n, &k, &a, &lda, &tau, &work, &lwork, &info)
        precondition(info == 0, "dorgqr failed (info \(info))")
        return a
    }
}
