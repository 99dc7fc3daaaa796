import AmalgamCore

/// Where archive members' parameters live, and how a candidate child is built from them.
///
/// A genome is one flat ordered vector of parameters. It may be one array in memory
/// (`FlatGenomeStore`) or many memory-mapped tensors of a checkpoint on disk; the engine only names
/// slots, so an implementation may keep members wherever suits their size. The store holds `slotCount`
/// archive slots (zero genomes at first), the seeds, and one candidate.
public protocol GenomeStore: AnyObject {
    /// Parameters in each genome's flat order.
    var parameterCount: Int { get }
    /// Number of seed genomes available to `.seed(_)`.
    var seedCount: Int { get }
    /// Inner products of two archive slots over the flat order.
    func innerProducts(_ a: Int, _ b: Int) throws(SearchError) -> InnerProducts
    /// Builds the candidate from `recipe`, then adds `mutation` if given.
    func makeCandidate(_ recipe: ChildRecipe, mutation: Mutation?) throws(SearchError)
    /// Puts the candidate into archive slot `slot`, replacing the member there.
    func keepCandidate(inSlot slot: Int) throws(SearchError)
}

/// Scores a store's candidate: one score in [0, 1] per training example.
public protocol CandidateScorer {
    /// The store whose candidate this scorer reads.
    associatedtype Store: GenomeStore
    /// Number of training examples.
    var exampleCount: Int { get }
    /// Writes the candidate's score on every training example into `scores`.
    func scoreCandidate(of store: Store, into scores: UnsafeMutableBufferPointer<Float>) throws(SearchError)
}

/// Errors of the search layer.
public enum SearchError: Error, Equatable, CustomStringConvertible {
    /// A configuration value is out of range.
    case invalidConfiguration(key: String, reason: String)
    /// A data file is missing or malformed.
    case badData(path: String, reason: String)
    /// A seed or member has the wrong number of parameters.
    case parameterCountMismatch(expected: Int, found: Int, what: String)
    /// A run folder (database or genome file) cannot be created, read or continued.
    case runFolder(path: String, reason: String)
    /// A key of a configuration file (`amalgam evolve CONFIG.yml`) is unknown, missing or out of range.
    case config(path: String, key: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidConfiguration(key, reason): return "invalid M2N2 setting `\(key)`: \(reason)"
        case let .badData(path, reason): return "\(path): \(reason)"
        case let .parameterCountMismatch(expected, found, what):
            return "\(what) has \(found) parameters, expected \(expected): all genomes must share one layout"
        case let .runFolder(path, reason): return "\(path): \(reason)"
        case let .config(path, key, reason): return "\(path): `\(key)`: \(reason)"
        }
    }
}

/// `amalgam evolve` configurations are read with AmalgamCore's configuration reader; its errors are `.config`.
extension SearchError: ConfigErrorReporting {}
