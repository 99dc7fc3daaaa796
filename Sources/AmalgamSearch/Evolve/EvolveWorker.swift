import AmalgamCheckpoint
import AmalgamCore
import Foundation
import PostgresNIO

/// How a process claims candidates from a run's work queue: an `amalgam worker`, and the coordinator of
/// `amalgam evolve --workers` when it evaluates too.
public struct ClaimSettings: Sendable, Equatable {
    /// The lease of a claimed candidate (seconds, by the server's clock); heartbeats extend it every third of
    /// it. A claimant that stops heartbeating (killed, cut off) loses the candidate when it runs out.
    public var leaseSeconds = 60.0
    /// Claims of one candidate at most: after as many expired leases it is marked failed and the run stops.
    public var maxAttempts = 3
    /// Seconds between two looks at the queue while it has nothing to claim (or while results are awaited).
    public var pollSeconds: Double
    /// Seconds slept after a claim, before evaluating (tests only: makes an evaluation long enough to be killed in).
    public var delayBeforeEvaluation = 0.0

    public init(pollSeconds: Double) { self.pollSeconds = pollSeconds }
}

/// How a CMA-ES run kept in PostgreSQL shares its evaluations through the store's work queue
/// (`amalgam evolve --store URL --run NAME --workers`, docs/distributed.md).
public struct EvolveQueueOptions: Sendable, Equatable {
    /// Whether the coordinating process evaluates queued candidates itself while it waits (`--coordinate-only`: no).
    public var evaluateLocally = true
    /// How the coordinator claims (when it evaluates) and how often it looks for results.
    public var claim = ClaimSettings(pollSeconds: 0.05)

    public init() {}
}

/// The queue: indices and payloads of the candidates of one generation.
extension PostgresRunStore {
    /// The results written for indices in `range`, in index order.
    public func workResults(in range: Range<Int>) throws(SearchError) -> [WorkResult] {
        let rows = try query("""
            SELECT idx, attempt, worker, result FROM amalgam_results
             WHERE run_id = \(runID) AND idx >= \(Int64(range.lowerBound)) AND idx < \(Int64(range.upperBound)) ORDER BY idx
            """)
        var out: [WorkResult] = []
        for row in rows {
            let (index, attempt, worker, bytes) = try Self.decoded(at: location) { try row.decode((Int64, Int32, String, ByteBuffer).self) }
            out.append(WorkResult(index: Int(index), attempt: Int(attempt), worker: worker, bytes: Array(bytes.readableBytesView)))
        }
        return out
    }

    /// The indices in `range` marked failed (claimed `maxAttempts` times, never finished).
    public func failedItems(in range: Range<Int>) throws(SearchError) -> [Int] {
        let rows = try query("""
            SELECT idx FROM amalgam_work WHERE run_id = \(runID) AND state = 'failed'
               AND idx >= \(Int64(range.lowerBound)) AND idx < \(Int64(range.upperBound)) ORDER BY idx
            """)
        var out: [Int] = []
        for row in rows { out.append(Int(try Self.decoded(at: location) { try row.decode(Int64.self) })) }
        return out
    }

    /// The items being evaluated (claimed under a lease not yet finished): index and attempt, in index order.
    public func runningItems() throws(SearchError) -> [(index: Int, attempt: Int)] {
        let rows = try query("SELECT idx, attempt FROM amalgam_work WHERE run_id = \(runID) AND state = 'running' ORDER BY idx")
        var out: [(index: Int, attempt: Int)] = []
        for row in rows {
            let (index, attempt) = try Self.decoded(at: location) { try row.decode((Int64, Int32).self) }
            out.append((Int(index), Int(attempt)))
        }
        return out
    }

    /// Puts the failed items in `range` back in the queue with their attempts reset (a resumed coordinator
    /// gives them another chance); returns how many.
    @discardableResult
    public func retryFailed(in range: Range<Int>) throws(SearchError) -> Int {
        let result = try query("""
            UPDATE amalgam_work SET state = 'queued', attempt = 0, lease_token = NULL, worker = NULL
             WHERE run_id = \(runID) AND state = 'failed' AND idx >= \(Int64(range.lowerBound)) AND idx < \(Int64(range.upperBound))
            """)
        return result.metadata.rows ?? 0
    }

