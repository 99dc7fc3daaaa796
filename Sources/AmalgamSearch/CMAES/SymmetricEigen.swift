/// Eigendecomposition of a small symmetric matrix by cyclic Jacobi rotations.
///
/// CMA-ES decomposes its covariance at most every few generations and only for small n (a full
/// covariance is used up to a few hundred dimensions), so a plain O(n³)-per-sweep Jacobi is cheap; it is
/// accurate to working precision for symmetric matrices and runs the same operations in the same order
/// every time, so results are the same bytes on every run.
enum SymmetricEigen {
    /// Eigenvalues (ascending) and eigenvectors (column k of the row-major `vectors` belongs to value k)
    /// of the symmetric n × n row-major `matrix` (only its upper triangle is read).
    static func decompose(_ matrix: [Double], dimension n: Int) -> (values: [Double], vectors: [Double]) {
        var a = matrix
        for i in 0..<n { for j in 0..<i { a[i * n + j] = a[j * n + i] } }
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        for _ in 0..<100 {
            var off = 0.0, diagonal = 0.0
            for i in 0..<n {
                diagonal += a[i * n + i] * a[i * n + i]
                for j in (i + 1)..<max(i + 1, n) { off += a[i * n + j] * a[i * n + j] }
            }
            if off <= 1e-30 * diagonal || off == 0 { break }
            for p in 0..<n {
                for q in (p + 1)..<max(p + 1, n) where a[p * n + q] != 0 {
                    let apq = a[p * n + q], app = a[p * n + p], aqq = a[q * n + q]
                    // The rotation that zeroes a[p][q] (Golub & Van Loan, Algorithm 8.4.1).
                    let theta = (aqq - app) / (2 * apq)
                    let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let akp = a[k * n + p], akq = a[k * n + q]
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = a[p * n + k], aqk = a[q * n + k]
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k * n + p], vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        let order = (0..<n).sorted { a[$0 * n + $0] < a[$1 * n + $1] || (a[$0 * n + $0] == a[$1 * n + $1] && $0 < $1) }
        var vectors = [Double](repeating: 0, count: n * n)
        for (k, j) in order.enumerated() { for i in 0..<n { vectors[i * n + k] = v[i * n + j] } }
        return (order.map { a[$0 * n + $0] }, vectors)
    }
}
