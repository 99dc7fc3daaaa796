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
            configuration names (at the same paths on this machine: a shared folder, or copies), scores it on the run's training \
            examples, writes the result once, and claims the next. Before it starts, every seed model's files are hashed and \
            compared with the coordinator's (a copy that differs is refused, naming it). It waits for a named run that has not started yet, and exits when the run is finished. \
            Kill it at any moment: its candidate goes back to the queue when its lease runs out.
            """
    )

    @Option(help: ArgumentHelp("The PostgreSQL run store (default: $AMALGAM_STORE).", valueName: "postgres://USER@HOST:PORT/DB"))
    var store: String?

    @Option(name: .customLong("run"), help: "The run to serve (default: the database's one unfinished CMA-ES run).")
    var runName: String?

    @Option(help: "Evaluations at once in this process (each its own thread and connection).")
    var concurrency: Int = 1

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
        let (configuration, seeds) = try EvolveWorker.configuration(url: url, run: run) {
            printError("waiting for run `\(run)` to be started in \(PostgresAddress.displayed(url)) (`amalgam evolve CONFIG --store URL --run \(run) --workers`)")
        }
        let hashing = Date()
        try EvolveWorker.checkSeedModels(configuration.models, against: seeds, run: run)
        printError("seed models: \(seeds.count), the coordinator's bytes (content hashes checked in \(String(format: "%.1f", Date().timeIntervalSince(hashing))) s)")
        let tokenizer = try LanguageModel.tokenizer(of: ModelSource.open(configuration.models[0]))
        let runner = try EvolveRunner(configuration: configuration, runDirectory: place, tokenizer: tokenizer)
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
