import AmalgamCheckpoint
import AmalgamCore
import AmalgamEval
import AmalgamMerge
import AmalgamModels
import Foundation

/// The architecture every candidate is loaded with: the first model's `config.json`.
public struct EvolveArchitecture: Sendable {
    public let config: ModelConfig
    /// How each candidate's weights are held for its fitness pass (nil: as merged).
    public let precision: WeightPrecision?

    public init(config: ModelConfig, precision: WeightPrecision? = nil) {
        self.config = config
        self.precision = precision
    }

    /// A Llama-family model over `weights` (no copy of mapped tensors unless `precision` converts them).
    public func model(weights: any TensorSource) throws(SearchError) -> LlamaModel {
        do { return try LlamaModel(config: config, weights: weights, precision: precision) } catch {
            throw .badData(path: weights.path, reason: "cannot load it as a \(config.modelType ?? "?") model: \(error)")
        }
    }
}

/// A snapshot for the progress line of either method.
public struct EvolveProgress: Sendable {
    /// Candidates scored (forward passes over the training examples), seeds not counted.
    public var passes: Int
    public var budget: Int
    /// Passes done when this process opened the run (for the rate).
    public var passesAtOpen: Int
    /// Best fitness so far (Σ weight × mean training score).
    public var bestFitness: Double
    /// Mean fitness of the archive (M2N2) or of the current generation (CMA-ES).
    public var meanFitness: Double
    /// M2N2's archive diversity (mean fraction of examples two members score differently).
    public var diversity: Double?
    /// Seconds this process has spent.
    public var seconds: Double
}

/// The result of an evolve run, stored in the run folder's `meta.result` and printed by the command.
public struct EvolveResult: Sendable, Codable, Equatable {
    public var method: String
    /// Candidates scored (the budget spent).
    public var passes: Int
    /// M2N2's seed insertions (one pass each, on top of `passes`).
    public var seedPasses: Int
    /// Seconds spent over every process that worked on the run.
    public var seconds: Double
    /// The best candidate: M2N2's genome name, or CMA-ES's evaluation number.
    public var best: String
    /// Its fitness and mean scores per task on the training examples.
    public var trainFitness: Double
    public var trainScores: [String: Double]
    /// Its weighted score and mean scores per task on the test examples.
    public var testFitness: Double
    public var testScores: [String: Double]
    /// Test examples per task.
    public var testCounts: [String: Int]
    /// Where the best model was written, if asked.
    public var output: String?
    /// Where the best recipe was written (CMA-ES).
    public var recipe: String?
}

/// Runs `amalgam evolve`: M2N2 over checkpoints on disk, or CMA-ES over merge recipes merged in memory,
/// in a durable run folder (README "Evolve").
public final class EvolveRunner {
    public let configuration: EvolveConfiguration
    public let runDirectory: String
    public let tasks: EvolveTasks
    public let tokenizer: any TextTokenizer
    public let formatter: (any PromptFormatter)?
    let models: [ModelSource]
    let architecture: EvolveArchitecture
    /// A CMA-ES run kept in a PostgreSQL run store instead of the run folder (`amalgam evolve --store URL
    /// --run NAME`): the store's URL and the run's name. The run folder then holds only the outputs.
    public var store: (url: String, run: String)?
    /// With `store`: share each generation's evaluations with `amalgam worker` processes through the
    /// store's work queue (`amalgam evolve --workers`; EvolveWorker.swift).
    public var queue: EvolveQueueOptions?
    /// The paths a candidate recipe names, read on this machine (an `amalgam worker --path-map`): recipes
    /// name the models at the coordinator's paths.
    public var recipePaths = PathMap()

    /// The run folder kinds.
    public static let m2n2Kind = "m2n2", cmaesKind = "evolve-cmaes"

