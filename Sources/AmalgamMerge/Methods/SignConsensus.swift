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
    /// vectors with their variance weights as both. `rounding` rounds each product `scaleᵢ·vᵢ` (mergekit's
    /// arithmetic: a torch product in the working dtype before the sum); the sums stay f32.
    public static func mix(_ vectors: [[Float]], scales: [Float], coefficients: [Float],
                           rounding: Rounding = .exact) -> (mixed: [Float], divisor: [Float]) {
        let n = vectors.first?.count ?? 0
        // Vector by vector (not position by position) so that each pass is a plain vectorisable loop.
        var sum = [Float](repeating: 0, count: n)
        sum.withUnsafeMutableBufferPointer { s in
            for v in vectors {
                v.withUnsafeBufferPointer { p in for i in 0..<n { s[i] += p[i] } }
            }
        }
        var mixed = [Float](repeating: 0, count: n)
        var divisor = [Float](repeating: 0, count: n)
        sum.withUnsafeBufferPointer { s in
            mixed.withUnsafeMutableBufferPointer { mx in
                divisor.withUnsafeMutableBufferPointer { dv in
                    for (index, v) in vectors.enumerated() {
                        let scale = scales[index], coefficient = coefficients[index]
                        v.withUnsafeBufferPointer { p in
                            if rounding.isExact {
                                for i in 0..<n {
                                    let agree = agrees(p[i], sum: s[i])
                                    mx[i] += agree ? p[i] * scale : 0
                                    dv[i] += agree ? coefficient : 0
                                }
                            } else {
                                for i in 0..<n {
                                    let agree = agrees(p[i], sum: s[i])
                                    mx[i] += agree ? rounding(p[i] * scale) : 0
                                    dv[i] += agree ? coefficient : 0
                                }
                            }
                        }
                    }
                }
            }
        }
        return (mixed, divisor)
    }
}
