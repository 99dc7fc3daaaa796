import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamModels
import AmalgamSearch
import Foundation

/// CMA-ES recipe search (mergekit-evolve's genome) on the digits MLP: two specialists (digits 0–4 and
/// 5–9), optionally fine-tuned from a common base, merged by task_arithmetic, ties, dare_ties or slerp;
/// fitness the accuracy on the union training set.
///
/// The MLP's flat vector is seen as a two-layer checkpoint: `model.layers.0.dense.{weight,bias}` (W1 as
/// 64 × 256, b1) and `model.layers.1.dense.{weight,bias}` (W2 as 256 × 10, b2), with layer granularity 1,
/// so the genome has one group per layer (W1/b1, W2/b2) × model × method parameter.
public struct DigitsRecipeExperiment: Sendable {
    /// Model references used in recipes and as folder names when written out.
    public static let baseName = "base", lowName = "digits-0-4", highName = "digits-5-9"

    public let classifier: MLPClassifier
    /// The common base, when the specialists were fine-tuned from one (needed by the task-vector methods).
    public let base: [Float]?
    /// The specialists on digits 0–4 and 5–9.
    public let low: [Float], high: [Float]
    /// Union training and test sets, and the test set's halves (digits 0–4, 5–9).
    public let train: MLPBatch, test: MLPBatch
    public let testLow: MLPBatch, testHigh: MLPBatch
    /// Where the models come from, for reports.
    public let source: String

    /// An experiment on the given models and data.
    public init(classifier: MLPClassifier, base: [Float]?, low: [Float], high: [Float], train: MLPBatch, test: MLPBatch,
                source: String) throws(SearchError) {
        for (name, v) in [("base", base), ("digits 0-4", low), ("digits 5-9", high)] {
            if let v, v.count != classifier.parameterCount {
                throw .parameterCountMismatch(expected: classifier.parameterCount, found: v.count, what: "the \(name) model")
            }
        }
        self.classifier = classifier
        self.base = base
        self.low = low
        self.high = high
        self.train = train
        self.test = test
        testLow = test.filter { $0 < 5 }
        testHigh = test.filter { $0 >= 5 }
        self.source = source
    }

    /// The methods this pair can be searched with (task-vector methods need the base).
    public var methods: [String] { base == nil ? ["slerp", "linear"] : ["task_arithmetic", "ties", "dare_ties", "slerp"] }

    /// The flat vector as named tensors.
    public func tensors(_ flat: [Float]) -> [NamedTensor] {
        let (i, h, o) = (classifier.inputs, classifier.hidden, classifier.outputs)
        let w1 = i * h, w2 = h * o
        return [
            NamedTensor(name: "model.layers.0.dense.weight", shape: [i, h], values: Array(flat[0..<w1])),
            NamedTensor(name: "model.layers.0.dense.bias", shape: [h], values: Array(flat[w1..<(w1 + h)])),
            NamedTensor(name: "model.layers.1.dense.weight", shape: [h, o], values: Array(flat[(w1 + h)..<(w1 + h + w2)])),
            NamedTensor(name: "model.layers.1.dense.bias", shape: [o], values: Array(flat[(w1 + h + w2)...])),
        ]
    }

    /// The tensors back as the classifier's flat vector.
    public func flat(_ tensors: [NamedTensor]) -> [Float] { tensors.flatMap(\.values) }

    /// The models held in memory for merging.
    public func inMemoryModels() throws(SearchError) -> InMemoryMerge {
        var models = [(reference: Self.lowName, tensors: tensors(low)), (reference: Self.highName, tensors: tensors(high))]
        if let base { models.insert((Self.baseName, tensors(base)), at: 0) }
        return try InMemoryMerge(models: models)
    }

    /// mergekit-evolve's genome for `method` over the two specialists (base when the method needs one),
    /// one group per layer, recipes in float32.
    public func genome(method: String) throws(SearchError) -> MergeGenome {
        let needsBase = ["task_arithmetic", "ties", "dare_ties"].contains(method)
        if needsBase, base == nil {
            throw .invalidConfiguration(key: "method", reason: "\(method) needs a base model; these seeds have none (use slerp or linear)")
        }
        return try MergeGenome(models: [Self.lowName, Self.highName], mergeMethod: method,
                               baseModel: needsBase ? Self.baseName : nil, layerCount: 2, layerGranularity: 1, dtype: "float32")
    }

