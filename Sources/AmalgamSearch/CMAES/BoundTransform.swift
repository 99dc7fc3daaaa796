/// Box bounds handled as the `cma` package's default `BoundTransform` does: CMA-ES samples an unbounded
/// genotype and the objective sees its image under a periodic map that is the identity well inside
/// `[lower, upper]`, quadratic near each bound and mirrored beyond it
/// (`cma.transformations.BoxConstraintsLinQuadTransformation`). No penalty is added.
public struct BoundTransform: Sendable, Equatable, Codable {
    /// Lower and upper bound per coordinate (±infinity: unbounded on that side).
    public let lower: [Double], upper: [Double]
    /// Widths of the quadratic zones: min((u − l)/2, max(1, |bound|)/20), 1 for an infinite bound.
    let marginLower: [Double], marginUpper: [Double]

    /// A transform for the given bounds (equal lengths; lower < upper in every coordinate).
    public init(lower: [Double], upper: [Double]) throws(SearchError) {
        guard lower.count == upper.count else {
            throw .invalidConfiguration(key: "bounds", reason: "\(lower.count) lower bounds but \(upper.count) upper bounds; give one pair per coordinate")
        }
        for i in lower.indices where !(lower[i] < upper[i]) {
            throw .invalidConfiguration(key: "bounds[\(i)]", reason: "lower bound \(lower[i]) is not below upper bound \(upper[i])")
        }
        self.lower = lower
        self.upper = upper
        marginLower = lower.indices.map { lower[$0].isFinite ? min((upper[$0] - lower[$0]) / 2, max(1, abs(lower[$0])) / 20) : 1 }
        marginUpper = upper.indices.map { upper[$0].isFinite ? min((upper[$0] - lower[$0]) / 2, max(1, abs(upper[$0])) / 20) : 1 }
    }

    /// The feasible point the objective sees for genotype `x`.
    public func transform(_ x: [Double]) -> [Double] {
        var y = x
        for i in y.indices {
            let lb = lower[i], ub = upper[i], al = marginLower[i], au = marginUpper[i]
            if y[i] < lb - 2 * al - (ub - lb) / 2 || y[i] > ub + 2 * au + (ub - lb) / 2 {
                let period = 2 * (ub - lb + al + au), start = lb - 2 * al - (ub - lb) / 2
                if period.isFinite { y[i] -= period * ((y[i] - start) / period).rounded(.down) }
            }
            if y[i] > ub + au { y[i] -= 2 * (y[i] - ub - au) }
            if y[i] < lb - al { y[i] += 2 * (lb - al - y[i]) }
            if y[i] < lb + al { y[i] = lb + (y[i] - (lb - al)) * (y[i] - (lb - al)) / 4 / al }
            if y[i] > ub - au { y[i] = ub - (y[i] - (ub + au)) * (y[i] - (ub + au)) / 4 / au }
        }
        return y
    }

    /// A genotype that maps to the feasible point `y` (values outside the bounds are first clipped).
    public func inverse(_ y: [Double]) -> [Double] {
        var x = y
        for i in x.indices {
            let lb = lower[i], ub = upper[i], al = marginLower[i], au = marginUpper[i]
            let v = min(max(y[i], lb), ub)
            if v < lb + al {
                x[i] = lb - al + 2 * (al * (v - lb)).squareRoot()
            } else if v > ub - au {
                x[i] = ub + au - 2 * (au * (ub - v)).squareRoot()
            } else {
                x[i] = v
            }
        }
        return x
    }
}
