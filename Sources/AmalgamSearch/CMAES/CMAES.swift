import AmalgamCore
import Foundation

/// Everything a CMA-ES run remembers between generations, so a search can be saved and resumed bit for
/// bit: the distribution, both evolution paths, the generator's state and the asked, not yet told,
/// candidates.
public struct CMAESState: Sendable, Codable, Equatable {
    /// Mean m of the search distribution (genotype space).
    public var mean: [Double]
    /// Step size σ.
    public var sigma: Double
    /// Covariance C: n × n row-major when full, its diagonal when separable.
    public var covariance: [Double]
    /// Eigenvectors B of C as of the last decomposition (row-major, column k for axis k); empty when separable.
    public var eigenvectors: [Double]
    /// Axis lengths D (square roots of C's eigenvalues, or of its diagonal) as of the last decomposition.
    public var axisLengths: [Double]
    /// Evolution paths p_c (covariance) and p_σ (step size).
    public var pathC: [Double], pathSigma: [Double]
    /// Generations told.
    public var generation: Int
    /// Candidates evaluated (told).
    public var evaluations: Int
    /// Generation of the last eigendecomposition.
    public var decomposedAt: Int
    /// The `SeededGenerator`'s four state words.
    public var generatorState: [UInt64]
    /// Genotypes asked and not yet told, in the order `ask` returned them.
    public var pending: [[Double]]
    /// Best value seen and its (feasible) point.
    public var bestValue: Double
    public var bestPoint: [Double]
    /// Best value of each recent generation, newest first (for `tolFun`).
    public var recentBest: [Double]
    /// Why the run stopped, once it has.
    public var stop: CMAESStop?
}

/// CMA-ES (Hansen's tutorial, with the `cma` package's defaults: log weights, active covariance update,
/// cumulative step-size adaptation, h_σ stall, lazy eigendecomposition) behind an ask/tell interface.
/// It minimises: give it −fitness to maximise.
///
/// Every draw comes from one `SeededGenerator` seeded from `options.seed`, so the same seed and values
/// give the same candidates on every machine and at any thread count.
public struct CMAES: Sendable {
    /// The options the run was started with.
    public let options: CMAESOptions
    /// Strategy parameters derived from the dimension and options.
    public let parameters: CMAESParameters
    /// Bounds, when the options give them.
    public let bounds: BoundTransform?
    /// The run's state (save it with `Codable`; resume with `init(options:state:)`).
    public private(set) var state: CMAESState

    /// Dimension n.
    public var dimension: Int { parameters.dimension }
    /// Whether the run has met a stopping condition.
    public var isStopped: Bool { state.stop != nil }
    /// The mean as a feasible point (`cma`'s `xfavorite`).
    public var meanPoint: [Double] { bounds?.transform(state.mean) ?? state.mean }

    /// Starts at `x0` (a feasible point) with step size `sigma0`.
    public init(x0: [Double], sigma0: Double, options: CMAESOptions = CMAESOptions()) throws(SearchError) {
        guard !x0.isEmpty else { throw .invalidConfiguration(key: "x0", reason: "CMA-ES needs at least one coordinate") }
        guard sigma0 > 0, sigma0.isFinite else {
            throw .invalidConfiguration(key: "sigma0", reason: "must be a positive number, not \(sigma0)")
        }
        let (parameters, bounds) = try Self.derive(dimension: x0.count, options: options)
        let n = x0.count
        var identity = [Double](repeating: 0, count: parameters.separable ? n : n * n)
        if parameters.separable { identity = [Double](repeating: 1, count: n) } else { for i in 0..<n { identity[i * n + i] = 1 } }
        let g = SeededGenerator(seed: options.seed)
        self.options = options
        self.parameters = parameters
        self.bounds = bounds
        state = CMAESState(
            mean: bounds?.inverse(x0) ?? x0, sigma: sigma0, covariance: identity,
            eigenvectors: parameters.separable ? [] : identity, axisLengths: [Double](repeating: 1, count: n),
            pathC: [Double](repeating: 0, count: n), pathSigma: [Double](repeating: 0, count: n),
            generation: 0, evaluations: 0, decomposedAt: 0,
            generatorState: [g.state.0, g.state.1, g.state.2, g.state.3], pending: [],
            bestValue: .infinity, bestPoint: x0, recentBest: [], stop: nil)
    }

    /// Resumes a saved run.
    public init(options: CMAESOptions, state: CMAESState) throws(SearchError) {
        (parameters, bounds) = try Self.derive(dimension: state.mean.count, options: options)
        guard state.generatorState.count == 4 else {
            throw .invalidConfiguration(key: "generatorState", reason: "needs 4 words, found \(state.generatorState.count)")
        }
        self.options = options
        self.state = state
    }