    /// Opens the models and tasks. `tokenizer` (the first model's) turns task text into tokens.
    public init(configuration: EvolveConfiguration, runDirectory: String, tokenizer: any TextTokenizer,
                formatter: (any PromptFormatter)? = nil, precision: WeightPrecision? = nil) throws(SearchError) {
        try configuration.validate()
        self.configuration = configuration
        self.runDirectory = runDirectory
        self.tokenizer = tokenizer
        self.formatter = formatter
        tasks = try EvolveTasks(entries: configuration.tasks, batchSize: configuration.batchSize)
        var models: [ModelSource] = []
        for path in configuration.models {
            do { models.append(try ModelSource.open(path)) } catch { throw .badData(path: path, reason: error.description) }
        }
        self.models = models
        architecture = EvolveArchitecture(config: models[0].config, precision: precision)
    }

    var durability: RunFolder.Durability { RunFolder.Durability(rawValue: configuration.durability) ?? .process }

    /// Runs (or resumes) the search to its budget, then evaluates the best candidate on the test examples
    /// and writes what the configuration asks for. `progress` is called after every pass.
    ///
    /// `stopAfter` stops this process after that many committed steps (M2N2: seed insertions and children;
    /// CMA-ES: newly scored candidates) and returns nil, as a kill would, minus the kill: a later
    /// `run(resume: true)` continues it.
    public func run(resume: Bool, stopAfter: Int? = nil, progress: (EvolveProgress) -> Void = { _ in }) throws(SearchError) -> EvolveResult? {
        switch configuration.method {
        case .m2n2:
            if let store {
                throw .runFolder(path: PostgresAddress.displayed(store.url), reason: "an M2N2 run keeps its archive as genome files and tables of a run "
                    + "folder; a PostgreSQL store holds CMA-ES runs only so far (method: cmaes): run M2N2 with --run-dir")
            }
            return try runM2N2(resume: resume, stopAfter: stopAfter, progress: progress)
        case .cmaes:
            do {
                return try runCMAES(resume: resume, stopAfter: stopAfter, progress: progress)
            } catch let error where error == Self.stopped {
                return nil
            }
        }
    }

    /// Thrown inside a CMA-ES generation to stop at `stopAfter`.
    static let stopped = SearchError.runFolder(path: "", reason: "(stopped on request)")

    /// Fails unless the run folder was started with this configuration.
    func checkSaved(_ folder: RunFolder) throws(SearchError) {
        guard let saved = try folder.meta("experiment", as: EvolveConfiguration.self) else {
            throw .runFolder(path: folder.path, reason: "has no evolve configuration; it is not an `amalgam evolve` run")
        }
        guard saved == configuration else {
            let differences = (try? RunConfiguration(encoding: configuration).differences(from: RunConfiguration(encoding: saved))) ?? []
            let named = differences.isEmpty ? "models, tasks, budget, seed or method settings differ" : differences.prefix(5).joined(separator: "; ")
            throw .runFolder(path: folder.path, reason: "was started with another configuration (\(named)); resume it with the same config or choose another run folder")
        }
    }

    // MARK: M2N2

    func m2n2Configuration() -> M2N2Configuration {
        var c = M2N2Configuration()
        c.archiveSize = configuration.m2n2.archiveSize
        c.alpha = configuration.m2n2.alpha
        c.attraction = configuration.m2n2.attraction
        c.crossover = configuration.m2n2.splitPoint ? .splitPoint : .slerp
        c.mutationStandardDeviation = configuration.m2n2.mutation
        c.forwardPasses = configuration.budget
        c.seed = configuration.seed
        return c
    }

