import AmalgamCore
import Foundation

/// An M2N2 search whose every step (seed insertion or child) is committed to a run folder, so a killed
/// run resumes where its last commit left it and ends with the same archive, bit for bit, as an
/// uninterrupted one.
///
/// Tables (besides the run folder's `meta`, which holds `config` and the caller's `experiment`):
/// - `archive(slot, genome, scores)`: the genome file each slot holds (NULL: the initial zero vector) and
///   its score row (f32 little-endian, one per training example);
/// - `lineage(step, pass, seed, parent1, parent2, parent1_genome, parent2_genome, split_point, ratio, omega,
///   mutation_seed, mean_score, fitness, entered, slot, genome)`: one row per child, in order;
/// - `state`: passes done, seeds inserted, the generator's four words, attraction fallbacks, seconds spent.
public final class M2N2Run<Scorer: CandidateScorer> where Scorer.Store: PersistentGenomeStore {
    /// The run folder's `kind`.
    public static var kind: String { "m2n2" }

    /// The folder.
    public let folder: RunFolder
    /// The search (restored to the last commit when resumed).
    public let search: M2N2Search<Scorer>
    /// Seeds inserted so far (the first steps of a run).
    public private(set) var seedsInserted = 0
    /// Seconds spent on the run across every process that worked on it.
    public var seconds: Double { secondsBefore + Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
    /// Passes done when this process opened the run.
    public let passesAtOpen: Int

    private var genomes: [String?]
    private var secondsBefore = 0.0
    private let started = DispatchTime.now().uptimeNanoseconds

    /// Starts a new run of `search` (fresh, no seed inserted) in a new folder at `path`, recording
    /// `experiment` (whatever the caller needs to rebuild the search) in `meta`.
    public init<Experiment: Encodable>(creating path: String, search: M2N2Search<Scorer>, experiment: Experiment,
                                       durability: RunFolder.Durability) throws(SearchError) {
        let archive = search.configuration.archiveSize, columns = search.scores.columns
        folder = try RunFolder.create(path: path, kind: Self.kind, durability: durability) { (f: RunFolder) throws(SearchError) in
            try f.database.execute("""
                CREATE TABLE archive (slot INTEGER PRIMARY KEY, genome TEXT, scores BLOB NOT NULL);
                CREATE TABLE lineage (step INTEGER PRIMARY KEY, pass INTEGER, seed INTEGER, parent1 INTEGER, parent2 INTEGER,
                    parent1_genome TEXT, parent2_genome TEXT, split_point INTEGER, ratio REAL, omega REAL, mutation_seed INTEGER,
                    mean_score REAL NOT NULL, fitness REAL NOT NULL, entered INTEGER NOT NULL, slot INTEGER, genome TEXT);
                CREATE TABLE state (id INTEGER PRIMARY KEY CHECK (id = 0), passes INTEGER NOT NULL, seeds_inserted INTEGER NOT NULL,
                    rng0 INTEGER NOT NULL, rng1 INTEGER NOT NULL, rng2 INTEGER NOT NULL, rng3 INTEGER NOT NULL,
                    attraction_fallbacks INTEGER NOT NULL, seconds REAL NOT NULL);
                """)
            try f.setMeta("config", json: search.configuration)
            try f.setMeta("experiment", json: experiment)
            let zeros = [UInt8](repeating: 0, count: columns * 4)
            for slot in 0..<archive {
                try f.database.statement("INSERT INTO archive (slot, genome, scores) VALUES (?, NULL, ?)")
                    .bind(.int(Int64(slot)), .blob(zeros)).step()
            }
            let g = search.generator.state
            try f.database.statement("INSERT INTO state VALUES (0, 0, 0, ?, ?, ?, ?, 0, 0)")
                .bind(.bits(g.0), .bits(g.1), .bits(g.2), .bits(g.3)).step()
        }
        self.search = search
        genomes = [String?](repeating: nil, count: archive)
        passesAtOpen = 0
    }

    /// Opens the run at `path` and restores `search` (built fresh from the same configuration) to its last
    /// commit. Fails if the saved configuration differs from `search`'s.
    public init(resuming path: String, search: M2N2Search<Scorer>, durability: RunFolder.Durability) throws(SearchError) {
        folder = try RunFolder.open(path: path, kind: Self.kind, durability: durability)
        self.search = search
        let saved = try folder.meta("config", as: M2N2Configuration.self)
        guard saved == search.configuration else {
            throw .runFolder(path: path, reason: "was started with another configuration (\(String(describing: saved))); resume it with the same settings or choose another run folder")
        }
        let archive = search.configuration.archiveSize, columns = search.scores.columns
        let state = try folder.database.statement(
            "SELECT passes, seeds_inserted, rng0, rng1, rng2, rng3, attraction_fallbacks, seconds FROM state WHERE id = 0")
        guard try state.step() else { throw .runFolder(path: path, reason: "the state row is missing; the run folder is damaged") }
        let passes = Int(state.int(0))
        seedsInserted = Int(state.int(1))
        let generator = SeededGenerator(state: (UInt64(bitPattern: state.int(2)), UInt64(bitPattern: state.int(3)),
                                                UInt64(bitPattern: state.int(4)), UInt64(bitPattern: state.int(5))))
        let fallbacks = Int(state.int(6))
        secondsBefore = state.double(7)
        passesAtOpen = passes

        var scores = ScoreMatrix(rows: archive + 1, columns: columns)
        genomes = [String?](repeating: nil, count: archive)
        let rows = try folder.database.statement("SELECT slot, genome, scores FROM archive ORDER BY slot")
        var values = scores.values
        while try rows.step() {
            let slot = Int(rows.int(0))
            let blob = rows.blob(2)
            guard (0..<archive).contains(slot), blob.count == columns * 4 else {
                throw .runFolder(path: path, reason: "archive slot \(slot) is malformed; the run folder is damaged")
            }
            genomes[slot] = rows.text(1)
            blob.withUnsafeBytes { b in
                for j in 0..<columns { values[slot * columns + j] = b.loadUnaligned(fromByteOffset: j * 4, as: Float.self) }
            }
        }
        scores = ScoreMatrix(rows: archive + 1, columns: columns, values: values)
        try folder.removeUnreferencedGenomes(keeping: Set(genomes.compactMap { $0 }))
        try search.store.restoreSlots(genomes, from: folder)
        try search.restore(scores: scores, generator: generator, passes: passes, attractionFallbacks: fallbacks)
    }

    /// Whether every seed is in and the budget is spent.
    public var isFinished: Bool {
        seedsInserted == search.store.seedCount && search.passes >= search.configuration.forwardPasses
    }

    /// Runs the remaining steps, committing each, and calls `progress` every `every` passes.
    public func run(every: Int = 1000, progress: (M2N2Progress) -> Void = { _ in }) throws(SearchError) {
        while !isFinished {
            try advance()
            let p = search.passes
            if seedsInserted == search.store.seedCount, p % every == 0 || p == search.configuration.forwardPasses {
                progress(search.progress)
            }
        }
    }

    /// One step (the next seed, else a child), then its commit, then the removal of the genome it dropped.
    @discardableResult
    public func advance() throws(SearchError) -> M2N2Step {
        let before = genomes
        let step: M2N2Step
        if seedsInserted < search.store.seedCount {
            step = try search.insertSeed(seedsInserted)
            seedsInserted += 1
        } else {
            step = try search.step()
        }
        let name = step.pass.map { String(format: "p%08d", $0) } ?? "seed\(step.seed ?? 0)"
        var dropped: String?
        if let slot = step.slot {
            try search.store.persistSlot(slot, as: name, in: folder)
            dropped = genomes[slot]
            genomes[slot] = name
        }
        try folder.database.transaction { () throws(SearchError) in
            try record(step, name: name, parentGenomes: step.parents.map { before[$0] })
            if let slot = step.slot {
                let row = search.scores.row(slot)
                let bytes = row.withUnsafeBytes { [UInt8]($0) }
                try folder.database.statement("UPDATE archive SET genome = ?, scores = ? WHERE slot = ?")
                    .bind(.text(name), .blob(bytes), .int(Int64(slot))).step()
            }
            let g = search.generator.state
            try folder.database.statement("""
                UPDATE state SET passes = ?, seeds_inserted = ?, rng0 = ?, rng1 = ?, rng2 = ?, rng3 = ?,
                    attraction_fallbacks = ?, seconds = ? WHERE id = 0
                """).bind(.int(Int64(search.passes)), .int(Int64(seedsInserted)), .bits(g.0), .bits(g.1), .bits(g.2), .bits(g.3),
                          .int(Int64(search.attractionFallbacks)), .double(seconds)).step()
            if let record = progressRecord(after: step) {
                try folder.commit(RunStep(number: search.passes, records: [RunStep.Record(step: search.passes, json: record)]))
            }
        }
        if let dropped, !genomes.contains(dropped) { folder.removeGenome(dropped) }
        return step
    }

    private func record(_ step: M2N2Step, name: String, parentGenomes: [String?]) throws(SearchError) {
        let p = step.parents
        try folder.database.statement("""
            INSERT INTO lineage (pass, seed, parent1, parent2, parent1_genome, parent2_genome, split_point, ratio, omega,
                mutation_seed, mean_score, fitness, entered, slot, genome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).bind(.optional(step.pass), .optional(step.seed), .optional(p.first), .optional(p.count > 1 ? p[1] : nil),
                      parentGenomes.first.flatMap { $0 }.map { .text($0) } ?? .null,
                      (parentGenomes.count > 1 ? parentGenomes[1] : nil).map { .text($0) } ?? .null,
                      .optional(step.plan?.splitPoint), step.plan.map { .double($0.ratio) } ?? .null,
                      step.plan.map { .double($0.omega) } ?? .null, step.mutationSeed.map { .bits($0) } ?? .null,
                      .double(step.meanScore), .double(step.fitness), .int(step.slot == nil ? 0 : 1),
                      .optional(step.slot), step.slot == nil ? .null : .text(name)).step()
    }

    /// The archive's figures after `step` as a store record (JSON), when the step is one the history keeps:
    /// the last seed insertion (pass 0) and every `historyInterval`-th child, and the last.
    func progressRecord(after step: M2N2Step) -> String? {
        guard seedsInserted == search.store.seedCount else { return nil }
        let budget = search.configuration.forwardPasses, passes = search.passes
        guard step.seed != nil || passes % M2N2HistoryPoint.interval(budget: budget) == 0 || passes == budget else { return nil }
        let p = search.progress
        return M2N2HistoryPoint(passes: passes, bestFitness: p.bestFitness, meanFitness: p.meanFitness, bestScore: p.bestScore,
                                meanScore: p.meanScore, coverage: p.coverage, diversity: p.diversity, seconds: seconds).json
    }

    /// The genome file each archive slot holds (nil: the initial zero vector).
    public var archiveGenomes: [String?] { genomes }

    /// Stores the run's final result (any `Codable`) under `meta.result`.
    public func finish<Result: Encodable>(result: Result) throws(SearchError) {
        try folder.database.transaction { () throws(SearchError) in try folder.setMeta("result", json: result) }
    }
}

extension FlatGenomeStore: PersistentGenomeStore {
    public func persistSlot(_ slot: Int, as name: String, in folder: RunFolder) throws(SearchError) {
        try slots[slot].withUnsafeBufferPointer { (p: UnsafeBufferPointer<Float>) throws(SearchError) in
            try folder.writeGenome(name, p)
        }
    }

    public func restoreSlots(_ names: [String?], from folder: RunFolder) throws(SearchError) {
        let n = parameterCount
        var slots: [[Float]] = []
        for name in names {
            guard let name else { slots.append([Float](repeating: 0, count: n)); continue }
            let file = try folder.mapGenome(name, count: n)
            slots.append(Array(file.bytes(offset: 0, count: n * 4).bindMemory(to: Float.self)))
        }
        try restore(slots: slots)
    }
}

/// The archive after some number of children, as `M2N2Run` records it in the run's store.
public struct M2N2HistoryPoint: Sendable, Codable, Equatable {
    /// Children scored.
    public var passes: Int
    /// Largest and mean competition-shared fitness of the archive members.
    public var bestFitness: Double, meanFitness: Double
    /// Best and mean of the members' mean training scores.
    public var bestScore: Double, meanScore: Double
    /// Fraction of training examples solved by at least one member.
    public var coverage: Double
    /// Mean fraction of examples on which two members score differently.
    public var diversity: Double
    /// Seconds spent on the run so far.
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case passes, coverage, diversity, seconds
        case bestFitness = "best_fitness", meanFitness = "mean_fitness", bestScore = "best_score", meanScore = "mean_score"
    }

    /// Children between two history records: at most about 200 records per run.
    public static func interval(budget: Int) -> Int { max(1, budget / 200) }

    /// The archive's history as the run recorded it (empty for runs made before amalgam kept it).
    public static func history(in store: any RunStore) throws(SearchError) -> [M2N2HistoryPoint] {
        guard let last = try store.latestStep() else { return [] }
        return try store.records(in: 0...last).compactMap { $0.decoded(as: M2N2HistoryPoint.self) }
    }

    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
