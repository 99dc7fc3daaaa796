/// TIES sign election (mergekit's `get_mask(method="sum")`): at each position the majority sign is
/// the sign of the SUM of the vectors there (a zero sum counts as +), and a vector takes part only
/// where its own sign equals it (an exact zero never does).
public enum SignConsensus {
    /// Whether `value` agrees with the majority sign of a position whose vectors sum to `sum`.
    @inline(__always)
    public static func agrees(_ value: Float, sum: Float) -> Bool {
        sum >= 0 ? value > 0 : value < 0
    }

    /// Elects signs on `vectors` (each n values) and mixes only the agreeing entries:
    /// `mixed = Σ scaleᵢ·vᵢ·maskᵢ`, `divisor = Σ coefficientᵢ·maskᵢ`.
    /// TIES passes the weighted deltas with scale 1 and the weights as coefficients; SCE the raw task
    /// vectors with their variance weights as both.
    public static func mix(_ vectors: [[Float]], scales: [Float], coefficients: [Float]) -> (mixed: [Float], divisor: [Float]) {
        let n = vectors.first?.count ?? 0
        var mixed = [Float](repeating: 0, count: n)
        var divisor = [Float](repeating: 0, count: n)
        mixed.withUnsafeMutableBufferPointer { mx in
            divisor.withUnsafeMutableBufferPointer { dv in
                for i in 0..<n {
                    var sum: Float = 0
                    for v in vectors { sum += v[i] }
                    var m: Float = 0, d: Float = 0
                    for (index, v) in vectors.enumerated() where agrees(v[i], sum: sum) {
                        m += v[i] * scales[index]
                        d += coefficients[index]
                    }
                    mx[i] = m
                    dv[i] = d
                }
            }
        }
        return (mixed, divisor)
    }
}