    func runM2N2(resume: Bool, stopAfter: Int?, progress: (EvolveProgress) -> Void) throws(SearchError) -> EvolveResult? {
        let settings = m2n2Configuration()
        let store = try CheckpointGenomeStore(runDirectory: runDirectory, seeds: models.map(\.tensors),
                                              slotCount: settings.archiveSize, syncWrites: durability == .machine)
        let scorer = CheckpointScorer(tasks: tasks, config: architecture, tokenizer: tokenizer, formatter: formatter)
        let search = try M2N2Search(configuration: settings, store: store, scorer: scorer)
        let run: M2N2Run<CheckpointScorer>
        if resume {
            run = try M2N2Run(resuming: runDirectory, search: search, durability: durability)
            try checkSaved(run.folder)
        } else {
            run = try M2N2Run(creating: runDirectory, search: search, experiment: configuration, durability: durability)
        }
        let started = DispatchTime.now().uptimeNanoseconds
        let archive = settings.archiveSize
        func fitnesses() -> [Double?] {
            (0..<archive).map { k in run.archiveGenomes[k] == nil ? nil : tasks.fitness(flat: search.scores.row(k)) }
        }
        var steps = 0
        while !run.isFinished {
            if let stopAfter, steps >= stopAfter { return nil }
            try run.advance()
            steps += 1
            guard run.seedsInserted == store.seedCount else { continue }
            let f = fitnesses().compactMap { $0 }
            progress(EvolveProgress(passes: search.passes, budget: settings.forwardPasses, passesAtOpen: run.passesAtOpen,
                                    bestFitness: f.max() ?? 0, meanFitness: f.isEmpty ? 0 : f.reduce(0, +) / Double(f.count),
                                    diversity: search.progress.diversity,
                                    seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9))
        }
        // The member with the best weighted training score (the first slot on ties).
        let f = fitnesses()
        var best: Int?
        for k in 0..<archive {
            guard let v = f[k] else { continue }
            if best == nil || v > f[best!]! { best = k }
        }
        guard let best, let name = run.archiveGenomes[best] else {
            throw .runFolder(path: runDirectory, reason: "the archive holds no member")
        }
        let source = try store.source(slot: best)
        let model = try architecture.model(weights: source)
        let trainScores = tasks.metrics(tasks.split(search.scores.row(best).map { Double($0) }))
        var result = try testResult(model: model, best: name, trainFitness: f[best]!, trainScores: trainScores,
                                    passes: search.passes, seedPasses: models.count, seconds: run.seconds)
        if let output = configuration.output {
            try exportCheckpoint(source, to: output)
            result.output = output
        }
        try run.finish(result: result)
        return result
    }

    /// Writes the flat genome as a model folder: `model.safetensors` (f32), the first model's config (dtype
    /// float32) and its tokenizer files; built under a temporary name, renamed when complete.
    public func exportCheckpoint(_ source: FlatGenomeSource, to path: String) throws(SearchError) {
        let first = models[0]
        do {
            let output = try AtomicOutput(path: path, overwrite: true)
            try output.makeWorkingDirectory()
            do {
                var tensors: [(name: String, tensor: Tensor)] = []
                for info in source.tensorInfos { tensors.append((info.name, try source.tensor(info.name))) }
                try SafetensorsWriter.save(tensors, to: output.workingPath + "/model.safetensors")
                var config = first.config.raw
                for key in ["torch_dtype", "dtype"] where config[key] != nil { config[key] = .string("float32") }
                if config["torch_dtype"] == nil && config["dtype"] == nil { config["torch_dtype"] = .string("float32") }
                try writeFileAtomically(JSONValue.object(config).pythonText() + "\n", to: output.workingPath + "/config.json")
                try first.writeCompanions(into: output.workingPath, skipping: ["config.json"])
                try output.commit()
            } catch {
                output.abandon()
                throw error
            }
        } catch let error as SearchError {
            throw error
        } catch {
            throw .runFolder(path: path, reason: "cannot write the best model: \(error)")
        }
    }

    /// Evaluates `model` on the test examples and fills a result.
    func testResult(model: any EvaluableModel, best: String, trainFitness: Double, trainScores: [String: Double], passes: Int,
                    seedPasses: Int, seconds: Double) throws(SearchError) -> EvolveResult {
        let reports = try tasks.testReports(model: model, tokenizer: tokenizer, formatter: formatter)
        let perTask = reports.map { $0.results.map(\.score) }
        return EvolveResult(method: configuration.method.rawValue, passes: passes, seedPasses: seedPasses, seconds: seconds, best: best,
                            trainFitness: trainFitness, trainScores: trainScores, testFitness: tasks.fitness(perTask),
                            testScores: tasks.metrics(perTask),
                            testCounts: Dictionary(uniqueKeysWithValues: zip(tasks.names, perTask.map(\.count))),
                            output: nil, recipe: nil)
    }

    // MARK: CMA-ES

