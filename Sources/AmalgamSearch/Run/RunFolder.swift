import AmalgamCore
import Foundation

/// The durable home of one search run (M2N2 today; CMA-ES recipe search and `amalgam evolve` next).
///
/// Layout:
/// - `DIR/run.sqlite` — SQLite in WAL mode: a `meta(key, value)` table (the `kind` of run, its
///   configuration as JSON, its result when done) plus whatever tables the search defines.
/// - `DIR/genomes/NAME.f32` — one genome per file: raw little-endian f32 in the flat parameter order,
///   memory-mapped when read, so the same layout holds a 19,210-parameter MLP or a checkpoint of
///   hundreds of MB. Genomes are never stored in the database.
///
/// Contract that makes every kill point recoverable:
/// 1. `create` builds the folder under a temporary name, runs the caller's set-up (schema, config) in one
///    transaction and renames the folder into place: a folder under the final name is always a valid run.
/// 2. Each step: `writeGenome` for each new genome (temporary name, fsync per `durability`, rename), then
///    ONE `database.transaction` recording everything the step changed, then `removeGenome` for the
///    genomes the committed state no longer references (so disk use stays bounded by the archive).
/// 3. On `open`, the caller passes the genome names its committed state references to
///    `removeUnreferencedGenomes(keeping:)`: files of a step killed before its commit, temporary files, and
///    files whose removal was cut short are deleted; a referenced file that is missing is an error.
public final class RunFolder {
    /// How much a step's commit survives: `process` (the default for runs) needs no fsync per step; a
    /// power loss or kernel crash may then leave the folder unusable (detected on open). `machine` fsyncs
    /// each genome file and the folder before the commit, and syncs the commit itself (about 10 ms per new
    /// genome on this project's disks).
    public typealias Durability = AmalgamCore.Durability

    /// The folder.
    public let path: String
    /// The run's database.
    public let database: SQLiteDatabase
    /// How commits are made durable.
    public let durability: Durability

    /// The kind of run (`m2n2`, `evolve-cmaes`, `dam`, `finetune`, …), as recorded in `meta.kind`.
    public private(set) var kind = ""

    /// The database file inside a run folder.
    public static let databaseName = "run.sqlite"
    /// This process's claim on the folder (`run.lock`), when it continues the run.
    private var ownership: FolderClaim?

    /// Whether `path` holds a run folder (complete: an interrupted `create` leaves only a temporary name).
    public static func exists(at path: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/" + databaseName)
    }

    /// Creates the run folder at `path` (which must not exist): `setUp` runs in one transaction on the new
    /// database (create the tables, store the configuration), then the folder appears under its name.
    public static func create(path: String, kind: String, durability: Durability,
                              setUp: (RunFolder) throws(SearchError) -> Void) throws(SearchError) -> RunFolder {
        let fm = FileManager.default
        // An empty folder (made by hand, or by an earlier version before its first step) is taken over.
        if let entries = try? fm.contentsOfDirectory(atPath: path), entries.isEmpty { try? fm.removeItem(atPath: path) }
        if fm.fileExists(atPath: path) {
            throw .runFolder(path: path, reason: "already exists; pass --resume to continue it, or choose another run folder")
        }
        let output: AtomicOutput
        do {
            output = try AtomicOutput(path: path, overwrite: false)
            try output.makeWorkingDirectory()
        } catch {
            throw .runFolder(path: path, reason: error.description)
        }
        do {
            try makeDirectory(output.workingPath + "/genomes")
            let folder = try RunFolder(path: output.workingPath, durability: durability)
            try folder.database.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            try folder.database.transaction { () throws(SearchError) in
                try folder.setMeta("kind", kind)
                try folder.setMeta("format", String(formatVersion))
                try folder.createStoreTables()
                try setUp(folder)
            }
            try folder.database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        } catch {
            output.abandon()
            throw error
        }
        do {
            try output.commit()
        } catch {
            output.abandon()
            throw .runFolder(path: path, reason: error.description)
        }
        return try open(path: path, kind: kind, durability: durability)
    }

    /// Opens an existing run folder of the given kind. With `claim` (the default, for a run that will
    /// continue), this process takes the folder's lock (`run.lock`, with its PID) for the life of the
    /// value, and a folder that a live process holds is refused, naming that process; without, the folder
    /// is only looked at (progress of a run that another process owns).
    public static func open(path: String, kind: String, durability: Durability, claim: Bool = true) throws(SearchError) -> RunFolder {
        guard exists(at: path) else {
            throw .runFolder(path: path, reason: "no \(databaseName) here: not a run folder (start a new run without --resume)")
        }
        return try open(path: path, kind: kind, durability: durability, ownership: claim ? try claimFolder(path) : nil)
    }