    private static func derive(dimension n: Int, options: CMAESOptions) throws(SearchError) -> (CMAESParameters, BoundTransform?) {
        if let lambda = options.populationSize, lambda < 2 {
            throw .invalidConfiguration(key: "populationSize", reason: "must be at least 2, not \(lambda)")
        }
        let separable = options.covariance == .separable
            || (options.covariance == .automatic && n > CMAESOptions.fullCovarianceLimit)
        let parameters = CMAESParameters(dimension: n, populationSize: options.populationSize, separable: separable,
                                         active: options.active)
        var bounds: BoundTransform?
        if options.lowerBounds != nil || options.upperBounds != nil {
            func expand(_ b: [Double]?, _ fill: Double) -> [Double] {
                guard let b else { return [Double](repeating: fill, count: n) }
                return b.count == 1 ? [Double](repeating: b[0], count: n) : b
            }
            let lower = expand(options.lowerBounds, -.infinity), upper = expand(options.upperBounds, .infinity)
            guard lower.count == n, upper.count == n else {
                throw .invalidConfiguration(key: "bounds", reason: "give 1 or \(n) values per side, not \(lower.count) and \(upper.count)")
            }
            bounds = try BoundTransform(lower: lower, upper: upper)
        }
        return (parameters, bounds)
    }

    /// The next generation's λ candidates, as feasible points for the objective. Call `tell` with their
    /// values (in this order) before asking again.
    public mutating func ask() -> [[Double]] {
        precondition(state.pending.isEmpty, "CMA-ES: tell the values of the last generation before asking again")
        let n = dimension
        if !parameters.separable, Double(state.generation) >= Double(state.decomposedAt) + parameters.eigenGap,
           state.generation != state.decomposedAt {
            decompose()
        }
        var g = SeededGenerator(state: (state.generatorState[0], state.generatorState[1], state.generatorState[2], state.generatorState[3]))
        var genotypes: [[Double]] = []
        genotypes.reserveCapacity(parameters.populationSize)
        for _ in 0..<parameters.populationSize {
            var z = [Double](repeating: 0, count: n)
            for i in 0..<n { z[i] = Double(g.normal()) * state.axisLengths[i] }
            var x = state.mean
            if parameters.separable {
                for i in 0..<n { x[i] += state.sigma * z[i] }
            } else {
                for i in 0..<n {
                    var s = 0.0
                    for k in 0..<n { s += state.eigenvectors[i * n + k] * z[k] }
                    x[i] += state.sigma * s
                }
            }
            genotypes.append(x)
        }
        state.generatorState = [g.state.0, g.state.1, g.state.2, g.state.3]
        state.pending = genotypes
        return genotypes.map { bounds?.transform($0) ?? $0 }
    }

    /// Updates the distribution from the values of the candidates of the last `ask`, in that order
    /// (lower is better; NaN counts as worst), then checks the stopping conditions.
    public mutating func tell(_ values: [Double]) throws(SearchError) {
        guard values.count == state.pending.count, !state.pending.isEmpty else {
            throw .invalidConfiguration(key: "values", reason: "tell needs one value per asked candidate (\(state.pending.count)), got \(values.count)")
        }
        let n = dimension, p = parameters, lam = values.count
        let f = values.map { $0.isNaN ? Double.infinity : $0 }
        let order = (0..<lam).sorted { f[$0] < f[$1] || (f[$0] == f[$1] && $0 < $1) }
        let sorted = order.map { state.pending[$0] }
        state.generation += 1
        state.evaluations += lam
        if f[order[0]] < state.bestValue {
            state.bestValue = f[order[0]]
            state.bestPoint = bounds?.transform(sorted[0]) ?? sorted[0]
        }

        // Mean: weighted recombination of the μ best.
        let oldMean = state.mean
        var mean = [Double](repeating: 0, count: n)
        for r in 0..<p.parentCount { for i in 0..<n { mean[i] += p.weights[r] * sorted[r][i] } }
        state.mean = mean
        let sigma = state.sigma
        let meanShift = (0..<n).map { (mean[$0] - oldMean[$0]) / sigma }

        // Step-size path, with the decomposition from before this update.
        let csFactor = (p.cSigma * (2 - p.cSigma) * p.effectiveMass).squareRoot()
        let whitened = inverseSquareRoot(meanShift)
        for i in 0..<n { state.pathSigma[i] = (1 - p.cSigma) * state.pathSigma[i] + csFactor * whitened[i] }
        let psSquared = state.pathSigma.reduce(0) { $0 + $1 * $1 }
        let hsig = psSquared / (1 - pow(1 - p.cSigma, 2 * Double(state.generation))) / Double(n) - 1 < 1 + 4 / (Double(n) + 1)

        // Covariance path and update (rank one + rank μ, negative weights normalised by Mahalanobis length).
        let ccFactor = (p.cc * (2 - p.cc) * p.effectiveMass).squareRoot()
        for i in 0..<n { state.pathC[i] = (1 - p.cc) * state.pathC[i] + (hsig ? ccFactor * meanShift[i] : 0) }
        let c1a = p.c1 * (1 - (hsig ? 0 : 1) * p.cc * (2 - p.cc))
        var rankWeights = [Double](repeating: 0, count: lam)
        var steps: [[Double]] = []
        for r in 0..<lam where p.weights[r] != 0 {
            let y = (0..<n).map { (sorted[r][$0] - oldMean[$0]) / sigma }
            var w = p.cmu * p.weights[r]
            if w < 0 {
                let length = inverseSquareRoot(y).reduce(0) { $0 + $1 * $1 }.squareRoot()
                w *= Double(n) / ((length + 1e-9) * (length + 1e-9))
            }
            rankWeights[steps.count] = w
            steps.append(y)
        }
        let decay = 1 - c1a - p.cmu * p.weights.reduce(0, +)
        if p.separable {
            for i in 0..<n {
                var c = decay * state.covariance[i] + p.c1 * state.pathC[i] * state.pathC[i]
                for (k, y) in steps.enumerated() { c += rankWeights[k] * y[i] * y[i] }
                state.covariance[i] = c
            }
            state.axisLengths = state.covariance.map { max($0, 0).squareRoot() }
        } else {
            for i in 0..<n {
                for j in i..<n {
                    var c = decay * state.covariance[i * n + j] + p.c1 * state.pathC[i] * state.pathC[j]
                    for (k, y) in steps.enumerated() { c += rankWeights[k] * y[i] * y[j] }
                    state.covariance[i * n + j] = c
                    state.covariance[j * n + i] = c
                }
            }
        }

        // Cumulative step-size adaptation, the change limited to a factor e either way.
        let change = p.cSigma / p.dSigma * (psSquared.squareRoot() / p.chiN - 1)
        state.sigma *= exp(min(1, max(-1, change)))
        state.pending = []

        state.recentBest.insert(f[order[0]], at: 0)
        if Double(state.recentBest.count) > 10 + 30 * Double(n) / Double(lam) { state.recentBest.removeLast() }
        state.stop = stopCondition(sortedValues: order.map { f[$0] })
    }

