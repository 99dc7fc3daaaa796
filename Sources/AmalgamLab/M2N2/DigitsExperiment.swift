import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamModels
import AmalgamSearch
import Foundation

/// The released M2N2 experiment: a 64-256-10 MLP on scikit-learn's digits (first 80 % train, last 20 %
/// test, features not normalised), evolved from scratch or from two seeds pre-trained on digits 0–4 and 5–9.
public struct DigitsExperiment: Sendable {
    /// Where the seeds come from.
    public enum Setting: String, Sendable, CaseIterable, Codable {
        /// Seeds ~ N(0, 0.01²), mutation N(0, 0.01²), 50,000 passes.
        case scratch
        /// Seeds trained 10 Adam steps on digits 0–4 and 5–9, no mutation, 10,000 passes.
        case pretrained

        /// The published budget in forward passes.
        public var forwardPasses: Int { self == .scratch ? 50_000 : 10_000 }
        /// Mutation of the setting.
        public var mutationStandardDeviation: Float? { self == .scratch ? 0.01 : nil }
        /// The curves of the release's figure for the setting (M2N2 variants by their raw names, then
        /// `DigitsBaseline`s), with the published final mean test accuracy (%), read off the figure.
        public var methods: [(String, Double)] {
            switch self {
            case .scratch:
                return [("M2N2", 87), ("CMA-ES", 86), ("no crossover", 77), ("GA no crossover", 71), ("GA", 68),
                        ("MAP-Elites", 60)]
            case .pretrained:
                return [("M2N2", 68.5), ("no attraction", 66), ("MAP-Elites", 62), ("no split point", 57.7), ("GA", 52)]
            }
        }

        /// Whether `method` (an M2N2 variant's or a baseline's name) can run in this setting: CMA-ES only
        /// from scratch, as in the release.
        public func runs(_ method: String) -> Bool {
            if M2N2Variant(rawValue: method) != nil { return true }
            guard let baseline = DigitsBaseline(rawValue: method) else { return false }
            return baseline != .cmaES || self == .scratch
        }
    }

    /// One line of the result table.
    public struct Row: Sendable {
        /// The setting.
        public var setting: Setting
        /// Method name (`M2N2`, `GA`, `brute-force slerp`, `seed 0-4`, …).
        public var method: String
        /// Test accuracy of the best-on-train archive member, per run.
        public var testAccuracies: [Double]
        /// Its training accuracy, per run.
        public var trainAccuracies: [Double]
        /// The published mean test accuracy (%), when there is one.
        public var published: Double?
        /// Wall time of each run in seconds.
        public var seconds: [Double]
        /// Each run's accuracy-against-passes curve (empty for rows without one).
        public var traces: [[TracePoint]] = []
    }

    /// One finished run of one method.
    public struct RunResult: Sendable, Codable, Equatable {
        /// Test accuracy of the best-on-train member.
        public var testAccuracy: Double
        /// Its training accuracy.
        public var trainAccuracy: Double
        /// Wall time in seconds.
        public var seconds: Double
        /// Times parent 2 could not be chosen by attraction.
        public var attractionFallbacks: Int
        /// Best-on-train member's training and test accuracy every few passes (for a resumed run, from the
        /// pass it resumed at).
        public var trace: [TracePoint]? = nil
    }

    /// Training examples (first 80 %).
    public let train: MLPBatch
    /// Test examples (last 20 %).
    public let test: MLPBatch
    /// The classifier's shape.
    public let classifier = MLPClassifier.digits
    /// Seed of the two N(0, 0.01²) vectors the pre-trained seeds start from when `releaseInitial` is nil.
    public var pretrainSeed: UInt64 = 42
    /// The release's own two N(0, 0.01²) starting vectors (jax `PRNGKey(42)`, see `loadReleaseInitial`); when
    /// set, the pre-trained seeds are trained from them instead of from draws of `pretrainSeed`.
    public private(set) var releaseInitial: [[Float]]?

    /// The experiment on the digits CSV at `csvPath`.
    public init(csvPath: String) throws(SearchError) {
        do {
            (train, test) = try DigitsDataset(csvPath: csvPath).split()
        } catch {
            throw .badData(path: csvPath, reason: error.description)
        }
    }

    /// Seeds of a run: from scratch, two N(0, 0.01²) vectors from the run's seed; pre-trained, the same
    /// two trained seeds for every run (as the reference trains them once, from a fixed key).
    public func seeds(setting: Setting, runSeed: UInt64) -> [[Float]] {
        switch setting {
        case .scratch: return Self.gaussianSeeds(count: classifier.parameterCount, seed: runSeed)
        case .pretrained: return pretrainedSeeds()
        }
    }

