import AmalgamCore
import Foundation

/// Which search `amalgam evolve` runs.
public enum EvolveMethod: String, Sendable, Codable, CaseIterable {
    /// M2N2: an archive of whole checkpoints evolved by split-point crossover (members on disk).
    case m2n2
    /// CMA-ES over mergekit-evolve's recipe genome (candidates merged in memory).
    case cmaes
}

/// One task of an evolve run: its file, its weight in the fitness, how many examples of each split.
public struct EvolveTaskEntry: Sendable, Codable, Equatable {
    /// The task file (JSONL with a header line; README "Evaluation").
    public var path: String
    /// Weight of the task's mean score in the fitness (Σ weight × mean score).
    public var weight = 1.0
    /// Training examples scored per candidate: a seeded sample (the task header's seed) of the training
    /// split; nil: all of them.
    public var trainExamples: Int?
    /// Test examples the best model is evaluated on at the end (a seeded sample of the task's
    /// `eval_split`); nil: all of them.
    public var testExamples: Int?
    /// The split searched on.
    public var trainSplit = "train"

    public init(path: String, weight: Double = 1, trainExamples: Int? = nil, testExamples: Int? = nil, trainSplit: String = "train") {
        self.path = path
        self.weight = weight
        self.trainExamples = trainExamples
        self.testExamples = testExamples
        self.trainSplit = trainSplit
    }
}

/// M2N2's own keys (section `m2n2:`).
public struct EvolveM2N2Settings: Sendable, Codable, Equatable {
    /// Archive slots; disk use is this many checkpoints (f32) plus one child.
    public var archiveSize = 8
    /// Competition exponent α (1: M2N2; 0: a plain GA).
    public var alpha = 1.0
    /// Parent 2 chosen by attraction to parent 1 (else by fitness).
    public var attraction = true
    /// Split-point crossover (else plain slerp with one weight).
    public var splitPoint = true
    /// Standard deviation of Gaussian noise added to every parameter of a child (nil: none).
    public var mutation: Float?

    public init() {}
}

/// CMA-ES's own keys (section `cmaes:`): mergekit-evolve's genome definition and the optimiser's settings.
public struct EvolveCMAESSettings: Sendable, Codable, Equatable {
    /// linear, task_arithmetic, ties, dare_ties or slerp.
    public var mergeMethod = ""
    /// The base model (a path; required by task_arithmetic, ties and dare_ties), not searched over.
    public var baseModel: String?
    /// Layers per genome group (0: one group over all layers), as mergekit-evolve.
    public var layerGranularity = 0
    /// CMA-ES population λ (nil: 4 + ⌊3 ln n⌋).
    public var population: Int?
    /// Initial step size (mergekit-evolve: 1/6).
    public var sigma0 = 1.0 / 6
    /// IPOP restarts with a doubled population when CMA-ES stops before the budget.
    public var restarts = true
    /// The recipes' dtype (mergekit-evolve writes bfloat16).
    public var dtype = "bfloat16"
    /// Tensor-name substrings with their own genome parameters.
    public var filters: [String] = []
    /// nil: mergekit-evolve's choice (on for linear, ties, dare_ties).
    public var normalize: Bool?
    public var allowNegativeWeights = false
    /// `amalgam merge --seed` of every candidate (random methods: dare_ties).
    public var mergeSeed: UInt64 = 0

    public init() {}
}

/// What `amalgam evolve CONFIG.yml` runs, read from its YAML file (README "Evolve").
///
/// Paths in the file are taken as given when they exist from the current folder, else relative to the
/// config file's folder; they are kept absolute, so a run folder can be resumed from anywhere.
public struct EvolveConfiguration: Sendable, Codable, Equatable {
    public var method: EvolveMethod
    /// The checkpoints (model folders or .gguf files) sharing one architecture.
    public var models: [String]
    public var tasks: [EvolveTaskEntry]
    /// Forward passes: candidates scored on the training examples (M2N2's seed insertions come on top).
    public var budget: Int
    public var seed: UInt64 = 0
    /// Where the best model is written at the end (nil: not written).
    public var output: String?
    /// Where the best recipe is written (cmaes; default OUTPUT.yml next to the output, else RUN/best.yml).
    public var recipeOutput: String?
    /// Default run folder when `--run-dir` is not given.
    public var runDirectory: String?
    /// Examples scored per model call.
    public var batchSize = 16
    /// `process` or `machine` (README "Run folders").
    public var durability = "process"
    public var m2n2 = EvolveM2N2Settings()
    public var cmaes = EvolveCMAESSettings()