    /// mergekit-evolve's genome over the configured models.
    public func genome() throws(SearchError) -> MergeGenome {
        let c = configuration.cmaes
        return try MergeGenome(models: configuration.models, mergeMethod: c.mergeMethod, baseModel: c.baseModel,
                               layerCount: models[0].layerCount, layerGranularity: c.layerGranularity, normalize: c.normalize,
                               allowNegativeWeights: c.allowNegativeWeights, filters: c.filters, dtype: c.dtype)
    }

    func recipeSearchConfiguration() throws(SearchError) -> RecipeSearchConfiguration {
        var r = RecipeSearchConfiguration(genome: try genome(), fitness: tasks.weightedFitness, budget: configuration.budget)
        r.sigma0 = configuration.cmaes.sigma0
        r.cmaes.seed = configuration.seed
        r.cmaes.populationSize = configuration.cmaes.population
        r.restarts = configuration.cmaes.restarts
        r.mergeSeed = configuration.cmaes.mergeSeed
        return r
    }

    /// A recipe merged in memory (the code `amalgam merge` runs) and loaded as a model.
    public func mergedModel(_ recipe: MergeRecipe) throws(SearchError) -> LlamaModel {
        try mergedModel(yaml: recipe.yaml)
    }

    /// A recipe, as its YAML text, merged in memory and loaded as a model.
    public func mergedModel(yaml: String) throws(SearchError) -> LlamaModel {
        do {
            var config = try MergeConfig(yaml: yaml, path: runDirectory + " (candidate recipe)")
            if !recipePaths.isEmpty { config.renameModels { recipePaths.reference($0) } }
            let plan = try MergePlan(config: config, seed: configuration.cmaes.mergeSeed)
            let merged = try MergedModel(plan: plan)
            return try EvolveArchitecture(config: merged.config).model(weights: merged.checkpoint)
        } catch let error as SearchError {
            throw error
        } catch {
            throw .invalidConfiguration(key: "recipe", reason: "the candidate recipe cannot be merged: \(error)\n\(yaml)")
        }
    }

    /// Merges the recipe (YAML text) in memory and scores it on the training examples: what every CMA-ES
    /// candidate costs, in this process or in an `amalgam worker`.
    func scoreCandidate(yaml: String) throws(SearchError) -> StoredCandidate {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let perTask = try tasks.trainScores(model: try mergedModel(yaml: yaml), tokenizer: tokenizer, formatter: formatter)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return StoredCandidate(recipe: yaml, metrics: tasks.metrics(perTask), fitness: tasks.fitness(perTask), seconds: seconds,
                               scores: perTask.flatMap { $0 }.map { Float($0) })
    }

    /// JSON for the CMA-ES state (which may hold ±∞ before its first generation).
    static var jsonEncoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    static var jsonDecoder: JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    /// Commits the CMA-ES state after a generation as one step of the store: the `search` blob (the
    /// `RecipeSearch` as JSON) and a record with the evaluations done and the seconds spent.
    func saveSearch(_ search: RecipeSearch, seconds: Double, in store: any RunStore) throws(SearchError) {
        guard let data = try? Self.jsonEncoder.encode(search) else { throw .runFolder(path: store.location, reason: "cannot encode the CMA-ES state") }
        // σ after the generation: the history `cmaesHistory` draws (older runs recorded only the first two).
        let sigma = search.cmaes.state.sigma.isFinite ? "\(search.cmaes.state.sigma)" : "null"
        let record = "{\"evaluations\": \(search.evaluations), \"seconds\": \(seconds), \"sigma\": \(sigma), \"restart\": \(search.restart)}"
        try store.commit(RunStep(number: search.evaluations, records: [RunStep.Record(step: search.evaluations, json: record)],
                                 blobs: ["search": [UInt8](data)]))
    }

