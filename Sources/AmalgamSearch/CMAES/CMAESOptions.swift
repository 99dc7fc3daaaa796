/// What a CMA-ES run is asked to do: the `cma` package's options that matter here, with its defaults.
public struct CMAESOptions: Sendable, Codable, Equatable {
    /// Population size λ (nil: 4 + ⌊3 ln n⌋).
    public var populationSize: Int?
    /// Full or diagonal covariance; `.automatic` picks full up to `fullCovarianceLimit` dimensions.
    public var covariance: CovarianceModel = .automatic
    /// Keep the negative recombination weights (active CMA, `cma`'s default).
    public var active = true
    /// Box bounds per coordinate, handled by `BoundTransform` (nil: unbounded).
    public var lowerBounds: [Double]?
    public var upperBounds: [Double]?
    /// Stop once the best value is at or below this (`ftarget`).
    public var targetValue: Double?
    /// Stop once this many candidates have been evaluated (`maxfevals`; checked after each generation).
    public var maxEvaluations: Int?
    /// Stop when the values of the last generation and of the recent best values all lie within `tolFun` (`tolfun`).
    public var tolFun = 1e-11
    /// Stop when every coordinate's standard deviation and σ·|p_c| are below `tolX` (`tolx`).
    public var tolX = 1e-11
    /// Stop when the covariance's condition number passes this (`tolconditioncov`).
    public var tolConditionCov = 1e14
    /// Seed of the sampler's `SeededGenerator`.
    public var seed: UInt64 = 0

    /// Above this dimension `.automatic` learns a diagonal covariance: a full one needs about n² evaluations
    /// to learn, far beyond the budgets of merge-recipe searches.
    public static let fullCovarianceLimit = 100

    /// Defaults, with the given seed.
    public init(seed: UInt64 = 0) { self.seed = seed }
}

/// Why a CMA-ES run stopped.
public enum CMAESStop: String, Sendable, Codable, Equatable {
    /// The best value reached `targetValue`.
    case targetValue = "ftarget"
    /// `maxEvaluations` candidates were evaluated.
    case maxEvaluations = "maxfevals"
    /// The values are flat to `tolFun`.
    case tolFun = "tolfun"
    /// The distribution is smaller than `tolX`.
    case tolX = "tolx"
    /// The covariance became too ill-conditioned.
    case tolConditionCov = "tolconditioncov"
}
