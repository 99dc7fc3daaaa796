import AmalgamCore
import AmalgamSearch
import Dispatch

/// The baselines of the M2N2 digits figure that are not M2N2 variants, as the release
/// (SakanaAI/natural_niches, `map_elites_fn.py`, `cma_es_fn.py`) runs them.
public enum DigitsBaseline: String, Sendable, Codable, CaseIterable {
    /// MAP-Elites on a 10 × 10 grid over (odd-digit, even-digit) training accuracy.
    case mapElites = "MAP-Elites"
    /// CMA-ES on the flat parameter vector, population 20, σ₀ = 0.01, fitness −training accuracy.
    case cmaES = "CMA-ES"
}

/// One point of an accuracy-against-forward-passes curve.
public struct TracePoint: Sendable, Codable, Equatable {
    /// Forward passes (children scored) so far; the seeds are not counted.
    public var pass: Int
    /// Training accuracy of the member the method reports (the best on training).
    public var trainAccuracy: Double
    /// Its test accuracy.
    public var testAccuracy: Double

    /// A point.
    public init(pass: Int, trainAccuracy: Double, testAccuracy: Double) {
        self.pass = pass
        self.trainAccuracy = trainAccuracy
        self.testAccuracy = testAccuracy
    }
}

/// MAP-Elites as the M2N2 release runs it on digits: a 10 × 10 grid of cells indexed by
/// ⌊10 · odd-digit training accuracy⌋ and ⌊10 · even-digit training accuracy⌋, each holding its best
/// genome by quality (overall training accuracy). Both parents are drawn ∝ quality among the occupied
/// cells (without replacement once the qualities sum to 2 or more, as `jax.random.choice` is called), the
/// child is their split-point slerp (M2N2's crossover), mutated by N(0, σ²) from scratch. A child enters an
/// empty cell, or a cell whose quality it beats. A descriptor of exactly 1.0 (index 10) lies outside the grid:
/// the release's `.at[10, j].set` is dropped by JAX, and so is that child here (counted in `dropped`).
public final class DigitsMapElites {
    /// Cells per side.
    public static let side = 10
    /// Genomes: slot `i · 10 + j` is cell (odd bin i, even bin j).
    public let store: FlatGenomeStore
    /// Quality (training accuracy) of each cell; 0 for an empty one.
    public private(set) var qualities: [Double]
    /// Which cells hold a genome.
    public private(set) var occupied: [Bool]
    /// Children scored so far.
    public private(set) var passes = 0
    /// Children dropped because a descriptor was exactly 1.0.
    public private(set) var dropped = 0
    private var generator: SeededGenerator
    private let scorer: MLPScorer
    private let isOdd: [Bool]
    private let oddCount: Int, evenCount: Int
    private let mutationStandardDeviation: Float?
    private var row: [Float]

    /// An empty grid over the training batch `train`, seeds `seeds` not yet inserted.
    public init(classifier: MLPClassifier, train: MLPBatch, seeds: [[Float]], mutationStandardDeviation: Float?,
                seed: UInt64) throws(SearchError) {
        store = try FlatGenomeStore(parameterCount: classifier.parameterCount, slotCount: Self.side * Self.side, seeds: seeds)
        scorer = MLPScorer(classifier: classifier, batch: train)
        isOdd = train.labels.map { $0 % 2 == 1 }
        oddCount = isOdd.filter { $0 }.count
        evenCount = train.count - oddCount
        qualities = [Double](repeating: 0, count: Self.side * Self.side)
        occupied = [Bool](repeating: false, count: Self.side * Self.side)
        self.mutationStandardDeviation = mutationStandardDeviation
        generator = SeededGenerator(seed: seed)
        row = [Float](repeating: 0, count: train.count)
    }

    /// The cell of descriptors (odd-digit accuracy, even-digit accuracy), or nil when one is 1.0 (index 10,
    /// outside the grid). The bins are taken in Float, as the release's float32 `floor(acc * 10)`.
    public static func cell(odd: Float, even: Float) -> Int? {
        let i = Int((odd * 10).rounded(.down)), j = Int((even * 10).rounded(.down))
        guard (0..<side).contains(i), (0..<side).contains(j) else { return nil }
        return i * side + j
    }