    /// A CMA-ES run's history: one point per generation, from the store (the last `search` state holds
    /// every candidate's fitness; each generation's record holds σ, for runs made since amalgam records it).
    public static func cmaesHistory(in folder: RunFolder) throws(SearchError) -> [CMAESGenerationPoint] {
        guard let bytes = try folder.blob("search"), let search = try? jsonDecoder.decode(RecipeSearch.self, from: Data(bytes)) else {
            return []
        }
        var sigmaAfter: [Int: Double] = [:]
        if let last = try folder.latestStep() {
            for r in try folder.records(in: 0...last) {
                if let sigma = (try? JSONValue.parse(r.json))?["sigma"]?.doubleValue { sigmaAfter[r.step] = sigma }
            }
        }
        var points: [CMAESGenerationPoint] = []
        var best = -Double.infinity
        var start = 0
        while start < search.evaluated.count {
            let first = search.evaluated[start]
            var end = start
            while end < search.evaluated.count, search.evaluated[end].restart == first.restart,
                  search.evaluated[end].generation == first.generation { end += 1 }
            let fitness = search.evaluated[start..<end].map(\.fitness)
            best = max(best, fitness.max()!)
            points.append(CMAESGenerationPoint(evaluations: end, restart: first.restart, generation: first.generation,
                                               bestSoFar: best, generationBest: fitness.max()!,
                                               generationMean: fitness.reduce(0, +) / Double(fitness.count), sigma: sigmaAfter[end]))
            start = end
        }
        return points
    }

    /// The CMA-ES state and seconds of the last finished generation: from the store, or from `meta` in a
    /// folder of the older format (main at d184d06 kept them there).
    func savedSearch(in store: any RunStore) throws(SearchError) -> (search: RecipeSearch, seconds: Double)? {
        if let step = try store.latestStep(), let bytes = try store.blob("search") {
            guard let search = try? Self.jsonDecoder.decode(RecipeSearch.self, from: Data(bytes)) else { return nil }
            let record = try store.records(in: step...step).first.flatMap { try? JSONValue.parse($0.json) }
            return (search, record?["seconds"]?.doubleValue ?? 0)
        }
        guard let folder = store as? RunFolder, let text = try folder.meta("search"),
              let search = try? Self.jsonDecoder.decode(RecipeSearch.self, from: Data(text.utf8)) else { return nil }
        return (search, Double(try folder.meta("seconds") ?? "0") ?? 0)
    }

