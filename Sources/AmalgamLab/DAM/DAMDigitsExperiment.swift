import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamModels
import AmalgamSearch
import Foundation

/// DAM against the other ways of merging the digits pair (`DigitsPair`): the base, each specialist,
/// averaging, task arithmetic, TIES (AmalgamMerge's own methods on in-memory tensors), M2N2 seeded with the
/// two specialists, CMA-ES over mergekit-evolve recipes (`DigitsRecipeExperiment`), and DAM with dataset
/// k = specialist k's half of the training split. The searches (M2N2, CMA-ES, DAM) can be given one budget
/// of forward passes (`equalBudget`).
public struct DAMDigitsExperiment: Sendable {
    /// What one run compares.
    public struct Settings: Sendable {
        /// How the pair is trained.
        public var recipe = DigitsPair.Recipe.divergent
        /// DAM's settings (its `seed` is replaced by the run's; its `steps` by `equalBudget`'s when set).
        public var dam: DAMConfiguration
        /// Whether DAM runs.
        public var runDAM = true
        /// Whether DAM also runs with the released settings (`defaultDAM`, same steps and batch), as its own row.
        public var releasedDAM = true
        /// M2N2's budget in forward passes over the training set (0: skip M2N2).
        public var m2n2Passes = 10_000
        /// Methods searched by CMA-ES over mergekit-evolve's genome (empty: no CMA-ES).
        public var cmaesMethods: [String] = ["ties", "dare_ties", "task_arithmetic"]
        /// CMA-ES's budget in forward passes over the training set.
        public var cmaesPasses = 1_000
        /// When set, M2N2, CMA-ES and DAM all get this many forward passes (M2N2: the two seeds' scoring
        /// included; DAM: as many steps as fit, teacher passes included, see `damSteps(passes:batchSize:)`).
        /// Set it after `dam.batchSize`.
        public var equalBudget: Int? {
            didSet {
                guard let b = equalBudget else { return }
                m2n2Passes = max(b - 2, 1)  // scoring the two seeds takes 2 of the budget
                cmaesPasses = b
                dam.steps = DAMDigitsExperiment.damSteps(passes: b, batchSize: dam.batchSize)
            }
        }
        /// λ values tried for task arithmetic (picked by training accuracy on the union).
        public var lambdaGrid: [Double] = stride(from: 0.1, through: 1.5, by: 0.1).map { ($0 * 10).rounded() / 10 }
        /// Densities tried for TIES (with `lambdaGrid`).
        public var densityGrid: [Double] = [0.1, 0.2, 0.3, 0.5, 0.7, 1.0]

        /// The default comparison with DAM's settings `dam`.
        public init(dam: DAMConfiguration = DAMDigitsExperiment.tunedDAM) { self.dam = dam }
    }

    /// One method's result in one run.
    public struct MethodResult: Sendable, Codable {
        /// Method name as the table and the JSON show it.
        public var method: String
        /// Test accuracy on all digits and on each half.
        public var test: DigitsAccuracies
        /// Training accuracy on all digits and on each half.
        public var train: DigitsAccuracies
        /// Examples the method sent through a forward pass (teachers included), in units of the training
        /// split (1437 examples = 1 pass, as M2N2 counts).
        public var forwardPasses: Double
        /// Examples sent through a backward pass, in the same unit.
        public var backwardPasses: Double
        /// Wall time of the method (the pair's training excluded).
        public var seconds: Double
        /// CPU time of the process during the method (every thread).
        public var cpuSeconds: Double
        /// What was chosen (λ, density, best member, …).
        public var detail: String
    }

    /// DAM's settings chosen for the divergent pair without looking at the test split
    /// (`scripts/experiments/dam-digits-sweep.sh`: pairs trained on the first 80 % of the training split, settings
    /// ranked by DAM's union accuracy on the other 20 %, 3 runs, 5613 steps as at the 1,000-pass budget): lr 3e-3,
    /// T 1, f tanh, uniform 1/N initialisation, bias initialisation 1/N (94.8 ± 0.9 % on validation; lr 1e-3 ...
    /// 1e-1 with T 1 or 2 all scored 93.9-94.8, T 4 and f identity lower), otherwise `defaultDAM`.
    public static var tunedDAM: DAMConfiguration {
        var c = defaultDAM
        c.learningRate = 3e-3
        c.temperature = 1
        return c
    }

    /// DAM's settings for digits: the released loss (T = 2, λ_sim 0.01, tanh) and AdamW at lr 1e-3
    /// with clipping 1.0, 64 examples per source and step.
    public static var defaultDAM: DAMConfiguration {
        var c = DAMConfiguration()
        c.batchSize = 64
        c.steps = 500
        return c
    }

    /// DAM steps whose forward passes (per step: the merged model and the teacher on `batchSize` examples
    /// of each of the 2 sources) fit in `passes` passes over the 1437 training images.
    public static func damSteps(passes: Int, batchSize: Int, trainCount: Int = 1437) -> Int {
        passes * trainCount / (2 * 2 * batchSize)
    }

