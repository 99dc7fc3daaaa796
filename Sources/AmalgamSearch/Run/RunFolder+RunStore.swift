import AmalgamCore
import Foundation

/// `RunFolder` as a `RunStore`: the job's configuration and latest step in `meta`, step records in
/// `run_steps`, blobs in `run_blobs`, outputs in `run_outputs`; each `commit` is one SQLite transaction.
extension RunFolder: RunStore {
    /// The layout this code writes: 1 (main at d184d06 and before) had no `run_steps`/`run_blobs`/`run_outputs`;
    /// such a folder gains them, empty, when a process continues it.
    public static let formatVersion = 2

    /// Bytes per row of a blob.
    static let blobPartSize = 64 << 20

    /// The folder.
    public var location: String { path }

    func createStoreTables() throws(SearchError) {
        try database.execute("""
            CREATE TABLE IF NOT EXISTS run_steps (step INTEGER PRIMARY KEY, json TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS run_blobs (name TEXT NOT NULL, part INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (name, part));
            CREATE TABLE IF NOT EXISTS run_outputs (name TEXT PRIMARY KEY, path TEXT NOT NULL);
            """)
    }

    /// Refuses a folder written by a newer layout; brings a format-1 folder to this one (when `upgrade`,
    /// i.e. this process continues the run) in one transaction.
    func checkFormat(upgrade: Bool) throws(SearchError) {
        let text = try meta("format") ?? "1"
        guard let format = Int(text), format >= 1 else {
            throw .runFolder(path: path, reason: "has an unknown layout (format `\(text)`); start a new run in another folder")
        }
        guard format <= Self.formatVersion else {
            throw .runFolder(path: path, reason: "was made by a newer amalgam (run-folder format \(format), this one reads up to "
                + "\(Self.formatVersion)); continue it with that version, or start a new run in another folder")
        }
        if format < Self.formatVersion && upgrade {
            try database.transaction { () throws(SearchError) in
                try createStoreTables()
                try setMeta("format", String(Self.formatVersion))
            }
        }
    }

    public func configuration() throws(SearchError) -> RunConfiguration? {
        try meta("configuration", as: RunConfiguration.self)
    }

    public func checkConfiguration(_ configuration: RunConfiguration) throws(SearchError) {
        if let recorded = try self.configuration() {
            try refuseDifferent(configuration, recorded: recorded)
        } else {
            try database.transaction { () throws(SearchError) in
                try setMeta("configuration", json: configuration)
                try setMeta("configuration_fingerprint", configuration.fingerprint)
            }
        }
    }

    public func latestStep() throws(SearchError) -> Int? {
        try meta("step").flatMap { Int($0) }
    }

    public func records(in range: ClosedRange<Int>) throws(SearchError) -> [RunStep.Record] {
        let s = try database.statement("SELECT step, json FROM run_steps WHERE step BETWEEN ? AND ? ORDER BY step")
            .bind(.int(Int64(range.lowerBound)), .int(Int64(range.upperBound)))
        var out: [RunStep.Record] = []
        while try s.step() { out.append(RunStep.Record(step: Int(s.int(0)), json: s.text(1) ?? "")) }
        return out
    }

    public func blob(_ name: String) throws(SearchError) -> [UInt8]? {
        let s = try database.statement("SELECT bytes FROM run_blobs WHERE name = ? ORDER BY part").bind(.text(name))
        guard try s.step() else { return nil }
        var bytes = s.blob(0)
        while try s.step() { bytes += s.blob(0) }
        return bytes
    }

    public func commit(_ step: RunStep) throws(SearchError) {
        try database.transaction { () throws(SearchError) in
            for r in step.records {
                try database.statement("INSERT OR REPLACE INTO run_steps (step, json) VALUES (?, ?)").bind(.int(Int64(r.step)), .text(r.json)).step()
            }
            for name in step.blobs.keys.sorted() {
                // In parts: SQLite refuses values over 1 GB, and an optimiser's state can be larger.
                let bytes = step.blobs[name]!
                try database.statement("DELETE FROM run_blobs WHERE name = ?").bind(.text(name)).step()
                var part: Int64 = 0, start = 0
                repeat {
                    let end = min(bytes.count, start + Self.blobPartSize)
                    try database.statement("INSERT INTO run_blobs (name, part, bytes) VALUES (?, ?, ?)")
                        .bind(.text(name), .int(part), .blob(Array(bytes[start..<end]))).step()
                    part += 1
                    start = end
                } while start < bytes.count
            }
            for name in step.outputs.keys.sorted() {
                try database.statement("INSERT OR REPLACE INTO run_outputs (name, path) VALUES (?, ?)").bind(.text(name), .text(step.outputs[name]!)).step()
            }
            try setMeta("step", String(step.number))
        }
    }

    public func outputs() throws(SearchError) -> [String: String] {
        let s = try database.statement("SELECT name, path FROM run_outputs")
        var out: [String: String] = [:]
        while try s.step() { out[s.text(0) ?? ""] = s.text(1) ?? "" }
        return out
    }

    /// Opens the run at `path` to continue it, or creates it (at a new or empty folder) when there is none:
    /// for jobs whose folder is given by the user and reused across `--resume`.
    public static func openOrCreate(path: String, kind: String, durability: Durability, resume: Bool) throws(SearchError) -> RunFolder {
        if exists(at: path) {
            let folder = try open(path: path, kind: kind, durability: durability)
            if !resume, try folder.latestStep() != nil {
                throw .runFolder(path: path, reason: "holds a `\(kind)` run already: pass --resume to continue it, or choose another folder")
            }
            return folder
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue,
              !((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).isEmpty else {
            return try create(path: path, kind: kind, durability: durability) { _ throws(SearchError) in }
        }
        // A folder that already holds other files (a legacy layout being taken in, a job's exports): the
        // database is made beside them under a temporary name and renamed into place once set up.
        let ownership = try claimFolder(path)
        let temporary = path + "/." + databaseName + ".partial"
        for leftover in [temporary, temporary + "-journal"] { unlink(leftover) }
        do {
            let database = try SQLiteDatabase(path: temporary)
            try database.execute("PRAGMA journal_mode=DELETE")
            try database.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            try database.transaction { () throws(SearchError) in
                try database.statement("INSERT INTO meta (key, value) VALUES ('kind', ?), ('format', ?)")
                    .bind(.text(kind), .text(String(formatVersion))).step()
                try database.execute("""
                    CREATE TABLE run_steps (step INTEGER PRIMARY KEY, json TEXT NOT NULL);
                    CREATE TABLE run_blobs (name TEXT NOT NULL, part INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (name, part));
                    CREATE TABLE run_outputs (name TEXT PRIMARY KEY, path TEXT NOT NULL);
                    """)
            }
        }
        if durability == .machine {
            let fd = Foundation.open(temporary, O_RDONLY | O_CLOEXEC)
            if fd >= 0 { fsync(fd); close(fd) }
        }
        guard rename(temporary, path + "/" + databaseName) == 0 else {
            throw .runFolder(path: path, reason: "cannot rename the new database into place (\(String(cString: strerror(errno))))")
        }
        try? FileManager.default.createDirectory(atPath: path + "/genomes", withIntermediateDirectories: true)
        return try open(path: path, kind: kind, durability: durability, ownership: ownership)
    }
}
