import Foundation

/// Which covariance matrix CMA-ES learns.
public enum CovarianceModel: String, Sendable, Codable, CaseIterable {
    /// Full below `CMAESOptions.fullCovarianceLimit` dimensions, separable above.
    case automatic
    /// A full n × n matrix, eigendecomposed every so many evaluations (O(n²) memory, O(n³) per decomposition).
    case full
    /// Diagonal only (sep-CMA-ES, Ros & Hansen 2008) with the larger sep learning rates: O(n) per sample.
    case separable
}

/// The strategy parameters of CMA-ES for a dimension and population size: Hansen's tutorial (2016,
/// arXiv:1604.00772, Table 1) with the constants of the `cma` package 4.x (its defaults, active CMA on).
public struct CMAESParameters: Sendable, Equatable {
    /// Dimension n.
    public let dimension: Int
    /// Population size λ.
    public let populationSize: Int
    /// Parents μ = ⌊λ/2⌋.
    public let parentCount: Int
    /// Recombination weights, all λ of them: μ positive summing to 1, then the negative (active) ones.
    public let weights: [Double]
    /// Variance-effective selection mass μ_eff of the positive weights.
    public let effectiveMass: Double
    /// Step-size path decay c_σ and damping d_σ.
    public let cSigma: Double, dSigma: Double
    /// Covariance path decay c_c, rank-one rate c_1 and rank-μ rate c_μ (the separable ones when separable).
    public let cc: Double, c1: Double, cmu: Double
    /// Whether the covariance is diagonal.
    public let separable: Bool
    /// E‖N(0, I)‖, exactly.
    public let chiN: Double
    /// Generations between eigendecompositions of a full covariance: 1/(c_1 + c_μ)/n/10, as `cma`.
    public let eigenGap: Double

    /// The parameters for dimension `n`, population `lambda` (nil: 4 + ⌊3 ln n⌋) and covariance model.
    /// `active` keeps the negative weights (the `cma` default, `CMA_active`).
    public init(dimension n: Int, populationSize lambda: Int? = nil, separable: Bool, active: Bool = true) {
        precondition(n >= 1, "CMA-ES needs at least one dimension")
        let N = Double(n)
        let lam = lambda ?? (4 + Int(3 * log(N)))
        precondition(lam >= 2, "CMA-ES needs a population of at least 2")
        dimension = n
        populationSize = lam
        parentCount = lam / 2
        self.separable = separable

        // Raw log weights for every rank: ln((λ+1)/2) − ln i (positive for the best ⌊λ/2⌋).
        let raw = (1...lam).map { log((Double(lam) + 1) / 2) - log(Double($0)) }
        let positive = raw.filter { $0 > 0 }, negative = raw.filter { $0 < 0 }
        let sumPositive = positive.reduce(0, +)
        let mueff = sumPositive * sumPositive / positive.map { $0 * $0 }.reduce(0, +)
        effectiveMass = mueff

        // Learning rates (cma's `CMAParameters.set` and `sampler.parameters`).
        let fullC1 = min(1, Double(lam) / 6) * 2 / ((N + 1.3) * (N + 1.3) + mueff)
        let fullCmu = min(1 - fullC1, 2 * (0.25 + mueff + 1 / mueff - 2) / ((N + 2) * (N + 2) + 2 * mueff / 2))
        if separable {
            cc = (1 + 1 / N + mueff / N) / (N.squareRoot() + 1 / N + 2 * mueff / N)
            c1 = 1 / (N + 2 * N.squareRoot() + mueff / N)
            cmu = min(1 - c1, (0.25 + mueff + 1 / mueff - 2) / (N + 4 * N.squareRoot() + mueff / 2))
        } else {
            cc = (4 + mueff / N) / (N + (4 + 2 * mueff / N))
            c1 = fullC1
            cmu = fullCmu
        }
        cSigma = min(0.5, (mueff + 2) / (N + mueff + 3))
        // cma's CSA damping: 0.5 + 1/2 (no mirrors) + 2·max(0, a·√((μ_eff−1)/(n+1)) − 1) + c_σ,
        // with a = max(1, 3(1 − 0.5^(n/9))).
        let inner = max(1, 3 * (1 - pow(0.5, N / 9)))
        dSigma = 1 + 2 * max(0, inner * ((mueff - 1) / (N + 1)).squareRoot() - 1) + cSigma
        chiN = (2.0).squareRoot() * exp(lgamma((N + 1) / 2) - lgamma(N / 2))
        eigenGap = 1 / (fullC1 + fullCmu + 1e-23) / N / 10

        // Negative weights scaled so that Σ|w⁻| = min(1 + c1/cμ, 1 + 2μ⁻_eff/(μ_eff + 2), (1 − c1 − cμ)/(n cμ)).
        var w = raw.map { $0 > 0 ? $0 / sumPositive : 0 }
        if active, !negative.isEmpty, cmu > 0 {
            let sumNegative = -negative.reduce(0, +)
            let mueffMinus = sumNegative * sumNegative / negative.map { $0 * $0 }.reduce(0, +)
            let target = min(1 + c1 / cmu, (1 - c1 - cmu) / cmu / N, 1 + 2 * mueffMinus / (mueff + 2))
            w = raw.map { $0 > 0 ? $0 / sumPositive : $0 / sumNegative * target }
        }
        weights = w
    }
}