    /// The digits data.
    public let dataset: DigitsDataset
    /// What to compare.
    public var settings: Settings

    /// The experiment on `dataset`.
    public init(dataset: DigitsDataset, settings: Settings = Settings()) {
        self.dataset = dataset
        self.settings = settings
    }

    /// Run `run`: the pair from seed `run`, then every method (M2N2 and DAM seeded with `run`).
    public func run(_ run: Int, progress: (String) -> Void = { _ in }) throws -> [MethodResult] {
        let pair = DigitsPair.make(dataset: dataset, seed: UInt64(run), recipe: settings.recipe)
        var results: [MethodResult] = []
        var start = DispatchTime.now().uptimeNanoseconds, cpuStart = processCPUSeconds()
        func begin() {
            start = DispatchTime.now().uptimeNanoseconds
            cpuStart = processCPUSeconds()
        }
        func add(_ method: String, _ p: [Float], forward: Double = 0, backward: Double = 0, detail: String = "") {
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, cpu = processCPUSeconds() - cpuStart
            results.append(MethodResult(method: method, test: pair.testAccuracies(of: p), train: pair.trainAccuracies(of: p),
                                        forwardPasses: forward, backwardPasses: backward, seconds: seconds, cpuSeconds: cpu,
                                        detail: detail))
        }
        add("base", pair.base)
        add("specialist 0-4", pair.specialists[0])
        add("specialist 5-9", pair.specialists[1])

        begin()
        let average = try Self.merge(pair, method: "linear", global: [:], perModel: [["weight": .number(0.5)], ["weight": .number(0.5)]])
        add("average", average, detail: "linear 0.5/0.5")

        progress("task arithmetic")
        begin()
        let defaultTA = try Self.merge(pair, method: "task_arithmetic", global: [:], perModel: [["weight": .number(1)], ["weight": .number(1)]])
        add("task arithmetic (λ 1)", defaultTA, detail: "mergekit defaults, weight 1")
        begin()
        var best: (accuracy: Double, p: [Float], detail: String) = (-1, [], "")
        for lambda in settings.lambdaGrid {
            let p = try Self.merge(pair, method: "task_arithmetic", global: ["lambda": .number(lambda)],
                                   perModel: [["weight": .number(1)], ["weight": .number(1)]])
            let a = pair.classifier.accuracy(parameters: p, batch: pair.train)
            if a > best.accuracy { best = (a, p, "λ \(lambda)") }
        }
        add("task arithmetic (tuned)", best.p, forward: Double(settings.lambdaGrid.count),
            detail: best.detail + " of \(settings.lambdaGrid.count) by train accuracy")

        progress("TIES")
        begin()
        let defaultTIES = try Self.merge(pair, method: "ties", global: [:], perModel: [["weight": .number(1)], ["weight": .number(1)]])
        add("TIES (density 1, λ 1)", defaultTIES, detail: "mergekit defaults, weight 1")
        begin()
        best = (-1, [], "")
        for density in settings.densityGrid {
            for lambda in settings.lambdaGrid {
                let p = try Self.merge(pair, method: "ties", global: ["lambda": .number(lambda)],
                                       perModel: [["weight": .number(1), "density": .number(density)],
                                                  ["weight": .number(1), "density": .number(density)]])
                let a = pair.classifier.accuracy(parameters: p, batch: pair.train)
                if a > best.accuracy { best = (a, p, "density \(density), λ \(lambda)") }
            }
        }
        let grid = settings.densityGrid.count * settings.lambdaGrid.count
        add("TIES (tuned)", best.p, forward: Double(grid), detail: best.detail + " of \(grid) by train accuracy")

        if settings.m2n2Passes > 0 {
            progress("M2N2")
            begin()
            let (p, member) = try Self.m2n2(pair, passes: settings.m2n2Passes, seed: UInt64(run))
            add("M2N2", p, forward: Double(settings.m2n2Passes + 2),
                detail: "best-on-train archive member \(member), specialists as seeds, no mutation")
        }

        if !settings.cmaesMethods.isEmpty {
            let recipes = try DigitsRecipeExperiment(pair: pair)
            for method in settings.cmaesMethods {
                progress("CMA-ES \(method)")
                begin()
                let r = try recipes.run(method: method, seed: UInt64(run), budget: settings.cmaesPasses)
                add("CMA-ES \(method)", r.model, forward: Double(r.passes),
                    detail: "mergekit-evolve genome, fitness union train accuracy, \(r.restarts) IPOP restart(s)")
            }
        }

        guard settings.runDAM else { return results }
        var variants = [("DAM", settings.dam)]
        if settings.releasedDAM {
            var released = Self.defaultDAM
            released.steps = settings.dam.steps
            released.batchSize = settings.dam.batchSize
            variants.append(("DAM (released settings)", released))
        }
        for (name, configuration) in variants {
            progress(name)
            begin()
            var dam = configuration
            dam.seed = UInt64(run)
            let trainer = try Self.dam(pair, configuration: dam)
            try trainer.run()
            try trainer.mergeCurrent()
            let units = Double(pair.train.count)
            add(name, trainer.family.merged,
                forward: Double(trainer.passes.mergedExamples + trainer.passes.teacherExamples) / units,
                backward: Double(trainer.passes.mergedExamples) / units,
                detail: "\(dam.steps) steps × \(dam.sourceBatchDescription), \(dam.optimiser.rawValue) lr \(dam.learningRate), f \(dam.scaleFunction.rawValue), init \(dam.initialisation.rawValue), bias init \(dam.biasInitialisation.rawValue), T \(dam.temperature), final loss \(String(format: "%.4f", trainer.history.last?.total ?? .nan))")
        }
        return results
    }

