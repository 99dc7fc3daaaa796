import AmalgamCore

/// Fitness as mergekit-evolve scores a merged model: the weighted sum of its metrics (higher is better).
public struct WeightedFitness: Sendable, Codable, Equatable {
    /// Weight of each metric, by name.
    public var weights: [String: Double]

    public init(_ weights: [String: Double]) { self.weights = weights }

    /// Σ weight × metric; every weighted metric must be present.
    public func score(_ metrics: [String: Double]) throws(SearchError) -> Double {
        var total = 0.0
        for (name, weight) in weights.sorted(by: { $0.key < $1.key }) {
            guard let value = metrics[name] else {
                throw .invalidConfiguration(key: name, reason: "the fitness weights metric `\(name)` but the evaluation gave only \(metrics.keys.sorted().joined(separator: ", "))")
            }
            total += weight * value
        }
        return total
    }
}

/// One evaluated candidate: where it came from, its genotype, metrics and fitness.
public struct EvaluatedCandidate: Sendable, Codable, Equatable {
    /// Restart (0 for the first run) and generation within it.
    public var restart: Int, generation: Int
    public var genotype: [Double]
    public var metrics: [String: Double]
    public var fitness: Double
}

/// What a recipe search is asked to do.
public struct RecipeSearchConfiguration: Sendable, Codable, Equatable {
    public var genome: MergeGenome
    public var fitness: WeightedFitness
    /// Initial step size (mergekit-evolve: 1/6).
    public var sigma0 = 1.0 / 6
    /// CMA-ES options (seed, population, covariance, bounds); `maxEvaluations` is replaced by `budget`.
    public var cmaes = CMAESOptions()
    /// Evaluations (merged models scored) at most, over all restarts; a generation that would pass it is not started.
    public var budget: Int
    /// Restart CMA-ES from x₀ with a doubled population when it stops before the budget (IPOP, as
    /// `cma.fmin2(restarts=…)`); without, the search ends with the first run, as mergekit-evolve's does.
    public var restarts = true
    /// `amalgam merge --seed` of every candidate's merge (random methods draw the same masks for every candidate).
    public var mergeSeed: UInt64 = 0

    public init(genome: MergeGenome, fitness: WeightedFitness, budget: Int) {
        self.genome = genome
        self.fitness = fitness
        self.budget = budget
    }
}

/// CMA-ES over a `MergeGenome`: ask a generation, turn each genotype into a recipe, let the caller merge
/// and score it, tell CMA-ES the negated fitness. Its whole state (CMA-ES with its generator, every
/// evaluated candidate) is `Codable`, so a run can be kept in a run folder and resumed.
public struct RecipeSearch: Sendable, Codable {
    public let configuration: RecipeSearchConfiguration
    /// The current CMA-ES run.
    public private(set) var cmaes: CMAES
    /// Restarts so far.
    public private(set) var restart = 0
    /// Every candidate evaluated, in order.
    public private(set) var evaluated: [EvaluatedCandidate] = []
    /// Whether the budget (or, without restarts, the first run) is spent.
    public private(set) var isFinished = false

    /// A search starting at mergekit-evolve's x₀.
    public init(configuration: RecipeSearchConfiguration) throws(SearchError) {
        guard configuration.budget >= 1 else { throw .invalidConfiguration(key: "budget", reason: "must be at least 1") }
        self.configuration = configuration
        cmaes = try CMAES(x0: configuration.genome.initialGenotype(), sigma0: configuration.sigma0, options: configuration.cmaes)
    }

    /// Evaluations so far.
    public var evaluations: Int { evaluated.count }

    /// The best candidate so far (the first of equals).
    public var best: EvaluatedCandidate? {
        evaluated.indices.max { evaluated[$0].fitness < evaluated[$1].fitness || (evaluated[$0].fitness == evaluated[$1].fitness && $0 > $1) }
            .map { evaluated[$0] }
    }

    /// Runs one generation: `evaluate` gets the candidates' recipes and returns each one's metrics.
    public mutating func step(evaluate: ([MergeRecipe]) throws(SearchError) -> [[String: Double]]) throws(SearchError) {
        guard !isFinished else { return }
        if cmaes.isStopped {
            guard configuration.restarts else { isFinished = true; return }
            restart += 1
            var options = configuration.cmaes
            options.populationSize = cmaes.parameters.populationSize * 2
            options.seed = SeedDerivation.seed(configuration.cmaes.seed, stream: restart)
            cmaes = try CMAES(x0: configuration.genome.initialGenotype(), sigma0: configuration.sigma0, options: options)
        }
        guard evaluations + cmaes.parameters.populationSize <= configuration.budget else { isFinished = true; return }
        let genotypes = cmaes.ask()
        let recipes = try genotypes.map { g throws(SearchError) in try configuration.genome.recipe(g) }
        let metrics = try evaluate(recipes)
        guard metrics.count == genotypes.count else {
            throw .invalidConfiguration(key: "evaluate", reason: "returned \(metrics.count) results for \(genotypes.count) candidates")
        }
        var values: [Double] = []
        for (g, m) in zip(genotypes, metrics) {
            let f = try configuration.fitness.score(m)
            evaluated.append(EvaluatedCandidate(restart: restart, generation: cmaes.state.generation, genotype: g, metrics: m, fitness: f))
            values.append(-f)
        }
        try cmaes.tell(values)
    }

    /// Runs generations until the budget is spent.
    public mutating func run(evaluate: ([MergeRecipe]) throws(SearchError) -> [[String: Double]]) throws(SearchError) {
        while !isFinished { try step(evaluate: evaluate) }
    }
}