    /// Another connection to the same run (no claim): for a thread beside the one using this store.
    func reopened() throws(SearchError) -> PostgresRunStore {
        PostgresRunStore(address: address, runName: runName, runID: runID, kind: kind, connection: try Self.connect(address))
    }

    /// The names of the runs of kind `kind` in the database at `url`, oldest first; with `lacking`, only those
    /// without a blob of that name (for evolve runs: `result`, so the unfinished ones). None in a database
    /// amalgam has not used yet.
    public static func runNames(url: String, kind: String, lacking blob: String? = nil) throws(SearchError) -> [String] {
        let address = try PostgresAddress(parsing: url)
        let connection = try connect(address)
        defer { _ = try? connection.close().wait() }
        let at = "PostgreSQL run store \(address.display)"
        let exists = try run(connection, "SELECT to_regclass('amalgam_runs') IS NOT NULL", at: at)
        guard try exists.first.map({ (row) throws(SearchError) in try decoded(at: at) { try row.decode(Bool.self) } }) ?? false else { return [] }
        let sql: PostgresQuery
        if let blob {
            sql = """
                SELECT r.name FROM amalgam_runs r WHERE r.kind = \(kind)
                   AND NOT EXISTS (SELECT 1 FROM amalgam_run_blobs b WHERE b.run_id = r.id AND b.name = \(blob)) ORDER BY r.id
                """
        } else {
            sql = "SELECT name FROM amalgam_runs WHERE kind = \(kind) ORDER BY id"
        }
        let rows = try run(connection, sql, at: at)
        var out: [String] = []
        for row in rows { out.append(try decoded(at: at) { try row.decode(String.self) }) }
        return out
    }
}

/// Keeps one claimed item's lease alive from its own thread and connection while the claimant evaluates:
/// a heartbeat every third of the lease. A heartbeat that finds the lease gone (expired and requeued)
/// marks it lost; the claimant's late `finish` is then refused by the queue anyway.
final class LeaseKeeper: @unchecked Sendable {
    private let condition = NSCondition()
    private var item: WorkItem?
    private var lost = false
    private var stopping = false
    private let ended = DispatchSemaphore(value: 0)
    private let store: PostgresRunStore
    private let leaseSeconds: Double

    /// A keeper with its own connection to `store`'s run.
    init(_ store: PostgresRunStore, leaseSeconds: Double) throws(SearchError) {
        self.store = try store.reopened()
        self.leaseSeconds = leaseSeconds
        Thread { [self] in loop() }.start()
    }

    /// Starts keeping `item`'s lease.
    func hold(_ item: WorkItem) {
        condition.lock()
        self.item = item
        lost = false
        condition.signal()
        condition.unlock()
    }

    /// Stops keeping the lease; false when a heartbeat found it lost.
    @discardableResult
    func release() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        item = nil
        return !lost
    }

    /// Ends the thread and closes its connection.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
        ended.wait()
    }

    private func loop() {
        condition.lock()
        while !stopping {
            guard let current = item else {
                condition.wait()
                continue
            }
            _ = condition.wait(until: Date(timeIntervalSinceNow: leaseSeconds / 3))
            guard !stopping, item == current else { continue }
            condition.unlock()
            // A failed statement (a lost connection) is not a lost lease: the next beat tries again.
            let alive = (try? store.heartbeat(current, leaseSeconds: leaseSeconds)) ?? true
            condition.lock()
            if !alive, item == current { lost = true }
        }
        condition.unlock()
        store.close()
        ended.signal()
    }
}

/// A model or file a run shared with workers reads: its reference in the run's configuration and the
/// content hash of its bytes on the coordinator's machine, which every worker's copy must have.
public struct SeedInput: Codable, Sendable, Equatable {
    public var reference: String
    public var contentHash: String

    public init(reference: String, contentHash: String) {
        self.reference = reference
        self.contentHash = contentHash
    }

