import Foundation
import Yams

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
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch {
            throw .config(path: path, key: "(file)", reason: "not valid YAML: \(error)")
        }
        guard let root else { throw .config(path: path, key: "(file)", reason: "the file is empty") }
        let reader = KeyReader(path: path, base: (path as NSString).deletingLastPathComponent)
        let top = try reader.mapping(root, "(file)", keys: Self.topKeys)
        guard let methodText = try reader.string(top["method"], "method") else {
            throw .config(path: path, key: "method", reason: "missing; give `method: m2n2` or `method: cmaes`")
        }
        guard let method = EvolveMethod(rawValue: methodText) else {
            throw .config(path: path, key: "method", reason: "`\(methodText)` is not a method; use m2n2 or cmaes")
        }
        self.method = method
        guard let modelNodes = top["models"], case let .sequence(seq) = modelNodes, !seq.isEmpty else {
            throw .config(path: path, key: "models", reason: "give a list of at least one model folder or .gguf file")
        }
        models = try seq.enumerated().map { i, n throws(SearchError) in try reader.existingPath(n, "models[\(i)]") }
        guard let taskNodes = top["tasks"], case let .sequence(taskSeq) = taskNodes, !taskSeq.isEmpty else {
            throw .config(path: path, key: "tasks", reason: "give a list of at least one task (`- path: FILE.jsonl`)")
        }
        var tasks: [EvolveTaskEntry] = []
        for (i, node) in taskSeq.enumerated() {
            let key = "tasks[\(i)]"
            if case .scalar = node {
                tasks.append(EvolveTaskEntry(path: try reader.existingPath(node, key)))
                continue
            }
            let t = try reader.mapping(node, key, keys: Self.taskKeys)
            guard t["path"] != nil else { throw .config(path: path, key: key + ".path", reason: "missing: the task file") }
            var entry = EvolveTaskEntry(path: try reader.existingPath(t["path"]!, key + ".path"))
            entry.weight = try reader.double(t["weight"], key + ".weight") ?? 1
            entry.trainExamples = try reader.int(t["train_examples"], key + ".train_examples", minimum: 1)
            entry.testExamples = try reader.int(t["test_examples"], key + ".test_examples", minimum: 1)
            entry.trainSplit = try reader.string(t["train_split"], key + ".train_split") ?? "train"
            guard entry.weight.isFinite, entry.weight >= 0 else {
                throw .config(path: path, key: key + ".weight", reason: "\(entry.weight) is not a weight ≥ 0")
            }
            tasks.append(entry)
        }
        self.tasks = tasks
        guard let budget = try reader.int(top["budget"], "budget", minimum: 1) else {
            throw .config(path: path, key: "budget", reason: "missing: the number of forward passes (candidates scored)")
        }
        self.budget = budget
        seed = try reader.uint(top["seed"], "seed") ?? 0
        output = try reader.string(top["output"], "output")
        recipeOutput = try reader.string(top["recipe_output"], "recipe_output")
        runDirectory = try reader.string(top["run_dir"], "run_dir")
        batchSize = try reader.int(top["batch_size"], "batch_size", minimum: 1) ?? 16
        durability = try reader.string(top["durability"], "durability") ?? "process"
        guard ["process", "machine"].contains(durability) else {
            throw .config(path: path, key: "durability", reason: "`\(durability)` is not one of process, machine")
        }
        if let node = top["m2n2"] {
            let m = try reader.mapping(node, "m2n2", keys: Self.m2n2Keys)
            m2n2.archiveSize = try reader.int(m["archive_size"], "m2n2.archive_size", minimum: 2) ?? m2n2.archiveSize
            m2n2.alpha = try reader.double(m["alpha"], "m2n2.alpha") ?? 1
            m2n2.attraction = try reader.bool(m["attraction"], "m2n2.attraction") ?? true
            m2n2.splitPoint = try reader.bool(m["split_point"], "m2n2.split_point") ?? true
            m2n2.mutation = try reader.double(m["mutation"], "m2n2.mutation").map { Float($0) }
        }
        if let node = top["cmaes"] {
            let c = try reader.mapping(node, "cmaes", keys: Self.cmaesKeys)
            cmaes.mergeMethod = try reader.string(c["merge_method"], "cmaes.merge_method") ?? ""
            if let n = c["base_model"] { cmaes.baseModel = try reader.existingPath(n, "cmaes.base_model") }
            cmaes.layerGranularity = try reader.int(c["layer_granularity"], "cmaes.layer_granularity", minimum: 0) ?? 0
            cmaes.population = try reader.int(c["population"], "cmaes.population", minimum: 2)
            cmaes.sigma0 = try reader.double(c["sigma0"], "cmaes.sigma0") ?? 1.0 / 6
            cmaes.restarts = try reader.bool(c["restarts"], "cmaes.restarts") ?? true
            cmaes.dtype = try reader.string(c["dtype"], "cmaes.dtype") ?? "bfloat16"
            if let f = c["filters"] {
                guard case let .sequence(items) = f else { throw .config(path: path, key: "cmaes.filters", reason: "give a list of tensor-name substrings") }
                cmaes.filters = try items.enumerated().map { i, n throws(SearchError) in
                    guard let s = try reader.string(n, "cmaes.filters[\(i)]") else { throw .config(path: path, key: "cmaes.filters[\(i)]", reason: "empty") }
                    return s
                }
            }
            cmaes.normalize = try reader.bool(c["normalize"], "cmaes.normalize")
            cmaes.allowNegativeWeights = try reader.bool(c["allow_negative_weights"], "cmaes.allow_negative_weights") ?? false
            cmaes.mergeSeed = try reader.uint(c["merge_seed"], "cmaes.merge_seed") ?? 0
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

/// Walks the YAML nodes, naming the key path in every error.
private struct KeyReader {
    let path: String
    let base: String

    func mapping(_ node: Node, _ key: String, keys: [String]) throws(SearchError) -> [String: Node] {
        guard case let .mapping(map) = node else { throw .config(path: path, key: key, reason: "expected a mapping of keys") }
        var out: [String: Node] = [:]
        for (k, v) in map {
            guard let name = k.string else { throw .config(path: path, key: key, reason: "keys must be strings") }
            let full = key == "(file)" ? name : key + "." + name
            guard keys.contains(name) else {
                throw .config(path: path, key: full, reason: "unknown key; accepted here: \(keys.joined(separator: ", "))")
            }
            if out[name] != nil { throw .config(path: path, key: full, reason: "appears twice") }
            if case let .scalar(s) = v, s.tag.description == Tag.Name.null.rawValue { continue }
            out[name] = v
        }
        return out
    }

    func scalar(_ node: Node?, _ key: String) throws(SearchError) -> String? {
        guard let node else { return nil }
        guard case let .scalar(s) = node else { throw .config(path: path, key: key, reason: "expected a single value") }
        if s.tag.description == Tag.Name.null.rawValue { return nil }
        return s.string
    }

    func string(_ node: Node?, _ key: String) throws(SearchError) -> String? {
        guard let s = try scalar(node, key) else { return nil }
        guard !s.isEmpty else { throw .config(path: path, key: key, reason: "is empty") }
        return s
    }

    func int(_ node: Node?, _ key: String, minimum: Int) throws(SearchError) -> Int? {
        guard let s = try scalar(node, key) else { return nil }
        guard let v = Int(s) else { throw .config(path: path, key: key, reason: "`\(s)` is not an integer") }
        guard v >= minimum else { throw .config(path: path, key: key, reason: "\(v) is below \(minimum)") }
        return v
    }

    func uint(_ node: Node?, _ key: String) throws(SearchError) -> UInt64? {
        guard let s = try scalar(node, key) else { return nil }
        guard let v = UInt64(s) else { throw .config(path: path, key: key, reason: "`\(s)` is not an integer ≥ 0") }
        return v
    }

    func double(_ node: Node?, _ key: String) throws(SearchError) -> Double? {
        guard let s = try scalar(node, key) else { return nil }
        guard let v = Double(s), v.isFinite else { throw .config(path: path, key: key, reason: "`\(s)` is not a number") }
        return v
    }

    func bool(_ node: Node?, _ key: String) throws(SearchError) -> Bool? {
        guard let s = try scalar(node, key) else { return nil }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw .config(path: path, key: key, reason: "`\(s)` is not true or false")
        }
    }

    /// A path that must exist: as given (from the current folder), else relative to the config's folder.
    func existingPath(_ node: Node, _ key: String) throws(SearchError) -> String {
        guard let s = try string(node, key) else { throw .config(path: path, key: key, reason: "give a path") }
        let fm = FileManager.default
        if s.hasPrefix("/") {
            guard fm.fileExists(atPath: s) else { throw .config(path: path, key: key, reason: "\(s) does not exist") }
            return s
        }
        if fm.fileExists(atPath: s) { return (fm.currentDirectoryPath as NSString).appendingPathComponent(s) }
        let relative = (base as NSString).appendingPathComponent(s)
        if !base.isEmpty, fm.fileExists(atPath: relative) {
            return relative.hasPrefix("/") ? relative : (fm.currentDirectoryPath as NSString).appendingPathComponent(relative)
        }
        throw .config(path: path, key: key, reason: "\(s) does not exist (looked from the current folder and from the config's folder)")
    }
}