    /// One finished search.
    public struct RunResult: Sendable {
        public var method: String
        public var seed: UInt64
        /// Forward passes over the union training set (one per candidate scored).
        public var passes: Int
        public var restarts: Int
        public var trainAccuracy: Double
        public var testAccuracy: Double, testLowAccuracy: Double, testHighAccuracy: Double
        public var seconds: Double
        /// The best candidate's recipe.
        public var recipe: MergeRecipe
        /// The best candidate's merged model (flat vector).
        public var model: [Float]
    }

    /// A CMA-ES search with `budget` forward passes for `method`, seeded with `seed`.
    public func run(method: String, seed: UInt64, budget: Int) throws(SearchError) -> RunResult {
        let start = DispatchTime.now().uptimeNanoseconds
        let merger = try inMemoryModels()
        var configuration = RecipeSearchConfiguration(genome: try genome(method: method),
                                                      fitness: WeightedFitness(["train_accuracy": 1]), budget: budget)
        configuration.cmaes.seed = seed
        var search = try RecipeSearch(configuration: configuration)
        let scorer = MLPSparseScoring(classifier: classifier, batch: train)
        var scores = [Float](repeating: 0, count: train.count)
        try search.run { recipes throws(SearchError) in
            try recipes.map { recipe throws(SearchError) -> [String: Double] in
                let merged = flat(try merger.merge(recipe, seed: configuration.mergeSeed))
                merged.withUnsafeBufferPointer { p in
                    scores.withUnsafeMutableBufferPointer { scorer.scoreCorrect(parameters: p.baseAddress!, into: $0) }
                }
                return ["train_accuracy": Double(scores.reduce(0, +)) / Double(train.count)]
            }
        }
        guard let best = search.best else { throw .invalidConfiguration(key: "budget", reason: "\(budget) passes do not fit one generation") }
        let recipe = try configuration.genome.recipe(best.genotype)
        let model = flat(try merger.merge(recipe, seed: configuration.mergeSeed))
        return RunResult(method: method, seed: seed, passes: search.evaluations, restarts: search.restart,
                         trainAccuracy: best.fitness, testAccuracy: classifier.accuracy(parameters: model, batch: test),
                         testLowAccuracy: classifier.accuracy(parameters: model, batch: testLow),
                         testHighAccuracy: classifier.accuracy(parameters: model, batch: testHigh),
                         seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, recipe: recipe, model: model)
    }

    /// Accuracies of a flat model: union test, test 0–4, test 5–9, union train.
    public func accuracies(_ model: [Float]) -> (test: Double, low: Double, high: Double, train: Double) {
        (classifier.accuracy(parameters: model, batch: test), classifier.accuracy(parameters: model, batch: testLow),
         classifier.accuracy(parameters: model, batch: testHigh), classifier.accuracy(parameters: model, batch: train))
    }

    /// Writes the models as safetensors folders (`DIR/base`, `DIR/digits-0-4`, `DIR/digits-5-9`), so that a
    /// recipe's YAML run from `DIR` by `amalgam merge` gives the model the search scored.
    public func writeModels(to directory: String) throws(SearchError) {
        var models = [(Self.lowName, low), (Self.highName, high)]
        if let base { models.insert((Self.baseName, base), at: 0) }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .badData(path: directory, reason: "cannot create the folder: \(error.localizedDescription)")
        }
        for (name, flatModel) in models {
            let folder = directory + "/" + name
            do {
                let output = try AtomicOutput(path: folder, overwrite: true)
                try output.makeWorkingDirectory()
                try SafetensorsWriter.save(tensors(flatModel).map { ($0.name, Tensor($0.values, shape: $0.shape)) },
                                           to: output.workingPath + "/model.safetensors")
                let config = JSONValue.object(JSONObject([
                    ("architectures", .array([.string("AmalgamDigitsMLP")])), ("model_type", .string("amalgam_mlp")),
                    ("input_size", .int(classifier.inputs)), ("hidden_size", .int(classifier.hidden)),
                    ("num_labels", .int(classifier.outputs)), ("num_hidden_layers", .int(2)), ("dtype", .string("float32")),
                ]))
                try writeFileAtomically(config.pythonText() + "\n", to: output.workingPath + "/config.json")
                try output.commit()
            } catch {
                throw .badData(path: folder, reason: "cannot write the model: \(error)")
            }
        }
    }
}