    /// An N(0, 0.01²) parameter vector (for benchmarks).
    public static func gaussianSeedsForBenchmark(count: Int) -> [Float] { gaussianSeeds(count: count, seed: 0)[0] }

    /// Two N(0, 0.01²) vectors drawn from stream 1 of `seed`.
    static func gaussianSeeds(count: Int, seed: UInt64) -> [[Float]] {
        var g = SeededGenerator(seed: seed, stream: 1)
        return (0..<2).map { _ in (0..<count).map { _ in 0.01 * g.normal() } }
    }

    /// The two pre-trained seeds: two N(0, 0.01²) vectors (the release's, when loaded, else drawn from
    /// `pretrainSeed`), then 10 full-batch Adam steps (lr 3e-3) of softmax cross-entropy, the first on training
    /// digits 0–4, the second on 5–9 (labels kept as they are).
    public func pretrainedSeeds() -> [[Float]] {
        let initial = releaseInitial ?? Self.gaussianSeeds(count: classifier.parameterCount, seed: pretrainSeed)
        return [train.filter { $0 < 5 }, train.filter { $0 >= 5 }].enumerated().map { i, subset in
            classifier.trainAdam(parameters: initial[i], batch: subset, steps: 10, learningRate: 3e-3)
        }
    }

    /// Uses the release's two starting vectors for the pre-trained seeds: the `initial` tensor [2, 19210] of
    /// `path` (`fixtures/m2n2/release-seeds.safetensors`, written by `scripts/fixtures/make_m2n2_release_seeds.py`
    /// with jax as the release draws them). The release trains ONE pair, from `PRNGKey(42)`, for all its runs,
    /// and which pair it is moves the pre-trained results by many points (see README, M2N2 digits).
    public mutating func loadReleaseInitial(path: String) throws(SearchError) {
        let initial: [Float]
        do {
            let file = try SafetensorsFile(path: path)
            guard let info = file.info("initial"), info.shape == [2, classifier.parameterCount] else {
                throw SearchError.badData(path: path, reason: "no `initial` tensor of shape [2, \(classifier.parameterCount)]; regenerate it with scripts/fixtures/make_m2n2_release_seeds.py")
            }
            initial = try file.tensor("initial").floats()
        } catch let error as SearchError {
            throw error
        } catch {
            throw .badData(path: path, reason: "\(error); regenerate it with scripts/fixtures/make_m2n2_release_seeds.py")
        }
        let n = classifier.parameterCount
        releaseInitial = [Array(initial[0..<n]), Array(initial[n..<2 * n])]
    }

    /// What a run folder records about the run it holds, to rebuild and check it on resume.
    public struct RunDescriptor: Sendable, Codable, Equatable {
        /// `m2n2-digits`.
        public var experiment = "m2n2-digits"
        /// The setting.
        public var setting: Setting
        /// The method.
        public var variant: M2N2Variant
        /// The run's seed.
        public var seed: UInt64
        /// Seed of the pre-trained seeds' initial vectors (when not the release's).
        public var pretrainSeed: UInt64
        /// `release` when the pre-trained seeds start from the release's vectors; nil for draws of `pretrainSeed`.
        public var pretrainInitial: String?
    }

    /// Where a run keeps its durable state.
    public struct RunStorage: Sendable {
        /// The run folder.
        public var path: String
        /// Continue the run if the folder exists (else an existing folder is an error).
        public var resume: Bool
        /// How much each commit survives.
        public var durability: RunFolder.Durability

        /// Storage at `path`.
        public init(path: String, resume: Bool, durability: RunFolder.Durability = .process) {
            self.path = path
            self.resume = resume
            self.durability = durability
        }
    }