    /// A DAM trainer on the pair: the specialists as sources, dataset k = training examples of half k.
    public static func dam(_ pair: DigitsPair, configuration: DAMConfiguration) throws(DAMError) -> DAMTrainer<DAMMLPFamily> {
        let family = try DAMMLPFamily(classifier: pair.classifier, sources: pair.specialists)
        let datasets = pair.trainHalves.map { half in DAMDataset(count: half.count) { half.rows($0) } }
        return try DAMTrainer(configuration: configuration, family: family, datasets: datasets)
    }

    /// M2N2 (α 1, attraction, split-point crossover, no mutation) seeded with the two specialists; returns
    /// the best-on-train archive member.
    static func m2n2(_ pair: DigitsPair, passes: Int, seed: UInt64) throws(SearchError) -> ([Float], Int) {
        let configuration = M2N2Configuration(variant: .m2n2, forwardPasses: passes, mutationStandardDeviation: nil, seed: seed)
        let store = try FlatGenomeStore(parameterCount: pair.classifier.parameterCount,
                                        slotCount: configuration.archiveSize, seeds: pair.specialists)
        let search = try M2N2Search(configuration: configuration, store: store,
                                    scorer: MLPScorer(classifier: pair.classifier, batch: pair.train))
        for i in 0..<store.seedCount { try search.insertSeed(i) }
        try search.run()
        return (store.slots[search.bestMember], search.bestMember)
    }

    /// Merges the pair's flat vectors tensor by tensor (W1, b1, W2, b2) with a registered AmalgamMerge
    /// method; task-arithmetic methods get the base as `base_model`.
    public static func merge(_ pair: DigitsPair, method name: String, global: [String: ParameterValue],
                             perModel: [[String: ParameterValue]]) throws(MergeError) -> [Float] {
        guard let method = MergeMethods.named(name) else {
            throw MergeError.method(method: name, tensor: "-", reason: "unknown method; known: \(MergeMethods.names.joined(separator: ", "))")
        }
        let c = pair.classifier
        let layers = c.linearLayers
        let tensors: [(name: String, range: Range<Int>, shape: [Int])] = layers.enumerated().flatMap { i, l in
            [("fc\(i + 1).weight", l.weight ..< l.weight + l.inputs * l.outputs, [l.inputs, l.outputs]),
             ("fc\(i + 1).bias", l.bias ..< l.bias + l.outputs, [l.outputs])]
        }
        var out = [Float](repeating: 0, count: c.parameterCount)
        for t in tensors {
            var inputs = zip(pair.specialists, perModel).enumerated().map { i, sp in
                MergeInput(model: "specialist \(i)", values: Array(sp.0[t.range]), shape: t.shape, parameters: Parameters(sp.1))
            }
            var baseIndex: Int?
            if method.requiresBase {
                inputs.append(MergeInput(model: "base", values: Array(pair.base[t.range]), shape: t.shape, parameters: Parameters()))
                baseIndex = inputs.count - 1
            }
            let context = MergeContext(tensorName: t.name, baseIndex: baseIndex, parameters: Parameters(global),
                                       seed: SeedDerivation.seed(run: 0, tensor: t.name), isEmbedding: false)
            let merged = try method.merge(inputs, context: context)
            out.replaceSubrange(t.range, with: merged.values)
        }
        return out
    }
}

/// CPU time of this process so far (every thread), in seconds.
func processCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

extension DAMConfiguration {
    var sourceBatchDescription: String { "\(batchSize) examples per source" }
}

extension MLPBatch {
    /// The examples at `indices`, in that order.
    public func rows(_ indices: [Int]) -> MLPBatch {
        var features: [Float] = []
        features.reserveCapacity(indices.count * inputs)
        for r in indices { features += augmented[r * (inputs + 1) ..< r * (inputs + 1) + inputs] }
        return MLPBatch(features: features, inputs: inputs, labels: indices.map { labels[$0] })
    }
}
