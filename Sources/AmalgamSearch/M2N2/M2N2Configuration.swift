/// How children are made from parents.
public enum CrossoverKind: String, Sendable, Codable, CaseIterable {
    /// Split-point slerp (M2N2).
    case splitPoint = "split-point"
    /// Plain slerp with one weight (the "no split point" ablation).
    case slerp
    /// No crossover: the child is a copy of parent 1, then mutated (the "no crossover" ablation).
    case none
}

/// The published variants of M2N2 and its ablations.
public enum M2N2Variant: String, Sendable, Codable, CaseIterable {
    /// Competition (α = 1), attraction, split-point crossover.
    case m2n2 = "M2N2"
    /// Both parents drawn independently by fitness.
    case noAttraction = "no attraction"
    /// Plain slerp instead of split-point crossover.
    case noSplitPoint = "no split point"
    /// Mutation only (needs mutation to move at all).
    case noCrossover = "no crossover"
    /// A plain GA: α = 0 (fitness = accuracy count), no attraction.
    case ga = "GA"
    /// A plain GA without crossover: α = 0, no attraction, the child a mutated copy of parent 1.
    case gaNoCrossover = "GA no crossover"
}

/// Settings of one M2N2 run, checked once by `validate()`.
public struct M2N2Configuration: Sendable, Equatable, Codable {
    /// Archive slots.
    public var archiveSize = 20
    /// Competition exponent α: 1 for M2N2, 0 for a plain GA.
    public var alpha = 1.0
    /// Whether parent 2 is chosen by attraction to parent 1 (else by fitness, independently).
    public var attraction = true
    /// How children are made.
    public var crossover = CrossoverKind.splitPoint
    /// Standard deviation of the Gaussian mutation, or nil for none.
    public var mutationStandardDeviation: Float?
    /// Children to create and score (forward passes over the training set; the seeds are extra).
    public var forwardPasses = 10_000
    /// Seed of the run's generator.
    public var seed: UInt64 = 0

    /// The default M2N2 settings.
    public init() {}

    /// The settings of a published variant.
    public init(variant: M2N2Variant, forwardPasses: Int, mutationStandardDeviation: Float?, seed: UInt64) {
        self.forwardPasses = forwardPasses
        self.mutationStandardDeviation = mutationStandardDeviation
        self.seed = seed
        switch variant {
        case .m2n2: break
        case .noAttraction: attraction = false
        case .noSplitPoint: crossover = .slerp
        case .noCrossover: crossover = .none
        case .ga: alpha = 0; attraction = false
        case .gaNoCrossover: alpha = 0; attraction = false; crossover = .none
        }
    }

    /// Fails on values the engine cannot run with.
    public func validate() throws(SearchError) {
        if archiveSize < 2 { throw .invalidConfiguration(key: "archive_size", reason: "\(archiveSize) < 2") }
        if !(alpha >= 0) || !alpha.isFinite { throw .invalidConfiguration(key: "alpha", reason: "\(alpha) is not ≥ 0") }
        if forwardPasses < 0 { throw .invalidConfiguration(key: "forward_passes", reason: "\(forwardPasses) < 0") }
        if let m = mutationStandardDeviation, !(m >= 0) || !m.isFinite {
            throw .invalidConfiguration(key: "mutation", reason: "\(m) is not a standard deviation ≥ 0")
        }
    }
}
