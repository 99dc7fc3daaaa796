import AmalgamCheckpoint
import AmalgamCore
import AmalgamEval
import AmalgamSearch
import ArgumentParser
import Foundation

/// `amalgam worker --store URL [--run NAME]`: evaluates candidates of a CMA-ES run that `amalgam evolve
/// --store URL --run NAME --workers` coordinates (docs/distributed.md).
struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate candidates of a CMA-ES run kept in PostgreSQL, beside its coordinator `amalgam evolve --store URL --run NAME --workers` (docs/distributed.md).",
        discussion: """
            Claims candidates from the run's work queue under a lease, merges each recipe in memory from the seed models the run's \
            configuration names (at the same paths on this machine: a shared folder, or copies; or elsewhere, through --path-map), \
            scores it on the run's training examples, writes the result once, and claims the next. Before it starts, every seed \
            model's and task file's bytes are hashed and compared with the coordinator's (a copy that differs is refused, naming it). \
            Example, with the coordinator's models under /mnt/models and this machine's copies under /data/models: \
            amalgam worker --store postgres://amalgam@db:5432/runs --path-map /mnt/models=/data/models. It waits for a named run that has not started yet, and exits when the run is finished. \
            Kill it at any moment: its candidate goes back to the queue when its lease runs out.
            """
    )

    @Option(help: ArgumentHelp("The PostgreSQL run store (default: $AMALGAM_STORE).", valueName: "postgres://USER@HOST:PORT/DB"))
    var store: String?

    @Option(name: .customLong("run"), help: "The run to serve (default: the database's one unfinished CMA-ES run).")
    var runName: String?

    @Option(help: "Evaluations at once in this process (each its own thread and connection).")
    var concurrency: Int = 1

    @Option(name: .customLong("path-map"), help: ArgumentHelp("Read a path of the run's configuration (models, task files; repeatable) that is FROM or lies under it at TO on this machine.",
                                                               valueName: "FROM=TO"))
    var pathMap: [String] = []

    @OptionGroup var claim: ClaimOptions

    @Flag(help: "No line per evaluation.")
    var quiet = false

    func run() throws {
        relaunchWithOpenBLASCoreTypeIfNeeded()
        guard let url = runStoreURL(store) else {
            throw CLIInputError("give the run store with --store postgres://USER@HOST:PORT/DB (or AMALGAM_STORE)")
        }
        guard PostgresAddress.isPostgresURL(url) else {
            throw CLIInputError("--store \(PostgresAddress.displayed(url)): not a PostgreSQL URL (postgres://USER@HOST:PORT/DB)")
        }
        guard concurrency >= 1 else { throw CLIInputError("--concurrency \(concurrency): give at least 1") }
        try claim.check()
        let run = try runName ?? EvolveWorker.soleUnfinishedRun(url: url)
        let place = "\(PostgresAddress.displayed(url)) (run `\(run)`)"
        let paths: PathMap
        do { paths = try PathMap(pathMap) } catch {
            guard case let .invalidConfiguration(_, reason) = error else { throw error }
            throw CLIInputError("--path-map: \(reason)")
        }
        let shared = try EvolveWorker.sharedRun(url: url, run: run) {
            printError("waiting for run `\(run)` to be started in \(PostgresAddress.displayed(url)) (`amalgam evolve CONFIG --store URL --run \(run) --workers`)")
        }
        let configuration = shared.configuration.mapped(by: paths)
        for (theirs, ours) in zip(shared.configuration.models + shared.configuration.taskPaths, configuration.models + configuration.taskPaths) where theirs != ours {
            printError("\(theirs) → \(ours)")
        }
        let hashing = Date()
        try EvolveWorker.checkSeedInputs(configuration, against: shared, run: run)
        printError("seed models: \(shared.seedModels.count)" + (shared.taskFiles.map { ", task files: \($0.count)" } ?? "")
                   + ", the coordinator's bytes (content hashes checked in \(String(format: "%.1f", Date().timeIntervalSince(hashing))) s)")
        let tokenizer = try LanguageModel.tokenizer(of: ModelSource.open(configuration.models[0]))
        let runner = try EvolveRunner(configuration: configuration, runDirectory: place, tokenizer: tokenizer)
        runner.recipePaths = paths
        var options = EvolveWorker.Options()
        options.concurrency = concurrency
        options.claim = claim.applied(to: options.claim)
        printError("worker for \(place): \(configuration.models.count) models, \(runner.tasks.exampleCount) training examples, \(concurrency) at once")
        let log = WorkerLog(quiet: quiet)
        let started = Date()
        let done = try EvolveWorker(url: url, run: run, runner: runner, options: options).work { e in log.add(e) }
        let seconds = Date().timeIntervalSince(started)
        let median = log.medianCoordinationMilliseconds.map { String(format: ", coordination %.2f ms per candidate (median)", $0) } ?? ""
        print("worker done: \(done) evaluations in \(formatDuration(seconds))" + median
            + (log.refused > 0 ? "; \(log.refused) late results refused (their leases had run out)" : ""))
    }
}

/// The worker's line per evaluation and its tally.
final class WorkerLog: @unchecked Sendable {
    let quiet: Bool
    private var coordination: [Double] = []
    private(set) var refused = 0
    private let lock = NSLock()

    init(quiet: Bool) { self.quiet = quiet }

    func add(_ e: EvolveWorker.Event) {
        lock.lock()
        defer { lock.unlock() }
        coordination.append(e.coordinationSeconds * 1000)
        if !e.accepted { refused += 1 }
        guard !quiet else { return }
        printError(String(format: "candidate %d (attempt %d): fitness %.4f, %.2f s%@", e.index, e.attempt, e.fitness, e.evaluationSeconds,
                          e.accepted ? "" : " — refused: the lease had run out, another claimant does it"))
    }

    var medianCoordinationMilliseconds: Double? {
        lock.lock()
        defer { lock.unlock() }
        guard !coordination.isEmpty else { return nil }
        return coordination.sorted()[coordination.count / 2]
    }
}