    /// The seed models at `references`, hashed (`ModelSource.contentHash`: every file of the model).
    public static func models(_ references: [String]) throws(SearchError) -> [SeedInput] {
        var out: [SeedInput] = []
        for reference in references {
            do { out.append(SeedInput(reference: reference, contentHash: try ModelSource.contentHash(reference))) } catch {
                throw .badData(path: reference, reason: "cannot hash the model's files: \(error)")
            }
        }
        return out
    }

    /// The files at `paths` (task files), hashed.
    public static func files(_ paths: [String]) throws(SearchError) -> [SeedInput] {
        var out: [SeedInput] = []
        for path in paths {
            guard let hash = SHA256.hex(contentsOf: path) else { throw .badData(path: path, reason: "cannot read the file to hash it") }
            out.append(SeedInput(reference: path, contentHash: hash))
        }
        return out
    }
}

/// What a worker needs of a run before it claims: the configuration, and the content hashes of the seed
/// models and task files as the coordinator published them.
public struct SharedRun: Sendable {
    public var configuration: EvolveConfiguration
    public var seedModels: [SeedInput]
    /// Nil for a run started before task files were hashed.
    public var taskFiles: [SeedInput]?
}

extension EvolveRunner {
    /// The blob a worker reads the run's configuration from (`EvolveConfiguration` as JSON).
    static let configurationBlob = "evolve-configuration"
    /// The blobs of the seed models' and the task files' content hashes (`[SeedInput]` as JSON), published
    /// with workers.
    static let seedModelsBlob = "seed-models", taskFilesBlob = "task-files"

    /// Commits the configuration as the blob `evolve-configuration`, and, when the run shares its evaluations
    /// with workers, the seed models' and task files' content hashes as `seed-models` and `task-files`,
    /// leaving the step at `step`. A seed model or task file whose bytes changed since the run published them
    /// is refused, naming it.
    func publishConfiguration(in store: any RunStore, step: Int) throws(SearchError) {
        guard let data = try? Self.jsonEncoder.encode(configuration) else {
            throw .runFolder(path: store.location, reason: "cannot encode the configuration")
        }
        var blobs: [String: [UInt8]] = [:]
        if try store.blob(Self.configurationBlob) != [UInt8](data) { blobs[Self.configurationBlob] = [UInt8](data) }
        if queue != nil {
            for (blob, inputs, what) in [(Self.seedModelsBlob, try SeedInput.models(configuration.models), "seed model"),
                                         (Self.taskFilesBlob, try SeedInput.files(configuration.taskPaths), "task file")] {
                if let bytes = try store.blob(blob) {
                    let published = try Self.decodedSeedInputs(bytes, at: store.location)
                    for (then, now) in zip(published, inputs) where then != now {
                        throw .runFolder(path: store.location, reason: "\(what) \(now.reference) changed since the run started (content hash "
                            + "\(then.contentHash.prefix(12))… then, \(now.contentHash.prefix(12))… now): put the run's \(what) back, or start another run")
                    }
                } else {
                    guard let encoded = try? Self.jsonEncoder.encode(inputs) else {
                        throw .runFolder(path: store.location, reason: "cannot encode the \(what)s' content hashes")
                    }
                    blobs[blob] = [UInt8](encoded)
                }
            }
        }
        if !blobs.isEmpty { try store.commit(RunStep(number: step, blobs: blobs)) }
    }

    static func decodedSeedInputs(_ bytes: [UInt8], at location: String) throws(SearchError) -> [SeedInput] {
        guard let seeds = try? jsonDecoder.decode([SeedInput].self, from: Data(bytes)) else {
            throw .runFolder(path: location, reason: "holds content hashes this amalgam cannot read: run the same amalgam version as the coordinator")
        }
        return seeds
    }

