import AmalgamCore
import Foundation

/// One source model's dataset as DAM reads it: a size and a way to gather examples into a batch.
public struct DAMDataset<Batch> {
    /// Examples in the dataset.
    public let count: Int
    /// The batch of the examples at these indices.
    public let batch: ([Int]) -> Batch

    /// A dataset of `count` examples.
    public init(count: Int, batch: @escaping ([Int]) -> Batch) {
        self.count = count
        self.batch = batch
    }
}

/// What training has cost so far, in passes of one batch through one model.
public struct DAMPassCount: Sendable, Equatable, Codable {
    /// Teacher forward passes (one per source and step).
    public var teacherForward = 0
    /// Merged-model forward passes (one per source and step).
    public var mergedForward = 0
    /// Merged-model backward passes (one per source and step).
    public var mergedBackward = 0
    /// Examples (rows) through the merged model's forward pass.
    public var mergedExamples = 0
    /// Examples (rows) through the teachers.
    public var teacherExamples = 0

    /// No passes yet.
    public init() {}
}

/// A snapshot for progress display.
public struct DAMProgress: Sendable {
    /// Steps done.
    public var step: Int
    /// Steps to do.
    public var steps: Int
    /// The last step's loss.
    public var loss: DAMLoss
}

/// DAM's training loop, family-independent: each step draws one batch per source dataset, evaluates
/// `DAMObjective`, clips the gradient's global norm, and updates the coefficients with AdamW or MoFO.
public final class DAMTrainer<Family: DAMFamily> {
    /// The run's settings.
    public let configuration: DAMConfiguration
    /// The models being merged.
    public let family: Family
    /// One dataset per source.
    public let datasets: [DAMDataset<Family.Batch>]
    /// Where the coefficients live.
    public let layout: DAMLayout
    /// The raw coefficients m (and bias scalars), in `layout`.
    public private(set) var coefficients: [Float]
    /// Steps done.
    public private(set) var step = 0
    /// The loss of every step done.
    public private(set) var history: [DAMLoss] = []
    /// Passes so far.
    public private(set) var passes = DAMPassCount()
    /// Gradient norm (before clipping) of every step.
    public private(set) var gradientNorms: [Double] = []
    let optimiser: DAMOptimiser
    let order: DAMBatchOrder

    /// A trainer at step 0 with the configured initial coefficients.
    public init(configuration: DAMConfiguration, family: Family, datasets: [DAMDataset<Family.Batch>]) throws(DAMError) {
        try configuration.validate()
        guard datasets.count == family.sourceCount else {
            throw .invalidConfiguration(key: "datasets", reason: "\(datasets.count) datasets for \(family.sourceCount) sources: DAM needs one per source")
        }
        for (k, d) in datasets.enumerated() where d.count < 1 {
            throw .invalidConfiguration(key: "datasets", reason: "dataset \(k) is empty")
        }
        self.configuration = configuration
        self.family = family
        self.datasets = datasets
        layout = DAMLayout(layers: family.layers, sourceCount: family.sourceCount)
        coefficients = layout.initialCoefficients(
            configuration.initialisation,
            biasValue: configuration.biasInitialisation.value(sourceCount: family.sourceCount), seed: configuration.seed)
        optimiser = DAMOptimiser(configuration: configuration, layout: layout)
        order = DAMBatchOrder(datasetSizes: datasets.map(\.count), batchSize: configuration.batchSize, seed: configuration.seed)
    }

    /// The batches of step `step`, one per source.
    public func batches(step: Int) -> [Family.Batch] {
        datasets.enumerated().map { k, d in d.batch(order.indices(dataset: k, step: step)) }
    }

    /// Runs one step: loss, gradient, then AdamW/MoFO (which clips the global norm first).
    @discardableResult
    public func trainStep() throws(DAMError) -> DAMLoss {
        let objective = DAMObjective(configuration: configuration)
        let batches = self.batches(step: step)
        let (loss, gradient) = try objective.evaluate(family: family, coefficients: coefficients, batches: batches)
        guard loss.total.isFinite else { throw .diverged(step: step, loss: loss.total) }
        let norm = optimiser.update(&coefficients, gradient: gradient)
        let rows = batches.count * configuration.batchSize
        passes.teacherForward += batches.count
        passes.mergedForward += batches.count
        passes.mergedBackward += batches.count
        passes.mergedExamples += rows
        passes.teacherExamples += rows
        history.append(loss)
        gradientNorms.append(norm)
        step += 1
        return loss
    }

    /// Trains until `configuration.steps` (or step `stop`, when earlier), saving state to `runFolder`
    /// every `checkpointEvery` steps and at the end.
    public func run(runFolder: DAMRunFolder? = nil, until stop: Int? = nil, progress: (DAMProgress) -> Void = { _ in }) throws(DAMError) {
        while step < min(configuration.steps, stop ?? .max) {
            let loss = try trainStep()
            progress(DAMProgress(step: step, steps: configuration.steps, loss: loss))
            if let runFolder, configuration.checkpointEvery > 0, step % configuration.checkpointEvery == 0 {
                try runFolder.saveState(of: self)
            }
        }
        if let runFolder { try runFolder.saveState(of: self) }
    }

    /// Merges the family at the current coefficients (the family then holds the merged model).
    public func mergeCurrent() throws(DAMError) {
        try family.merge(scales: layout.scales(of: coefficients, f: configuration.scaleFunction))
    }

    /// Restores a saved state (from `DAMRunFolder.loadState`).
    func restore(_ state: DAMRunFolder.State) throws(DAMError) {
        guard state.coefficients.count == layout.count else {
            throw .invalidConfiguration(key: "coefficients", reason: "saved \(state.coefficients.count), layout \(layout.count)")
        }
        coefficients = state.coefficients
        step = state.step
        history = state.history
        passes = state.passes
        gradientNorms = state.gradientNorms
    }
}