    /// One M2N2 run (or ablation) with `forwardPasses` children (the setting's budget if nil); with
    /// `storage`, every step is committed to a run folder, and an existing one is continued (or, when
    /// already finished, its recorded result returned).
    /// A trace point (best-on-train member's training and test accuracy) is kept every `traceEvery` passes.
    public func run(setting: Setting, variant: M2N2Variant, seed: UInt64, forwardPasses: Int? = nil,
                    storage: RunStorage? = nil, every: Int = 1000, traceEvery: Int = 100,
                    progress: (M2N2Progress) -> Void = { _ in }) throws(SearchError) -> RunResult {
        let start = DispatchTime.now().uptimeNanoseconds
        let configuration = M2N2Configuration(
            variant: variant, forwardPasses: forwardPasses ?? setting.forwardPasses,
            mutationStandardDeviation: setting.mutationStandardDeviation, seed: seed)
        let store = try FlatGenomeStore(parameterCount: classifier.parameterCount,
                                        slotCount: configuration.archiveSize, seeds: seeds(setting: setting, runSeed: seed))
        let search = try M2N2Search(configuration: configuration, store: store,
                                    scorer: MLPScorer(classifier: classifier, batch: train))
        var trace: [TracePoint] = []
        func record() {
            let best = search.bestMember
            trace.append(TracePoint(pass: search.passes, trainAccuracy: search.scores.rowMeans()[best],
                                    testAccuracy: classifier.accuracy(parameters: search.store.slots[best], batch: test)))
        }
        guard let storage else {
            for i in 0..<store.seedCount { try search.insertSeed(i) }
            record()
            let budget = configuration.forwardPasses
            while search.passes < budget {
                try search.step()
                let p = search.passes
                if p % traceEvery == 0 || p == budget { record() }
                if p % every == 0 || p == budget { progress(search.progress) }
            }
            var finished = result(of: search, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            finished.trace = trace
            return finished
        }
        let descriptor = RunDescriptor(setting: setting, variant: variant, seed: seed, pretrainSeed: pretrainSeed,
                                       pretrainInitial: setting == .pretrained && releaseInitial != nil ? "release" : nil)
        let durable: M2N2Run<MLPScorer>
        if RunFolder.exists(at: storage.path) {
            guard storage.resume else {
                throw .runFolder(path: storage.path, reason: "already exists; pass --resume to continue it, or choose another run folder")
            }
            durable = try M2N2Run(resuming: storage.path, search: search, durability: storage.durability)
            let saved = try durable.folder.meta("experiment", as: RunDescriptor.self)
            guard saved == descriptor else {
                throw .runFolder(path: storage.path, reason: "holds another run (\(String(describing: saved))); choose another run folder")
            }
            if let done = try durable.folder.meta("result", as: RunResult.self) { return done }
        } else {
            durable = try M2N2Run(creating: storage.path, search: search, experiment: descriptor, durability: storage.durability)
        }
        try durable.run(every: traceEvery) { p in
            record()
            if p.passes % every == 0 || p.passes == p.budget { progress(p) }
        }
        var finished = result(of: search, seconds: durable.seconds)
        finished.trace = trace
        try durable.finish(result: finished)
        return finished
    }

    /// The logged numbers of a finished search: test and training accuracy of the best-on-train member.
    private func result(of search: M2N2Search<MLPScorer>, seconds: Double) -> RunResult {
        let best = search.bestMember
        return RunResult(
            testAccuracy: classifier.accuracy(parameters: search.store.slots[best], batch: test),
            trainAccuracy: search.scores.rowMeans()[best], seconds: seconds,
            attractionFallbacks: search.attractionFallbacks)
    }

    /// Brute-force slerp between the two seeds: the best training accuracy over `steps` evenly spaced
    /// weights in [0, 1] (the first best), then its test accuracy.
    public func bruteForceSlerp(seeds: [[Float]], steps: Int = 10_000) throws(SearchError) -> RunResult {
        let start = DispatchTime.now().uptimeNanoseconds
        let store = try FlatGenomeStore(parameterCount: classifier.parameterCount, slotCount: 2, seeds: seeds)
        try store.makeCandidate(.seed(0), mutation: nil); try store.keepCandidate(inSlot: 0)
        try store.makeCandidate(.seed(1), mutation: nil); try store.keepCandidate(inSlot: 1)
        let omega = try store.innerProducts(0, 1).angle
        let scorer = MLPScorer(classifier: classifier, batch: train)
        var scores = [Float](repeating: 0, count: train.count)
        var bestTrain = -1.0, bestWeight = 0.0
        for i in 0..<steps {
            let w = steps == 1 ? 0 : Double(i) / Double(steps - 1)
            let plan = CrossoverPlan(splitPoint: classifier.parameterCount, ratio: w, omega: omega)
            try store.makeCandidate(.crossover(a: 0, b: 1, plan: plan), mutation: nil)
            try scores.withUnsafeMutableBufferPointer { (s: inout UnsafeMutableBufferPointer<Float>) throws(SearchError) in
                try scorer.scoreCandidate(of: store, into: s)
            }
            let accuracy = Double(scores.reduce(0, +)) / Double(train.count)
            if accuracy > bestTrain { bestTrain = accuracy; bestWeight = w }
        }
        let plan = CrossoverPlan(splitPoint: classifier.parameterCount, ratio: bestWeight, omega: omega)
        try store.makeCandidate(.crossover(a: 0, b: 1, plan: plan), mutation: nil)
        return RunResult(testAccuracy: classifier.accuracy(parameters: store.candidate, batch: test),
                         trainAccuracy: bestTrain,
                         seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, attractionFallbacks: 0)
    }
}