    /// One generation's evaluations through the work queue, as the coordinator does them: the candidates
    /// not kept yet are enqueued (recipes only), expired leases are requeued, this process evaluates
    /// queued ones itself unless told not to, and the results are gathered by candidate index. Returns the
    /// candidates in index order (so CMA-ES is told exactly as in one process) after committing them as the
    /// blobs `candidate/N`. `received` is called with each candidate as it arrives and the count so far.
    func evaluateThroughQueue(_ recipes: [String], first: Int, store: PostgresRunStore, options: EvolveQueueOptions, stopAfter: Int?,
                              scored: inout Int, received: (StoredCandidate, Int) -> Void) throws(SearchError) -> [StoredCandidate] {
        let range = first..<(first + recipes.count)
        var done: [Int: StoredCandidate] = [:]
        // A candidate of this generation kept before a kill (same recipe) is taken back.
        for (i, yaml) in recipes.enumerated() {
            if let bytes = try store.blob("candidate/\(first + i)"),
               let kept = try? Self.jsonDecoder.decode(StoredCandidate.self, from: Data(bytes)), kept.recipe == yaml {
                done[first + i] = kept
                received(kept, done.count)
            }
        }
        if done.count == recipes.count { return range.map { done[$0]! } }
        try store.retryFailed(in: range)
        try store.enqueue(recipes.indices.filter { done[first + $0] == nil }.map { (index: first + $0, payload: recipes[$0]) })
        var fresh: [String: [UInt8]] = [:]
        var keeper: LeaseKeeper?
        defer { keeper?.stop() }
        let me = "coordinator \(PostgresRunStore.applicationName)"
        while true {
            for result in try store.workResults(in: range) where done[result.index] == nil {
                guard let candidate = try? Self.jsonDecoder.decode(StoredCandidate.self, from: Data(result.bytes)),
                      candidate.recipe == recipes[result.index - first] else {
                    throw .runFolder(path: store.location, reason: "the result of candidate \(result.index) (from \(result.worker)) is not "
                        + "this run's candidate \(result.index); the run's queue was changed by something else: start another run")
                }
                done[result.index] = candidate
                fresh["candidate/\(result.index)"] = result.bytes
                received(candidate, done.count)
            }
            if done.count == recipes.count { break }
            try store.requeueExpired(maxAttempts: options.claim.maxAttempts)
            if let failed = try store.failedItems(in: range).first {
                throw .runFolder(path: store.location, reason: "candidate \(failed) was claimed \(options.claim.maxAttempts) times and never "
                    + "finished (each claimant died or lost its lease): see the workers' errors, then continue the run with --resume")
            }
            if options.evaluateLocally {
                if let stopAfter, scored >= stopAfter { throw Self.stopped }
                if let item = try store.claim(worker: me, leaseSeconds: options.claim.leaseSeconds) {
                    scored += 1
                    if keeper == nil {
                        keeper = try LeaseKeeper(store, leaseSeconds: options.claim.leaseSeconds)
                    }
                    let candidate = try scoreClaimed(item, keeper: keeper!, settings: options.claim)
                    _ = try store.finish(item, worker: me, result: try Self.encoded(candidate, at: store.location))
                    continue
                }
            }
            usleep(UInt32(options.claim.pollSeconds * 1e6))
        }
        // The generation's candidates as the blobs `candidate/N`, in one commit; the step stays at `first`.
        if !fresh.isEmpty { try store.commit(RunStep(number: first, blobs: fresh)) }
        return range.map { done[$0]! }
    }

    /// Scores a claimed candidate from its recipe while `keeper` holds the claim's lease (a worker, or the
    /// coordinator evaluating too); the lease is let go when the score is done or fails.
    func scoreClaimed(_ item: WorkItem, keeper: LeaseKeeper, settings: ClaimSettings) throws(SearchError) -> StoredCandidate {
        keeper.hold(item)
        defer { keeper.release() }
        if settings.delayBeforeEvaluation > 0 { usleep(UInt32(settings.delayBeforeEvaluation * 1e6)) }
        return try scoreCandidate(yaml: item.payload)
    }

    /// A candidate as the store and the queue keep it (JSON, sorted keys).
    static func encoded(_ candidate: StoredCandidate, at location: String) throws(SearchError) -> [UInt8] {
        guard let data = try? jsonEncoder.encode(candidate) else { throw .runFolder(path: location, reason: "cannot encode a candidate") }
        return [UInt8](data)
    }
}