    /// The descriptors and quality of the candidate just scored into `row`, in float32 as the release computes them.
    private func describe() -> (odd: Float, even: Float, quality: Float) {
        var odd = 0, even = 0
        for j in 0..<row.count where row[j] > 0 { if isOdd[j] { odd += 1 } else { even += 1 } }
        let oddAccuracy = Float(odd) / Float(oddCount), evenAccuracy = Float(even) / Float(evenCount)
        let quality = (oddAccuracy * Float(oddCount) + evenAccuracy * Float(evenCount)) / Float(oddCount + evenCount)
        return (oddAccuracy, evenAccuracy, quality)
    }

    /// Scores the store's candidate and offers it to its cell.
    private func offer() throws(SearchError) {
        try row.withUnsafeMutableBufferPointer { (r: inout UnsafeMutableBufferPointer<Float>) throws(SearchError) in
            try scorer.scoreCandidate(of: store, into: r)
        }
        let d = describe()
        guard let cell = Self.cell(odd: d.odd, even: d.even) else { dropped += 1; return }
        if !occupied[cell] || Double(d.quality) > qualities[cell] {
            occupied[cell] = true
            qualities[cell] = Double(d.quality)
            try store.keepCandidate(inSlot: cell)
        }
    }

    /// Scores and places the seeds (not counted as passes).
    public func insertSeeds() throws(SearchError) {
        for i in 0..<store.seedCount {
            try store.makeCandidate(.seed(i), mutation: nil)
            try offer()
        }
    }

    /// Two parents, a child, its score and its placement.
    public func step() throws(SearchError) {
        let cells = (0..<occupied.count).filter { occupied[$0] }
        guard !cells.isEmpty else { throw .invalidConfiguration(key: "seeds", reason: "MAP-Elites needs a seed inside the grid before its first child") }
        let weights = cells.map { qualities[$0] }
        let first = draw(weights)
        var second: Int
        if weights.reduce(0, +) < 2 {
            second = draw(weights)
        } else {
            var rest = weights
            rest[first] = 0
            second = draw(rest, excluding: first)
        }
        let a = cells[first], b = cells[second]
        let split = generator.integer(below: store.parameterCount)
        let ratio = generator.uniform()
        let omega = try store.innerProducts(a, b).angle
        let mutation = mutationStandardDeviation.map { Mutation(standardDeviation: $0, seed: generator.next()) }
        try store.makeCandidate(.crossover(a: a, b: b, plan: CrossoverPlan(splitPoint: split, ratio: ratio, omega: omega)),
                                mutation: mutation)
        try offer()
        passes += 1
    }

    /// The occupied cell of highest quality (the first in row-major order on ties, as `jnp.where` lists them).
    public var best: Int? {
        var best: Int?
        for k in 0..<occupied.count where occupied[k] && (best == nil || qualities[k] > qualities[best!]) { best = k }
        return best
    }

    /// An index drawn ∝ `weights`; uniformly (over all but `excluding`) when every weight is zero.
    private func draw(_ weights: [Double], excluding: Int? = nil) -> Int {
        if weights.contains(where: { $0 > 0 }) { return generator.categorical(weights) }
        let choices = (0..<weights.count).filter { $0 != excluding }
        return choices.isEmpty ? 0 : choices[generator.integer(below: choices.count)]
    }
}

extension DigitsExperiment {
    /// Population size of the release's CMA-ES.
    public static let cmaESPopulation = 20

