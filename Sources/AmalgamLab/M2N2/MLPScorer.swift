import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamModels
import AmalgamSearch

/// Scores a `FlatGenomeStore`'s candidate as an MLP classifier: 1 per correctly labelled example.
public final class MLPScorer: CandidateScorer {
    /// The classifier's shape.
    public let classifier: MLPClassifier
    /// The training examples.
    public let batch: MLPBatch
    private let workspace: MLPWorkspace
    /// The fused sparse kernel, when the shape allows it (it does for digits).
    private let fused: MLPSparseScoring?

    public var exampleCount: Int { batch.count }

    /// A scorer of `classifier` on `batch`.
    public init(classifier: MLPClassifier, batch: MLPBatch) {
        self.classifier = classifier
        self.batch = batch
        workspace = MLPWorkspace(classifier: classifier, count: batch.count)
        fused = MLPSparseScoring.supports(classifier) ? MLPSparseScoring(classifier: classifier, batch: batch) : nil
    }

    public func scoreCandidate(of store: FlatGenomeStore, into scores: UnsafeMutableBufferPointer<Float>) throws(SearchError) {
        guard store.parameterCount == classifier.parameterCount else {
            throw .parameterCountMismatch(expected: classifier.parameterCount, found: store.parameterCount, what: "the candidate")
        }
        store.candidate.withUnsafeBufferPointer { p in
            if let fused { return fused.scoreCorrect(parameters: p.baseAddress!, into: scores) }
            classifier.scoreCorrect(parameters: p.baseAddress!, batch: batch, workspace: workspace, into: scores)
        }
    }

    /// Scores any parameter vector (not a store's candidate): 1 per correctly labelled example, the same
    /// values `scoreCandidate` gives for the same parameters.
    public func score(parameters: UnsafePointer<Float>, into scores: UnsafeMutableBufferPointer<Float>) {
        if let fused { return fused.scoreCorrect(parameters: parameters, into: scores) }
        classifier.scoreCorrect(parameters: parameters, batch: batch, workspace: workspace, into: scores)
    }
}