    func runCMAES(resume: Bool, stopAfter: Int?, progress: (EvolveProgress) -> Void) throws(SearchError) -> EvolveResult {
        let settings = try recipeSearchConfiguration()
        let place: CMAESPlace
        var postgres: PostgresRunStore?
        var search: RecipeSearch
        var secondsBefore = 0.0
        if let target = store {
            // Created at the first open (with or without --resume), continued afterwards only with it.
            let store = try PostgresRunStore.open(url: target.url, run: target.run, kind: Self.cmaesKind, create: true, resume: resume, claim: true)
            // The run folder holds the outputs only (the best recipe by default).
            do { try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true) } catch {
                throw .runFolder(path: runDirectory, reason: "cannot make the folder for the run's outputs: \(error)")
            }
            try store.checkConfiguration(RunConfiguration(encoding: configuration))
            if let saved = try savedSearch(in: store) {
                search = saved.search
                secondsBefore = saved.seconds
            } else if try store.latestStep() != nil {
                throw .runFolder(path: store.location, reason: "the CMA-ES state is missing or unreadable; the run is damaged: start another run")
            } else {
                search = try RecipeSearch(configuration: settings)
                try saveSearch(search, seconds: 0, in: store)
            }
            // What an `amalgam worker` rebuilds the run from (the checked configuration: the same bytes each time).
            try publishConfiguration(in: store, step: try store.latestStep() ?? search.evaluations)
            place = .store(store)
            postgres = store
        } else if resume {
            let folder: RunFolder
            folder = try RunFolder.open(path: runDirectory, kind: Self.cmaesKind, durability: durability)
            try checkSaved(folder)
            guard let saved = try savedSearch(in: folder) else {
                throw .runFolder(path: runDirectory, reason: "the CMA-ES state is missing or unreadable; the run folder is damaged")
            }
            search = saved.search
            secondsBefore = saved.seconds
            place = .folder(folder)
        } else {
            let fresh = try RecipeSearch(configuration: settings)
            search = fresh
            place = .folder(try RunFolder.create(path: runDirectory, kind: Self.cmaesKind, durability: durability) { (f: RunFolder) throws(SearchError) in
                try f.database.execute("""
                    CREATE TABLE candidates (evaluation INTEGER PRIMARY KEY, recipe TEXT NOT NULL, metrics TEXT NOT NULL,
                        fitness REAL NOT NULL, scores BLOB NOT NULL, seconds REAL NOT NULL);
                    """)
                try f.setMeta("experiment", json: configuration)
                try self.saveSearch(fresh, seconds: 0, in: f)
            })
        }
        let started = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
        let atOpen = search.evaluations
        var best = search.best?.fitness ?? -.infinity
        var scored = 0
        while !search.isFinished {
            let first = search.evaluations
            var generation: [Double] = []
            try search.step { (recipes: [MergeRecipe]) throws(SearchError) -> [[String: Double]] in
                if let queue, let postgres {
                    let done = try evaluateThroughQueue(recipes.map(\.yaml), first: first, store: postgres, options: queue,
                                                        stopAfter: stopAfter, scored: &scored) { (candidate, finished) in
                        generation.append(candidate.fitness)
                        best = max(best, candidate.fitness)
                        progress(EvolveProgress(passes: first + finished, budget: configuration.budget, passesAtOpen: atOpen, bestFitness: best,
                                                meanFitness: generation.reduce(0, +) / Double(generation.count), diversity: nil, seconds: elapsed()))
                    }
                    return done.map(\.metrics)
                }
                var out: [[String: Double]] = []
                for (i, recipe) in recipes.enumerated() {
                    let index = first + i
                    let yaml = recipe.yaml
                    // A candidate scored before a kill is taken back from the store (same recipe, same numbers).
                    var metrics: [String: Double]
                    var fitness: Double
                    if let cached = try place.candidate(index), cached.recipe == yaml {
                        metrics = cached.metrics
                        fitness = cached.fitness
                    } else {
                        if let stopAfter, scored >= stopAfter { throw Self.stopped }
                        scored += 1
                        var candidate = try scoreCandidate(yaml: yaml)
                        metrics = candidate.metrics
                        fitness = candidate.fitness
                        let bytes = candidate.scores.withUnsafeBytes { [UInt8]($0) }
                        candidate.scores = []
                        let json = String(decoding: (try? Self.jsonEncoder.encode(metrics)) ?? Data("{}".utf8), as: UTF8.self)
                        try place.keep(candidate, index: index, metricsJSON: json, scores: bytes, step: first)
                    }
                    out.append(metrics)
                    generation.append(fitness)
                    best = max(best, fitness)
                    progress(EvolveProgress(passes: index + 1, budget: configuration.budget, passesAtOpen: atOpen, bestFitness: best,
                                            meanFitness: generation.reduce(0, +) / Double(generation.count), diversity: nil, seconds: elapsed()))
                }
                return out
            }
            try saveSearch(search, seconds: secondsBefore + elapsed(), in: place.store)
        }
        guard let winner = search.best, let index = search.evaluated.firstIndex(of: winner) else {
            throw .invalidConfiguration(key: "budget", reason: "\(configuration.budget) passes do not fit one CMA-ES generation; raise the budget or lower cmaes.population")
        }
        let recipe = try settings.genome.recipe(winner.genotype)
        let recipePath = configuration.recipeOutput ?? configuration.output.map { $0 + ".yml" } ?? runDirectory + "/best.yml"
        do { try writeFileAtomically(recipe.yaml, to: recipePath) } catch {
            throw .runFolder(path: recipePath, reason: "cannot write the best recipe: \(error)")
        }
        let model = try mergedModel(recipe)
        var result = try testResult(model: model, best: "evaluation \(index)", trainFitness: winner.fitness, trainScores: winner.metrics,
                                    passes: search.evaluations, seedPasses: 0, seconds: secondsBefore + elapsed())
        result.recipe = recipePath
        if let output = configuration.output {
            do {
                let plan = try MergePlan(config: try MergeConfig(yaml: recipe.yaml, path: recipePath), seed: configuration.cmaes.mergeSeed)
                try MergeExecutor(plan: plan).run(MergeOptions(outputPath: output, overwrite: true))
            } catch {
                throw .runFolder(path: output, reason: "cannot write the best model: \(error)")
            }
            result.output = output
        }
        try place.keep(result, step: search.evaluations)
        return result
    }
}