    /// One MAP-Elites run: the setting's seeds (from scratch N(0, 0.01²) from `seed`, or the two pre-trained
    /// seeds), `forwardPasses` children, a trace point every `traceEvery` passes. The result is the test
    /// accuracy of the best cell.
    public func runMapElites(setting: Setting, seed: UInt64, forwardPasses: Int? = nil,
                             traceEvery: Int = 100) throws(SearchError) -> RunResult {
        let start = DispatchTime.now().uptimeNanoseconds
        let budget = forwardPasses ?? setting.forwardPasses
        let grid = try DigitsMapElites(classifier: classifier, train: train, seeds: seeds(setting: setting, runSeed: seed),
                                       mutationStandardDeviation: setting.mutationStandardDeviation, seed: seed)
        try grid.insertSeeds()
        var trace: [TracePoint] = []
        func record() {
            guard let best = grid.best else { return }
            trace.append(TracePoint(pass: grid.passes, trainAccuracy: grid.qualities[best],
                                    testAccuracy: classifier.accuracy(parameters: grid.store.slots[best], batch: test)))
        }
        record()
        while grid.passes < budget {
            try grid.step()
            if grid.passes % traceEvery == 0 || grid.passes == budget { record() }
        }
        guard let last = trace.last else {
            throw .invalidConfiguration(key: "seeds", reason: "no seed fell inside MAP-Elites' grid")
        }
        return RunResult(testAccuracy: last.testAccuracy, trainAccuracy: last.trainAccuracy,
                         seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, attractionFallbacks: 0,
                         trace: trace)
    }

    /// One CMA-ES run from scratch, as the release's `cma_es_fn.py`: x₀ one N(0, 0.01²) vector (the first
    /// from-scratch seed of `seed`), σ₀ = 0.01, population 20, minimising −training accuracy for
    /// `forwardPasses` / 20 generations (stopping conditions ignored, as the release asks and tells for a
    /// fixed number of generations). The result is the test accuracy of the best candidate ever evaluated.
    ///
    /// `covariance` is `.separable` by default: the release's pycma learns a full 19,210 × 19,210 covariance
    /// (2.95 GB in float64, an O(n³) eigendecomposition every two generations at this n), which does not fit
    /// this machine's budget; see docs/m2n2.md.
    public func runCMAES(seed: UInt64, forwardPasses: Int? = nil, covariance: CovarianceModel = .separable,
                         traceEvery: Int = 100) throws(SearchError) -> (result: RunResult, best: [Float]) {
        let start = DispatchTime.now().uptimeNanoseconds
        let budget = forwardPasses ?? Setting.scratch.forwardPasses
        let lambda = Self.cmaESPopulation
        guard budget % lambda == 0 else {
            throw .invalidConfiguration(key: "forward_passes", reason: "CMA-ES needs a budget divisible by its population \(lambda), not \(budget)")
        }
        var options = CMAESOptions(seed: seed)
        options.populationSize = lambda
        options.covariance = covariance
        let x0 = Self.gaussianSeeds(count: classifier.parameterCount, seed: seed)[0].map(Double.init)
        var es = try CMAES(x0: x0, sigma0: 0.01, options: options)
        let scorer = MLPScorer(classifier: classifier, batch: train)
        var row = [Float](repeating: 0, count: train.count)
        var candidate = [Float](repeating: 0, count: classifier.parameterCount)
        var trace: [TracePoint] = []
        var bestTest = 0.0
        func record() {
            let best = es.state.bestPoint.map(Float.init)
            bestTest = classifier.accuracy(parameters: best, batch: test)
            trace.append(TracePoint(pass: es.state.evaluations, trainAccuracy: -es.state.bestValue, testAccuracy: bestTest))
        }
        for _ in 0..<(budget / lambda) {
            let asked = es.ask()
            var values: [Double] = []
            values.reserveCapacity(lambda)
            for x in asked {
                for i in 0..<x.count { candidate[i] = Float(x[i]) }
                candidate.withUnsafeBufferPointer { p in
                    row.withUnsafeMutableBufferPointer { scorer.score(parameters: p.baseAddress!, into: $0) }
                }
                values.append(-Double(row.reduce(0, +)) / Double(train.count))
            }
            let before = es.state.evaluations
            try es.tell(values)
            if es.state.evaluations / traceEvery > before / traceEvery || es.state.evaluations == budget { record() }
        }
        if trace.last?.pass != es.state.evaluations { record() }
        return (RunResult(testAccuracy: bestTest, trainAccuracy: -es.state.bestValue,
                          seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, attractionFallbacks: 0,
                          trace: trace),
                es.state.bestPoint.map(Float.init))
    }
}