    public static let topKeys = ["method", "models", "tasks", "budget", "seed", "output", "recipe_output", "run_dir", "batch_size",
                                 "durability", "m2n2", "cmaes"]
    public static let taskKeys = ["path", "weight", "train_examples", "test_examples", "train_split"]
    public static let m2n2Keys = ["archive_size", "alpha", "attraction", "split_point", "mutation"]
    public static let cmaesKeys = ["merge_method", "base_model", "layer_granularity", "population", "sigma0", "restarts", "dtype",
                                   "filters", "normalize", "allow_negative_weights", "merge_seed"]

    /// A configuration built in code (tests, benchmarks).
    public init(method: EvolveMethod, models: [String], tasks: [EvolveTaskEntry], budget: Int, seed: UInt64 = 0) {
        self.method = method
        self.models = models
        self.tasks = tasks
        self.budget = budget
        self.seed = seed
    }

    /// Reads a config file.
    public init(contentsOf path: String) throws(SearchError) {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .config(path: path, key: "(file)", reason: "cannot read it (\(error.localizedDescription))")
        }
        try self.init(yaml: text, path: path)
    }

    /// Parses YAML text; `path` names the file in messages and anchors relative paths.
    public init(yaml: String, path: String) throws(SearchError) {
        let top = try ConfigValue<SearchError>(ConfigNode.parse(yaml: yaml, path: path, as: SearchError.self), path: path, keyPath: "")
            .mapping(accepting: Self.topKeys)
        guard let methodText = try top.string("method", nonEmpty: true) else {
            throw top.fail("method", "missing; give `method: m2n2` or `method: cmaes`")
        }
        guard let method = EvolveMethod(rawValue: methodText) else {
            throw top.fail("method", "`\(methodText)` is not a method; use m2n2 or cmaes")
        }
        self.method = method
        guard let models = try top.value("models")?.items(), !models.isEmpty else {
            throw top.fail("models", "give a list of at least one model folder or .gguf file")
        }
        self.models = try models.map { m throws(SearchError) in try m.existingPath() }
        guard let taskValues = try top.value("tasks")?.items(), !taskValues.isEmpty else {
            throw top.fail("tasks", "give a list of at least one task (`- path: FILE.jsonl`)")
        }
        var tasks: [EvolveTaskEntry] = []
        for value in taskValues {
            if case .scalar = value.node {
                tasks.append(EvolveTaskEntry(path: try value.existingPath()))
                continue
            }
            let t = try value.mapping(accepting: Self.taskKeys)
            guard let file = t.value("path") else { throw t.fail("path", "missing: the task file") }
            var entry = EvolveTaskEntry(path: try file.existingPath())
            entry.weight = try t.double("weight", finite: true) ?? 1
            entry.trainExamples = try t.int("train_examples", minimum: 1)
            entry.testExamples = try t.int("test_examples", minimum: 1)
            entry.trainSplit = try t.string("train_split", nonEmpty: true) ?? "train"
            guard entry.weight >= 0 else { throw t.fail("weight", "\(entry.weight) is not a weight ≥ 0") }
            tasks.append(entry)
        }
        self.tasks = tasks
        guard let budget = try top.int("budget", minimum: 1) else {
            throw top.fail("budget", "missing: the number of forward passes (candidates scored)")
        }
        self.budget = budget
        seed = try top.uint64("seed") ?? 0
        output = try top.string("output", nonEmpty: true)
        recipeOutput = try top.string("recipe_output", nonEmpty: true)
        runDirectory = try top.string("run_dir", nonEmpty: true)
        batchSize = try top.int("batch_size", minimum: 1) ?? 16
        durability = try top.string("durability", nonEmpty: true) ?? "process"
        guard ["process", "machine"].contains(durability) else {
            throw top.fail("durability", "`\(durability)` is not one of process, machine")
        }
        if let section = top.value("m2n2") {
            let m = try section.mapping(accepting: Self.m2n2Keys)
            m2n2.archiveSize = try m.int("archive_size", minimum: 2) ?? m2n2.archiveSize
            m2n2.alpha = try m.double("alpha", finite: true) ?? 1
            m2n2.attraction = try m.bool("attraction") ?? true
            m2n2.splitPoint = try m.bool("split_point") ?? true
            m2n2.mutation = try m.double("mutation", finite: true).map { Float($0) }
        }
        if let section = top.value("cmaes") {
            let c = try section.mapping(accepting: Self.cmaesKeys)
            cmaes.mergeMethod = try c.string("merge_method", nonEmpty: true) ?? ""
            cmaes.baseModel = try c.value("base_model")?.existingPath()
            cmaes.layerGranularity = try c.int("layer_granularity", minimum: 0) ?? 0
            cmaes.population = try c.int("population", minimum: 2)
            cmaes.sigma0 = try c.double("sigma0", finite: true) ?? 1.0 / 6
            cmaes.restarts = try c.bool("restarts") ?? true
            cmaes.dtype = try c.string("dtype", nonEmpty: true) ?? "bfloat16"
            if let filters = c.value("filters") {
                cmaes.filters = try filters.items().map { f throws(SearchError) in try f.string(nonEmpty: true) }
            }
            cmaes.normalize = try c.bool("normalize")
            cmaes.allowNegativeWeights = try c.bool("allow_negative_weights") ?? false
            cmaes.mergeSeed = try c.uint64("merge_seed") ?? 0
        }
        try validate(path: path)
    }

    /// Checks what the parser cannot see key by key.
    public func validate(path: String = "(config)") throws(SearchError) {
        if models.isEmpty { throw .config(path: path, key: "models", reason: "give at least one model") }
        if tasks.isEmpty { throw .config(path: path, key: "tasks", reason: "give at least one task") }
        if budget < 1 { throw .config(path: path, key: "budget", reason: "must be at least 1") }
        switch method {
        case .m2n2:
            if models.count < 2 { throw .config(path: path, key: "models", reason: "M2N2 needs at least two seed checkpoints") }
            if models.count > m2n2.archiveSize {
                throw .config(path: path, key: "m2n2.archive_size", reason: "\(m2n2.archiveSize) slots cannot hold the \(models.count) seeds; raise it")
            }
            if !(m2n2.alpha >= 0) || !m2n2.alpha.isFinite { throw .config(path: path, key: "m2n2.alpha", reason: "\(m2n2.alpha) is not ≥ 0") }
            if let m = m2n2.mutation, !(m >= 0) || !m.isFinite {
                throw .config(path: path, key: "m2n2.mutation", reason: "\(m) is not a standard deviation ≥ 0")
            }
        case .cmaes:
            guard MergeGenome.methodParameters[cmaes.mergeMethod] != nil else {
                let known = MergeGenome.methodParameters.keys.sorted().joined(separator: ", ")
                throw .config(path: path, key: "cmaes.merge_method", reason: cmaes.mergeMethod.isEmpty
                    ? "missing; give one of \(known)" : "`\(cmaes.mergeMethod)` is not evolvable; use one of \(known)")
            }
            if !(cmaes.sigma0 > 0) || !cmaes.sigma0.isFinite { throw .config(path: path, key: "cmaes.sigma0", reason: "\(cmaes.sigma0) is not > 0") }
            if !["bfloat16", "float16", "float32"].contains(cmaes.dtype) {
                throw .config(path: path, key: "cmaes.dtype", reason: "`\(cmaes.dtype)` is not one of bfloat16, float16, float32")
            }
        }
    }

    /// The task weights by task file, in order (for messages and the fitness).
    public var taskPaths: [String] { tasks.map(\.path) }
}