/// What an `amalgam worker` does (issue #21): claims candidate evaluations of a CMA-ES run kept in
/// PostgreSQL, rebuilds each candidate from its recipe (an in-memory merge of the seed models the run's
/// configuration names), scores it on the run's training examples while a heartbeat keeps its lease, and
/// writes the result once; until the run is finished (its `result` is committed).
public final class EvolveWorker: @unchecked Sendable {
    /// How a worker works.
    public struct Options: Sendable {
        /// Evaluations at once in this process (each its own thread and connection).
        public var concurrency = 1
        /// How each of them claims.
        public var claim = ClaimSettings(pollSeconds: 0.2)

        public init() {}
    }

    /// One evaluation done.
    public struct Event: Sendable {
        /// The claimant (`amalgam PID on HOST #thread`).
        public var worker: String
        public var index: Int
        public var attempt: Int
        public var fitness: Double
        /// Seconds merging and scoring.
        public var evaluationSeconds: Double
        /// Seconds spent in the claim and in the finish (the coordination cost of the candidate).
        public var coordinationSeconds: Double
        /// False when the lease had run out and the result was refused (another claimant does the candidate).
        public var accepted: Bool
    }

    public let url: String
    public let run: String
    public let runner: EvolveRunner
    public let options: Options
    private let lock = NSLock()
    private var stopping = false
    private var failure: SearchError?

    /// The run a worker without `--run` serves: the one unfinished CMA-ES run of the database; an error
    /// names them when there are none or several.
    public static func soleUnfinishedRun(url: String) throws(SearchError) -> String {
        let names = try PostgresRunStore.runNames(url: url, kind: EvolveRunner.cmaesKind, lacking: "result")
        guard names.count == 1 else {
            let at = "PostgreSQL run store \(PostgresAddress.displayed(url))"
            if names.isEmpty {
                throw .runFolder(path: at, reason: "holds no unfinished CMA-ES run: start one with `amalgam evolve CONFIG --store URL --run NAME --workers`, "
                    + "or name the run to wait for with --run NAME")
            }
            throw .runFolder(path: at, reason: "holds \(names.count) unfinished CMA-ES runs (\(names.joined(separator: ", "))): choose one with --run NAME")
        }
        return names[0]
    }

    /// The configuration of the run `run` and its seed inputs' content hashes, once its coordinator has
    /// started it with workers: polls every `poll` seconds while the run does not exist yet or has not
    /// published them, calling `waiting` once.
    public static func sharedRun(url: String, run: String, poll: Double = 0.2, waiting: () -> Void = {}) throws(SearchError) -> SharedRun {
        var told = false
        while true {
            if try PostgresRunStore.runNames(url: url, kind: EvolveRunner.cmaesKind).contains(run) {
                let store = try PostgresRunStore.open(url: url, run: run, kind: EvolveRunner.cmaesKind, create: false, resume: true, claim: false)
                defer { store.close() }
                if let bytes = try store.blob(EvolveRunner.configurationBlob), let seeds = try store.blob(EvolveRunner.seedModelsBlob) {
                    guard let c = try? EvolveRunner.jsonDecoder.decode(EvolveConfiguration.self, from: Data(bytes)) else {
                        throw .runFolder(path: store.location, reason: "holds a configuration this amalgam cannot read: run the same amalgam version as the coordinator")
                    }
                    let tasks = try store.blob(EvolveRunner.taskFilesBlob).map { b throws(SearchError) in try EvolveRunner.decodedSeedInputs(b, at: store.location) }
                    return SharedRun(configuration: c, seedModels: try EvolveRunner.decodedSeedInputs(seeds, at: store.location), taskFiles: tasks)
                }
            }
            if !told { waiting(); told = true }
            usleep(UInt32(poll * 1e6))
        }
    }