    /// C^{-1/2}·v with the current decomposition.
    private func inverseSquareRoot(_ v: [Double]) -> [Double] {
        let n = dimension
        if parameters.separable { return (0..<n).map { v[$0] / state.axisLengths[$0] } }
        let b = state.eigenvectors, d = state.axisLengths
        var projected = [Double](repeating: 0, count: n)
        for k in 0..<n {
            var s = 0.0
            for i in 0..<n { s += b[i * n + k] * v[i] }
            projected[k] = s / d[k]
        }
        var out = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var s = 0.0
            for k in 0..<n { s += b[i * n + k] * projected[k] }
            out[i] = s
        }
        return out
    }

    /// Eigendecomposition of C into B and D; a C that lost positive definiteness gets the smallest old
    /// eigenvalue added to its diagonal first, as `cma` does.
    private mutating func decompose() {
        let n = dimension
        var (values, vectors) = SymmetricEigen.decompose(state.covariance, dimension: n)
        if values[0] <= 0 {
            let shift = state.axisLengths.map { $0 * $0 }.min()!
            for i in 0..<n { state.covariance[i * n + i] += shift }
            (values, vectors) = SymmetricEigen.decompose(state.covariance, dimension: n)
        }
        state.eigenvectors = vectors
        state.axisLengths = values.map { max($0, 0).squareRoot() }
        state.decomposedAt = state.generation
    }

    private func stopCondition(sortedValues: [Double]) -> CMAESStop? {
        if let target = options.targetValue, state.bestValue <= target { return .targetValue }
        if let maximum = options.maxEvaluations, state.evaluations >= maximum { return .maxEvaluations }
        let n = dimension
        let currentRange = sortedValues.last! - sortedValues.first!
        let history = state.recentBest
        if state.generation > 1, currentRange < options.tolFun, history.max()! - history.min()! < options.tolFun { return .tolFun }
        let variances = parameters.separable ? state.covariance : (0..<n).map { state.covariance[$0 * n + $0] }
        if (0..<n).allSatisfy({ state.sigma * variances[$0].squareRoot() < options.tolX && state.sigma * abs(state.pathC[$0]) < options.tolX }) {
            return .tolX
        }
        if !parameters.separable, let large = state.axisLengths.max(), let small = state.axisLengths.min(), small > 0,
           (large / small) * (large / small) > options.tolConditionCov {
            return .tolConditionCov
        }
        return nil
    }
}

extension CMAES: Codable {
    private enum CodingKeys: String, CodingKey { case options, state }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(options: c.decode(CMAESOptions.self, forKey: .options), state: c.decode(CMAESState.self, forKey: .state))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(options, forKey: .options)
        try c.encode(state, forKey: .state)
    }
}
