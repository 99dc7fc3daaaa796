import AmalgamCore
/// What one step of the search did: the lineage of one child.
public struct M2N2Step: Sendable, Equatable {
    /// Pass number (0-based) of this child; seeds have none.
    public var pass: Int?
    /// Seed index, for a seed insertion.
    public var seed: Int?
    /// Parent slots (parent 1 first); empty for a seed.
    public var parents: [Int]
    /// The crossover plan, when there was a crossover.
    public var plan: CrossoverPlan?
    /// Seed of the child's mutation noise, when mutated.
    public var mutationSeed: UInt64?
    /// The child's mean score on the training examples.
    public var meanScore: Double
    /// The child's fitness in the replacement competition (archive + child).
    public var fitness: Double
    /// The slot the child now occupies, or nil when it was the weakest and was dropped.
    public var slot: Int?
}

/// A snapshot for progress display.
public struct M2N2Progress: Sendable, Equatable {
    /// Children scored so far.
    public var passes: Int
    /// The budget.
    public var budget: Int
    /// Best mean training score in the archive.
    public var bestScore: Double
    /// Mean of the archive members' mean training scores.
    public var meanScore: Double
    /// Fraction of training examples solved (score > 0) by at least one member.
    public var coverage: Double
    /// Largest fitness in the archive (competition-shared: Σ_j S_kj / z_j).
    public var bestFitness: Double
    /// Mean fitness of the archive members.
    public var meanFitness: Double
    /// Diversity: the mean over pairs of archive members of the fraction of examples on which their scores
    /// differ (Σ_j |S_aj − S_bj| / examples); 0 when all members solve the same examples.
    public var diversity: Double
}

/// Model Merging of Natural Niches: a steady-state evolution of an archive of genomes under resource
/// competition, with parents chosen by fitness and mates by attraction, children by split-point slerp.
///
/// The engine only names archive slots; the `Store` builds candidates and the `Scorer` scores them, so
/// the same loop runs a 19,210-parameter MLP in memory or LLM checkpoints on disk.
public final class M2N2Search<Scorer: CandidateScorer> {
    /// The run's settings.
    public let configuration: M2N2Configuration
    /// Where the genomes live.
    public let store: Scorer.Store
    /// How candidates are scored.
    public let scorer: Scorer
    /// Scores: rows `0..<archiveSize` are the archive, the last row is the candidate.
    public private(set) var scores: ScoreMatrix
    /// The run's only source of randomness.
    public private(set) var generator: SeededGenerator
    /// Children scored so far.
    public private(set) var passes = 0
    /// How often attraction was zero for every member (parent 1 solves all that the others solve), and
    /// parent 2 was drawn by fitness instead.
    public private(set) var attractionFallbacks = 0

    private var archiveSize: Int { configuration.archiveSize }

    /// A search over `store`'s slots (all zero genomes, all-zero scores) with no seed inserted yet.
    public init(configuration: M2N2Configuration, store: Scorer.Store, scorer: Scorer) throws(SearchError) {
        try configuration.validate()
        self.configuration = configuration
        self.store = store
        self.scorer = scorer
        scores = ScoreMatrix(rows: configuration.archiveSize + 1, columns: scorer.exampleCount)
        generator = SeededGenerator(seed: configuration.seed)
    }

    /// Restores a saved state (archive scores, generator, pass count); the store must hold the same archive.
    public func restore(scores saved: ScoreMatrix, generator saved2: SeededGenerator, passes saved3: Int,
                        attractionFallbacks saved4: Int) throws(SearchError) {
        guard saved.rows == scores.rows, saved.columns == scores.columns else {
            throw .invalidConfiguration(key: "scores", reason: "saved matrix is \(saved.rows)×\(saved.columns), expected \(scores.rows)×\(scores.columns)")
        }
        scores = saved
        generator = saved2
        passes = saved3
        attractionFallbacks = saved4
    }

    /// Scores seed `index` and inserts it with the normal replacement rule.
    @discardableResult
    public func insertSeed(_ index: Int) throws(SearchError) -> M2N2Step {
        try store.makeCandidate(.seed(index), mutation: nil)
        let (mean, fitness, slot) = try scoreAndReplace(archiveSums: archiveColumnSums())
        return M2N2Step(pass: nil, seed: index, parents: [], plan: nil, mutationSeed: nil, meanScore: mean, fitness: fitness, slot: slot)
    }