    /// Checks that `configuration`'s seed models and task files (this machine's copies, at the paths it
    /// names: the run's, or the worker's own through `--path-map`) hold the bytes the coordinator hashed; an
    /// error names the first that does not.
    public static func checkSeedInputs(_ configuration: EvolveConfiguration, against shared: SharedRun, run: String) throws(SearchError) {
        let checks: [(what: String, local: [String], published: [SeedInput]?, hash: ([String]) throws(SearchError) -> [SeedInput])] = [
            ("seed model", configuration.models, shared.seedModels, { p throws(SearchError) in try SeedInput.models(p) }),
            ("task file", configuration.taskPaths, shared.taskFiles, { p throws(SearchError) in try SeedInput.files(p) }),
        ]
        for check in checks {
            guard let published = check.published else { continue }
            guard check.local.count == published.count else {
                throw .runFolder(path: "run `\(run)`", reason: "names \(published.count) \(check.what)s, this worker has \(check.local.count)")
            }
            for (i, (local, seed)) in zip(check.local, published).enumerated() {
                let hash = try check.hash([local])[0].contentHash
                guard hash == seed.contentHash else {
                    throw .runFolder(path: "run `\(run)`", reason: "\(check.what) \(i + 1), \(local), is not the coordinator's on this machine: content hash "
                        + "\(hash.prefix(12))… here, \(seed.contentHash.prefix(12))… there; copy the coordinator's \(check.what) to this path"
                        + (local == seed.reference ? "" : " (mapped from \(seed.reference) by --path-map)") + ", or map its path to a copy with --path-map FROM=TO")
                }
            }
        }
    }

    /// A worker for the run `run` at `url`; `runner` is the run's configuration opened on this machine
    /// (its models, tasks and tokenizer).
    public init(url: String, run: String, runner: EvolveRunner, options: Options) {
        self.url = url
        self.run = run
        self.runner = runner
        self.options = options
    }

    /// Serves the run until it is finished; returns the evaluations whose results were accepted. `event` is
    /// called after each evaluation (from the evaluating thread, one call at a time). An error in any thread
    /// stops the others (their claims run out and are requeued) and is thrown.
    @discardableResult
    public func work(event: @escaping @Sendable (Event) -> Void = { _ in }) throws(SearchError) -> Int {
        let group = DispatchGroup()
        let accepted = Counter()
        for thread in 0..<max(1, options.concurrency) {
            group.enter()
            Thread { [self] in
                defer { group.leave() }
                do throws(SearchError) {
                    try serve(thread: thread, accepted: accepted, event: event)
                } catch {
                    lock.lock()
                    if failure == nil { failure = error }
                    stopping = true
                    lock.unlock()
                }
            }.start()
        }
        group.wait()
        if let failure { throw failure }
        return accepted.value
    }

    private var shouldStop: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopping
    }

    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        var value: Int { lock.lock(); defer { lock.unlock() }; return count }
        func add() { lock.lock(); count += 1; lock.unlock() }
    }

    private func serve(thread: Int, accepted: Counter, event: @Sendable (Event) -> Void) throws(SearchError) {
        let kind = EvolveRunner.cmaesKind
        let store = try PostgresRunStore.open(url: url, run: run, kind: kind, create: false, resume: true, claim: false)
        defer { store.close() }
        let claim = options.claim
        let keeper = try LeaseKeeper(store, leaseSeconds: claim.leaseSeconds)
        defer { keeper.stop() }
        let name = "\(PostgresRunStore.applicationName) #\(thread)"
        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
        while !shouldStop {
            let t0 = now()
            guard let item = try store.claim(worker: name, leaseSeconds: claim.leaseSeconds) else {
                if try store.blob("result") != nil { return }
                // Expired leases go back to the queue even while no coordinator runs (it may be restarting).
                try store.requeueExpired(maxAttempts: claim.maxAttempts)
                usleep(UInt32(claim.pollSeconds * 1e6))
                continue
            }
            let claimed = now()
            let candidate = try runner.scoreClaimed(item, keeper: keeper, settings: claim)
            let bytes = try EvolveRunner.encoded(candidate, at: store.location)
            let t1 = now()
            let ok = try store.finish(item, worker: name, result: bytes)
            let t2 = now()
            if ok { accepted.add() }
            lock.lock()
            event(Event(worker: name, index: item.index, attempt: item.attempt, fitness: candidate.fitness,
                        evaluationSeconds: Double(t1 - claimed) / 1e9, coordinationSeconds: Double(claimed - t0 + t2 - t1) / 1e9, accepted: ok))
            lock.unlock()
        }
    }
}