    /// Opens the run at `path` only to look at it (a report, another process's progress), whatever its kind:
    /// no claim is taken and nothing is changed.
    public static func openToRead(path: String) throws(SearchError) -> RunFolder {
        guard exists(at: path) else {
            throw .runFolder(path: path, reason: "no \(databaseName) here: not a run folder of finetune, dam or evolve")
        }
        let folder = try RunFolder(path: path, durability: .process)
        guard let kind = try folder.meta("kind") else {
            throw .runFolder(path: path, reason: "its database records no kind of run; the run folder is damaged")
        }
        folder.kind = kind
        try folder.checkFormat(upgrade: false)
        return folder
    }

    /// `open`, with this process's claim on the folder already taken (`ownership`) or none (only looking).
    static func open(path: String, kind: String, durability: Durability, ownership: FolderClaim?) throws(SearchError) -> RunFolder {
        let claim = ownership != nil
        let folder = try RunFolder(path: path, durability: durability)
        folder.ownership = ownership
        let found = try folder.meta("kind")
        guard found == kind else {
            throw .runFolder(path: path, reason: "holds a `\(found ?? "?")` run, not `\(kind)`")
        }
        folder.kind = kind
        try folder.checkFormat(upgrade: claim)
        return folder
    }

    private init(path: String, durability: Durability) throws(SearchError) {
        self.path = path
        self.durability = durability
        database = try SQLiteDatabase(path: path + "/" + Self.databaseName)
        try database.execute("PRAGMA journal_mode=WAL")
        try database.execute(durability == .machine ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL")
    }

    // MARK: meta

    /// The value stored under `key`, if any.
    public func meta(_ key: String) throws(SearchError) -> String? {
        let s = try database.statement("SELECT value FROM meta WHERE key = ?").bind(.text(key))
        return try s.step() ? s.text(0) : nil
    }

    /// Stores `value` under `key` (inside the caller's transaction, or in its own).
    public func setMeta(_ key: String, _ value: String) throws(SearchError) {
        try database.statement("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").bind(.text(key), .text(value)).step()
    }

    /// A `Codable` value stored as JSON under `key`.
    public func meta<T: Decodable>(_ key: String, as type: T.Type) throws(SearchError) -> T? {
        guard let text = try meta(key) else { return nil }
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch {
            throw .runFolder(path: path, reason: "meta `\(key)` is not a valid \(T.self): \(error)")
        }
    }

    /// Stores a `Codable` value as JSON (sorted keys) under `key`.
    public func setMeta<T: Encodable>(_ key: String, json value: T) throws(SearchError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(value) else {
            throw .runFolder(path: path, reason: "cannot encode meta `\(key)`")
        }
        try setMeta(key, String(decoding: data, as: UTF8.self))
    }

    // MARK: genomes

    /// The file of genome `name`.
    public func genomePath(_ name: String) -> String { path + "/genomes/" + name + ".f32" }

    /// Writes genome `name` under a temporary name, syncs it (per `durability`) and renames it into place.
    public func writeGenome(_ name: String, _ values: UnsafeBufferPointer<Float>) throws(SearchError) {
        precondition(!name.isEmpty && !name.contains("/") && !name.hasPrefix("."), "genome names are plain file names")
        let final = genomePath(name)
        let temporary = path + "/genomes/." + name + ".partial"
        let fd = Foundation.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .runFolder(path: temporary, reason: "cannot create (\(String(cString: strerror(errno))))") }
        var failure: Int32 = 0
        let bytes = UnsafeRawBufferPointer(values)
        var done = 0
        while failure == 0 && done < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { failure = n < 0 ? errno : ENOSPC } else { done += n }
        }
        if failure == 0 && durability == .machine && fsync(fd) != 0 { failure = errno }
        close(fd)
        if failure == 0 && rename(temporary, final) != 0 { failure = errno }
        guard failure == 0 else {
            unlink(temporary)
            throw .runFolder(path: final, reason: Self.writeFailure(final, errno: failure, needed: bytes.count))
        }
        if durability == .machine { try syncDirectory(path + "/genomes") }
    }

    /// Makes the file at `temporaryPath` (inside `genomes/`, already written) genome `name` by a rename,
    /// syncing it and the folder first under `machine` durability: for genomes too large to write from
    /// memory, streamed into place by their store.
    public func adoptGenome(_ name: String, from temporaryPath: String) throws(SearchError) {
        precondition(!name.isEmpty && !name.contains("/") && !name.hasPrefix("."), "genome names are plain file names")
        if durability == .machine {
            let fd = Foundation.open(temporaryPath, O_RDONLY | O_CLOEXEC)
            guard fd >= 0, fsync(fd) == 0 else {
                if fd >= 0 { close(fd) }
                throw .runFolder(path: temporaryPath, reason: "cannot sync the genome (\(String(cString: strerror(errno))))")
            }
            close(fd)
        }
        guard rename(temporaryPath, genomePath(name)) == 0 else {
            throw .runFolder(path: genomePath(name), reason: "cannot rename the genome into place (\(String(cString: strerror(errno))))")
        }
        if durability == .machine { try syncDirectory(path + "/genomes") }
    }

    /// Maps genome `name` read-only, checking it holds `count` parameters.
    public func mapGenome(_ name: String, count: Int) throws(SearchError) -> MappedFile {
        let file: MappedFile
        do {
            file = try MappedFile(path: genomePath(name))
        } catch {
            throw .runFolder(path: genomePath(name), reason: "genome missing or unreadable (\(error)); the run folder is damaged")
        }
        guard file.count == count * MemoryLayout<Float>.size else {
            throw .runFolder(path: genomePath(name), reason: "genome has \(file.count) bytes, expected \(count * 4) (\(count) f32); the run folder is damaged")
        }
        return file
    }

    /// Deletes genome `name` (after the commit that stopped referencing it).
    public func removeGenome(_ name: String) {
        unlink(genomePath(name))
    }

    /// Deletes every genome file and temporary file not in `referenced`; fails if a referenced one is missing.
    public func removeUnreferencedGenomes(keeping referenced: Set<String>) throws(SearchError) {
        let folder = path + "/genomes"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var present = Set<String>()
        for file in names {
            if file.hasSuffix(".f32"), !file.hasPrefix("."), referenced.contains(String(file.dropLast(4))) {
                present.insert(String(file.dropLast(4)))
            } else {
                unlink(folder + "/" + file)
            }
        }
        if let missing = referenced.subtracting(present).sorted().first {
            throw .runFolder(path: genomePath(missing), reason: "genome referenced by the database is missing; the run folder is damaged (a power loss under `process` durability?)")
        }
    }

    /// Names of the genome files present (for checks and tests).
    public func genomeNames() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path + "/genomes")) ?? [])
            .filter { $0.hasSuffix(".f32") && !$0.hasPrefix(".") }.map { String($0.dropLast(4)) }.sorted()
    }

    /// Why writing `path` failed, and what to do: a full disk leaves the run at its last committed step.
    static func writeFailure(_ path: String, errno code: Int32, needed: Int) -> String {
        let error = FileError.writing(path, errno: code, needed: needed)
        guard case let .noSpace(_, needed, free) = error else {
            if case let .cannotWrite(_, reason) = error { return "cannot write the genome (\(reason))" }
            return error.description
        }
        let sizes = [needed.map { byteCountText($0) + " needed" }, free.map { byteCountText($0) + " free" }].compactMap { $0 }.joined(separator: ", ")
        return "no space left on device (\(sizes)); free some space, then continue the run with --resume "
            + "(the run folder keeps its last committed step)"
    }

    private func syncDirectory(_ directory: String) throws(SearchError) {
        let fd = Foundation.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0, fsync(fd) == 0 else {
            if fd >= 0 { close(fd) }
            throw .runFolder(path: directory, reason: "cannot sync the folder (\(String(cString: strerror(errno))))")
        }
        close(fd)
    }

    /// Claims the run folder for this process: a live process holding it is named, with what to do.
    static func claimFolder(_ path: String) throws(SearchError) -> FolderClaim {
        do { return try FolderClaim.take(path) } catch {
            guard case let .inUse(_, pid) = error else { throw .runFolder(path: path, reason: error.description) }
            let owner = pid.map { "process \($0)" } ?? "another process"
            throw .runFolder(path: path, reason: "in use by \(owner), which is still running; a run folder is continued by one "
                + "process at a time: wait for it to finish or stop it (kill \(pid.map(String.init) ?? "PID")), then resume")
        }
    }

    private static func makeDirectory(_ directory: String) throws(SearchError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .runFolder(path: directory, reason: "cannot create (\(error.localizedDescription))")
        }
    }
}