    /// Creates, scores and offers one child to the archive.
    @discardableResult
    public func step() throws(SearchError) -> M2N2Step {
        let archiveSums = archiveColumnSums()
        let inverse = Competition.inverseCrowding(columnSums: archiveSums, alpha: configuration.alpha)
        let fitness = Competition.fitness(scores, rows: archiveSize, inverseCrowding: inverse)
        let parent1 = draw(fitness)
        var parent2: Int
        if configuration.attraction {
            let g = Competition.attraction(scores, rows: archiveSize, to: parent1, inverseCrowding: inverse)
            if g.contains(where: { $0 > 0 }) {
                parent2 = generator.categorical(g)
            } else {
                attractionFallbacks += 1
                parent2 = draw(fitness)
            }
        } else {
            parent2 = draw(fitness)
        }
        let recipe: ChildRecipe
        var plan: CrossoverPlan?
        switch configuration.crossover {
        case .none:
            recipe = .copy(slot: parent1)
            parent2 = parent1
        case .splitPoint, .slerp:
            let split = configuration.crossover == .splitPoint
                ? generator.integer(below: store.parameterCount) : store.parameterCount
            let ratio = generator.uniform()
            let omega = try store.innerProducts(parent1, parent2).angle
            plan = CrossoverPlan(splitPoint: split, ratio: ratio, omega: omega)
            recipe = .crossover(a: parent1, b: parent2, plan: plan!)
        }
        let mutation = configuration.mutationStandardDeviation.map {
            Mutation(standardDeviation: $0, seed: generator.next())
        }
        try store.makeCandidate(recipe, mutation: mutation)
        let (mean, childFitness, slot) = try scoreAndReplace(archiveSums: archiveSums)
        let record = M2N2Step(pass: passes, seed: nil, parents: configuration.crossover == .none ? [parent1] : [parent1, parent2],
                              plan: plan, mutationSeed: mutation?.seed, meanScore: mean, fitness: childFitness, slot: slot)
        passes += 1
        return record
    }

    /// Runs until the budget is spent, reporting progress every `every` passes.
    public func run(every: Int = 1000, progress: (M2N2Progress) -> Void = { _ in }) throws(SearchError) {
        while passes < configuration.forwardPasses {
            try step()
            if passes % every == 0 || passes == configuration.forwardPasses { progress(self.progress) }
        }
    }

    /// The archive slot with the best mean training score (the first on ties).
    public var bestMember: Int {
        let means = scores.rowMeans()
        var best = 0
        for k in 1..<archiveSize where means[k] > means[best] { best = k }
        return best
    }

    /// The current progress snapshot.
    public var progress: M2N2Progress {
        let means = scores.rowMeans().prefix(archiveSize)
        let sums = archiveColumnSums()
        let fitness = Competition.fitness(
            scores, rows: archiveSize,
            inverseCrowding: Competition.inverseCrowding(columnSums: sums, alpha: configuration.alpha))
        let n = scores.columns
        var disagreement = 0.0
        scores.values.withUnsafeBufferPointer { v in
            for a in 0..<archiveSize {
                for b in (a + 1)..<archiveSize {
                    var d: Float = 0
                    for j in 0..<n { d += abs(v[a * n + j] - v[b * n + j]) }
                    disagreement += Double(d)
                }
            }
        }
        let pairs = Double(archiveSize * (archiveSize - 1) / 2)
        return M2N2Progress(
            passes: passes, budget: configuration.forwardPasses, bestScore: means.max() ?? 0,
            meanScore: means.reduce(0, +) / Double(archiveSize),
            coverage: Double(sums.filter { $0 > 0 }.count) / Double(max(sums.count, 1)),
            bestFitness: fitness.max() ?? 0, meanFitness: fitness.reduce(0, +) / Double(archiveSize),
            diversity: disagreement / (pairs * Double(max(n, 1))))
    }

    /// Σ_k S_kj over the archive rows, summed in slot order (the same bytes on every run and resume).
    private func archiveColumnSums() -> [Double] {
        let n = scores.columns
        var sums = [Double](repeating: 0, count: n)
        scores.values.withUnsafeBufferPointer { v in
            sums.withUnsafeMutableBufferPointer { s in
                for k in 0..<archiveSize {
                    let row = v.baseAddress! + k * n
                    for j in 0..<n { s[j] += Double(row[j]) }
                }
            }
        }
        return sums
    }

    /// A slot drawn ∝ `weights`; uniformly when every weight is zero (nothing solves anything).
    private func draw(_ weights: [Double]) -> Int {
        weights.contains(where: { $0 > 0 }) ? generator.categorical(weights) : generator.integer(below: weights.count)
    }

    /// Scores the candidate into the last row, then removes the weakest of archive + candidate; `archiveSums`
    /// are the archive's `archiveColumnSums()` (the archive has not changed since the step computed them).
    private func scoreAndReplace(archiveSums: [Double]) throws(SearchError) -> (mean: Double, fitness: Double, slot: Int?) {
        let n = scores.columns
        let last = archiveSize
        try scores.values.withUnsafeMutableBufferPointer { (v: inout UnsafeMutableBufferPointer<Float>) throws(SearchError) in
            try scorer.scoreCandidate(of: store, into: UnsafeMutableBufferPointer(rebasing: v[last * n ..< (last + 1) * n]))
        }
        var sums = archiveSums
        for j in 0..<n { sums[j] += Double(scores.values[last * n + j]) }
        let inverse = Competition.inverseCrowding(columnSums: sums, alpha: configuration.alpha)
        let fitness = Competition.fitness(scores, inverseCrowding: inverse)
        let weakest = Competition.weakest(fitness)
        let mean = scores.row(last).reduce(0.0) { $0 + Double($1) } / Double(max(n, 1))
        guard weakest < archiveSize else { return (mean, fitness[last], nil) }
        scores.values.withUnsafeMutableBufferPointer { v in
            for j in 0..<n { v[weakest * n + j] = v[last * n + j] }
        }
        try store.keepCandidate(inSlot: weakest)
        return (mean, fitness[last], weakest)
    }
}