/// One CMA-ES generation of an evolve run, for its history.
public struct CMAESGenerationPoint: Sendable, Equatable {
    /// Candidates scored after this generation.
    public var evaluations: Int
    /// Restart (0: the first run) and generation within it.
    public var restart: Int, generation: Int
    /// Best fitness so far, and the best and mean fitness of this generation's candidates.
    public var bestSoFar: Double, generationBest: Double, generationMean: Double
    /// Step size σ after the generation (nil for runs made before amalgam recorded it).
    public var sigma: Double?
}

/// A CMA-ES candidate as a store other than a run folder keeps it (the blob `candidate/N`, JSON): its
/// recipe, metrics, fitness, seconds, and its per-example scores (f32, as the run folder's `scores`).
struct StoredCandidate: Codable {
    var recipe: String
    var metrics: [String: Double]
    var fitness: Double
    var seconds: Double
    var scores: [Float] = []
}

/// Where a CMA-ES run keeps itself: a run folder (its `candidates` table and `meta.result`, as before the
/// PostgreSQL store), or another `RunStore` (the blobs `candidate/N` and `result`).
enum CMAESPlace {
    case folder(RunFolder)
    case store(any RunStore)

    var store: any RunStore {
        switch self {
        case .folder(let folder): return folder
        case .store(let store): return store
        }
    }

    /// The candidate scored as evaluation `index`, if one was kept.
    func candidate(_ index: Int) throws(SearchError) -> StoredCandidate? {
        switch self {
        case .folder(let folder):
            let s = try folder.database.statement("SELECT recipe, metrics, fitness, seconds FROM candidates WHERE evaluation = ?").bind(.int(Int64(index)))
            guard try s.step(), let m = try? EvolveRunner.jsonDecoder.decode([String: Double].self, from: Data((s.text(1) ?? "").utf8)) else { return nil }
            return StoredCandidate(recipe: s.text(0) ?? "", metrics: m, fitness: s.double(2), seconds: s.double(3))
        case .store(let store):
            guard let bytes = try store.blob("candidate/\(index)") else { return nil }
            return try? EvolveRunner.jsonDecoder.decode(StoredCandidate.self, from: Data(bytes))
        }
    }

    /// Keeps a scored candidate (its own transaction), leaving the store's step at `step`.
    func keep(_ candidate: StoredCandidate, index: Int, metricsJSON: String, scores: [UInt8], step: Int) throws(SearchError) {
        switch self {
        case .folder(let folder):
            try folder.database.transaction { () throws(SearchError) in
                _ = try folder.database.statement("INSERT OR REPLACE INTO candidates VALUES (?, ?, ?, ?, ?, ?)")
                    .bind(.int(Int64(index)), .text(candidate.recipe), .text(metricsJSON), .double(candidate.fitness), .blob(scores),
                          .double(candidate.seconds)).step()
            }
        case .store(let store):
            var c = candidate
            c.scores = scores.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            guard let data = try? EvolveRunner.jsonEncoder.encode(c) else { throw .runFolder(path: store.location, reason: "cannot encode candidate \(index)") }
            try store.commit(RunStep(number: step, blobs: ["candidate/\(index)": [UInt8](data)]))
        }
    }

    /// Keeps the run's result (`meta.result`, or the blob `result`).
    func keep(_ result: EvolveResult, step: Int) throws(SearchError) {
        switch self {
        case .folder(let folder):
            try folder.database.transaction { () throws(SearchError) in try folder.setMeta("result", json: result) }
        case .store(let store):
            guard let data = try? EvolveRunner.jsonEncoder.encode(result) else { throw .runFolder(path: store.location, reason: "cannot encode the result") }
            try store.commit(RunStep(number: step, blobs: ["result": [UInt8](data)]))
        }
    }
}
