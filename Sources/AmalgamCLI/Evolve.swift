import AmalgamCheckpoint
import AmalgamCore
import AmalgamEval
import AmalgamMerge
import AmalgamSearch
import AmalgamTokenizer
import ArgumentParser
import Foundation

/// `amalgam evolve CONFIG.yml`: M2N2 over checkpoints or CMA-ES over merge recipes, scored on task files,
/// in a durable run folder.
struct Evolve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evolve a merged model: M2N2 over checkpoints on disk, or CMA-ES over mergekit-evolve recipes (docs/evolve.md).",
        discussion: "The run lives in a run folder (SQLite + genome files): kill it at any moment and continue with --resume; the result is the same as an uninterrupted run."
    )

    @Argument(help: "The evolve config (YAML; docs/evolve.md lists every key).")
    var config: String

    @Option(help: "The run folder (default: the config's run_dir, else evolve-runs/CONFIG_NAME).")
    var runDir: String?

    @Flag(help: "Continue the run in the run folder (started with the same config); start it if the folder does not exist yet.")
    var resume = false

    @Option(help: ArgumentHelp("Keep the run in a PostgreSQL run store instead of the run folder (CMA-ES only; default: $AMALGAM_STORE); the run folder then holds only the outputs (docs/distributed.md).",
                               valueName: "postgres://USER@HOST:PORT/DB"))
    var store: String?

    @Option(name: .customLong("run"), help: "The run's name in the --store database (default: the config's name).")
    var runName: String?

    @Flag(help: "With --store: share each generation's evaluations with `amalgam worker` processes through the store's work queue (CMA-ES; docs/distributed.md). The result is the same as without, whatever the number of workers.")
    var workers = false

    @Flag(help: "With --workers: leave every evaluation to the workers (this process only asks, waits and tells).")
    var coordinateOnly = false

    @OptionGroup var claim: ClaimOptions

    @Option(help: "Overrides the config's seed.")
    var seed: UInt64?

    @OptionGroup var weightsOption: WeightsOption

    @Flag(help: "No progress line.")
    var quiet = false

    func run() throws {
        relaunchWithOpenBLASCoreTypeIfNeeded()
        var configuration = try EvolveConfiguration(contentsOf: config)
        if let seed { configuration.seed = seed }
        let name = ((config as NSString).lastPathComponent as NSString).deletingPathExtension
        let directory = runDir ?? configuration.runDirectory ?? "evolve-runs/" + name
        let storeURL = runStoreURL(store)
        if let storeURL, !PostgresAddress.isPostgresURL(storeURL) {
            throw CLIInputError("--store \(PostgresAddress.displayed(storeURL)): not a PostgreSQL URL (postgres://USER@HOST:PORT/DB); without --store the run lives in the run folder")
        }
        if runName != nil && storeURL == nil { throw CLIInputError("--run names a run in a --store database; give --store (or AMALGAM_STORE), or leave --run out") }
        if workers && storeURL == nil { throw CLIInputError("--workers shares a run kept in a --store database; give --store (or AMALGAM_STORE)") }
        if coordinateOnly && !workers { throw CLIInputError("--coordinate-only leaves the evaluations to workers: give --workers too") }
        if workers && configuration.method != .cmaes { throw CLIInputError("--workers shares CMA-ES runs only (method: cmaes); M2N2 over workers is not built") }
        try claim.check()
        if storeURL == nil, !resume, FileManager.default.fileExists(atPath: directory) {
            throw CLIInputError("\(directory) already exists: pass --resume to continue that run, or choose another --run-dir")
        }
        let parent = (directory as NSString).deletingLastPathComponent
        if !parent.isEmpty { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) }
        let tokenizer = try evolveTokenizer(configuration.models[0])
        let runner = try EvolveRunner(configuration: configuration, runDirectory: directory, tokenizer: tokenizer,
                                      precision: weightsOption.precision)
        if let storeURL { runner.store = (storeURL, runName ?? name) }
        if workers {
            var queue = EvolveQueueOptions()
            queue.evaluateLocally = !coordinateOnly
            queue.claim = claim.applied(to: queue.claim)
            runner.queue = queue
        }
        let place = storeURL.map { "\(PostgresAddress.displayed($0)) (run `\(runName ?? name)`)" } ?? directory
        printError("\(resume && (storeURL != nil || RunFolder.exists(at: directory)) ? "resuming" : "starting") \(configuration.method.rawValue) run in \(place): \(configuration.models.count) models, "
            + "\(runner.tasks.exampleCount) training examples (\(zip(runner.tasks.names, runner.tasks.trainCounts).map { "\($0) \($1)" }.joined(separator: ", "))), budget \(configuration.budget) passes")
        let progress = ProgressDisplay(label: "evolve \(configuration.method.rawValue)", enabled: !quiet)
        let resuming = resume && (storeURL != nil || RunFolder.exists(at: directory))
        let finished = try runner.run(resume: resuming) { p in
            let done = p.passes - p.passesAtOpen
            let rate = p.seconds > 0 ? Double(done) / p.seconds : 0
            var detail = String(format: "fitness best %.4f mean %.4f", p.bestFitness, p.meanFitness)
            if let d = p.diversity { detail += String(format: "  diversity %.3f", d) }
            detail += String(format: "  %.3f passes/s", rate)
            progress.update(done: p.passes, total: p.budget, unit: "passes", detail: detail,
                            eta: rate > 0 ? Double(p.budget - p.passes) / rate : nil)
        }
        guard let result = finished else { throw CLIInputError("the run stopped before its budget") }
        progress.finish()
        var rows: [[String]] = []
        for task in runner.tasks.names {
            rows.append([task, String(format: "%.4f", result.trainScores[task] ?? 0), String(format: "%.4f", result.testScores[task] ?? 0),
                         "\(result.testCounts[task] ?? 0)"])
        }
        rows.append(["fitness (weighted)", String(format: "%.4f", result.trainFitness), String(format: "%.4f", result.testFitness), ""])
        print("best: \(result.best) after \(result.passes) passes" + (result.seedPasses > 0 ? " (+\(result.seedPasses) seed passes)" : "")
            + String(format: " in %@", formatDuration(result.seconds)))
        print(Eval.table(header: ["task", "train", "test", "test n"], rows: rows), terminator: "")
        if let recipe = result.recipe { print("best recipe: \(recipe)") }
        if let output = result.output { print("best model: \(output)") }
        printError(storeURL == nil ? "run folder: \(directory) (run.sqlite holds every candidate's scores)"
                   : "run: \(place) (every candidate's scores are its candidate/N blobs)")
    }

    /// The first model's tokenizer: tokenizer.json of a folder, or the one a GGUF file's metadata describes.
    func evolveTokenizer(_ path: String) throws -> Tokenizer {
        try LanguageModel.tokenizer(of: ModelSource.open(path))
    }
}
