import AmalgamCore
import Foundation
import PostgresNIO

/// The run store in PostgreSQL (issue #21): the same `RunStore` contract as `RunFolder` (SQLite), for runs
/// that many processes on many machines share. Run/README.md "PostgreSQL" says why it is synchronous.
///
/// One database holds any number of runs, each a row of `amalgam_runs` named by the user (`--run NAME`);
/// its steps, blobs and outputs are rows of `amalgam_run_steps`, `amalgam_run_blobs` (64 MiB parts) and
/// `amalgam_run_outputs`. The tables are created on first use, under a versioned schema
/// (`amalgam_schema.version`): a database of a newer schema is refused.
///
/// One connection per store, on postgres-nio's shared event loop; each call sends its statements and waits
/// for the answer, so the jobs keep their synchronous code. A `commit` is one `BEGIN … COMMIT` at the
/// server's default isolation (READ COMMITTED).
public final class PostgresRunStore: RunStore {
    /// The schema this code writes and reads.
    public static let schemaVersion = 1
    /// Bytes per row of a blob (as the SQLite store: a bytea value may not pass 1 GB).
    static let blobPartSize = 64 << 20
    /// The advisory-lock class of run locks (`pg_try_advisory_lock(class, run id)`), and of the schema set-up.
    static let runLockClass: Int32 = 0x616D_6C00, schemaLockClass: Int32 = 0x616D_6C01

    public let address: PostgresAddress
    /// The run's name in the database.
    public let runName: String
    /// The run's row id in `amalgam_runs`.
    public let runID: Int64
    public let kind: String
    /// `postgres://USER@HOST:PORT/DATABASE` (no password) and the run's name.
    public var location: String { "\(address.display) (run `\(runName)`)" }

    let connection: PostgresConnection
    let logger: Logger
    private var closed = false
    /// Whether this connection holds the run's lock (`claimRun`).
    private var claimed = false

    /// Opens (and with `create`, creates) the run `run` of kind `kind` in the store at `url`.
    ///
    /// - `claim`: hold the run's lock (a session advisory lock) for the life of this value, as the process
    ///   that takes the run's algorithm steps; another process holding it is named in the error. The server
    ///   frees the lock when this process ends, however it ends.
    /// - `resume`: without it, a run that already holds steps is refused (as `RunFolder.openOrCreate`).
    public static func open(url: String, run: String, kind: String, create: Bool = true, resume: Bool = true,
                            claim: Bool = false) throws(SearchError) -> PostgresRunStore {
        let address = try PostgresAddress(parsing: url)
        guard !run.isEmpty else { throw .runFolder(path: address.display, reason: "the run has no name: name it with --run NAME") }
        let connection = try connect(address)
        let store: PostgresRunStore
        do throws(SearchError) {
            try createSchema(connection, address: address)
            guard let (id, storedKind) = try findRun(connection, address: address, run: run, kind: kind, create: create) else {
                throw SearchError.runFolder(path: "\(address.display) (run `\(run)`)",
                                            reason: "no such run: start it with `amalgam evolve CONFIG --store URL --run \(run)`")
            }
            store = PostgresRunStore(address: address, runName: run, runID: id, kind: storedKind, connection: connection)
        } catch {
            _ = try? connection.close().wait()
            throw error
        }
        guard store.kind == kind else {
            throw .runFolder(path: store.location, reason: "holds a `\(store.kind)` run, not `\(kind)`: choose another run name")
        }
        if claim { try store.claimRun() }
        if !resume, try store.latestStep() != nil {
            throw .runFolder(path: store.location, reason: "holds a `\(kind)` run already: pass --resume to continue it, or choose another run name")
        }
        return store
    }

    init(address: PostgresAddress, runName: String, runID: Int64, kind: String, connection: PostgresConnection) {
        self.address = address
        self.runName = runName
        self.runID = runID
        self.kind = kind
        self.connection = connection
        logger = Self.quietLogger()
    }

    deinit { close() }

    /// Frees the run's lock and closes the connection. Later calls fail. The lock is let go explicitly
    /// first: the server frees a closed session's locks only when its backend has ended, which on a loaded
    /// server can come seconds after the client closed, and a process that opens the run again at once
    /// would find it still held.
    public func close() {
        guard !closed else { return }
        if claimed { _ = try? query("SELECT pg_advisory_unlock(\(Self.runLockClass), \(Int32(truncatingIfNeeded: runID)))") }
        closed = true
        _ = try? connection.close().wait()
    }

    static func quietLogger() -> Logger {
        var logger = Logger(label: "amalgam.postgres")
        logger.logLevel = .critical
        return logger
    }

    // MARK: Connecting

    static func connect(_ address: PostgresAddress) throws(SearchError) -> PostgresConnection {
        var configuration = PostgresConnection.Configuration(host: address.host, port: address.port, username: address.user,
                                                             password: address.password, database: address.database, tls: .disable)
        configuration.options.connectTimeout = .seconds(10)
        configuration.options.additionalStartupParameters = [("application_name", applicationName)]
        do {
            return try PostgresConnection.connect(on: PostgresConnection.defaultEventLoopGroup.any(), configuration: configuration,
                                                  id: 1, logger: quietLogger()).wait()
        } catch {
            throw describe(error, at: address.display, connecting: address)
        }
    }

    /// `amalgam PID on HOST`: what `pg_stat_activity` shows of this process, and so what a refused claim names.
    static let applicationName: String = {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        let host = String(decoding: name.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "amalgam \(getpid()) on \(host)"
    }()

    /// A postgres-nio error as the store's error: what failed, the server's own message, what to do.
    static func describe(_ error: any Error, at location: String, connecting address: PostgresAddress? = nil) -> SearchError {
        if let error = error as? SearchError { return error }
        let where_ = address.map { "PostgreSQL run store \($0.display)" } ?? location
        guard let psql = error as? PSQLError else {
            return .runFolder(path: where_, reason: "\(address == nil ? "failed" : "cannot connect"): \(error)")
        }
        if let info = psql.serverInfo {
            let state = info[.sqlState] ?? "?"
            let message = info[.message] ?? "the server refused the request"
            if let address, state.hasPrefix("28") || state == "3D000" {
                return .runFolder(path: where_, reason: "the server refused the login of `\(address.user)` to database `\(address.database)`: "
                    + "\(message) (SQLSTATE \(state)); check the user, its password, the database name and the server's pg_hba.conf")
            }
            var detail = message
            if let d = info[.detail] { detail += " (\(d))" }
            return .runFolder(path: where_, reason: "the server refused a statement: \(detail) (SQLSTATE \(state))")
        }
        let cause = psql.underlying.map { "\($0)" } ?? "\(psql.code)"
        if let address {
            return .runFolder(path: where_, reason: "cannot reach the server at \(address.host):\(address.port) (\(cause)): "
                + "check that it runs and that the host and port are right")
        }
        return .runFolder(path: where_, reason: "the connection to the server failed (\(cause)); the last step that committed is kept: continue the run")
    }

    // MARK: Statements

    @discardableResult
    func query(_ query: PostgresQuery) throws(SearchError) -> PostgresQueryResult {
        guard !closed else { throw .runFolder(path: location, reason: "the store was closed") }
        do { return try connection.query(query, logger: logger).wait() } catch { throw Self.describe(error, at: location) }
    }

    /// Runs `sql`: ONE statement without parameters (postgres-nio sends every query as a prepared statement,
    /// which the server allows one command).
    public func execute(_ sql: String) throws(SearchError) {
        try query(PostgresQuery(unsafeSQL: sql))
    }

    /// Runs `body` in one transaction: COMMIT when it returns, ROLLBACK when it throws.
    public func transaction<T>(_ body: () throws(SearchError) -> T) throws(SearchError) -> T {
        try query("BEGIN")
        do {
            let value = try body()
            try query("COMMIT")
            return value
        } catch {
            _ = try? query("ROLLBACK")
            throw error
        }
    }

    static func run(_ connection: PostgresConnection, _ query: PostgresQuery, at location: String) throws(SearchError) -> PostgresQueryResult {
        do { return try connection.query(query, logger: quietLogger()).wait() } catch { throw describe(error, at: location) }
    }

    /// `body`'s decoding error as the store's.
    static func decoded<T>(at location: String, _ body: () throws -> T) throws(SearchError) -> T {
        do { return try body() } catch {
            throw .runFolder(path: location, reason: "the store holds a value of an unexpected type (\(String(reflecting: error)))")
        }
    }

    // MARK: Schema and runs

    /// Creates the tables at the first use of a database (one process at a time: a transaction-scoped
    /// advisory lock), and refuses a database whose schema is newer than this code.
    static func createSchema(_ connection: PostgresConnection, address: PostgresAddress) throws(SearchError) {
        let at = "PostgreSQL run store \(address.display)"
        func version() throws(SearchError) -> Int {
            // pg_class read with the statement's snapshot, not `to_regclass`: that looks the name up in the
            // session's catalog cache, which inside a transaction is not refreshed by an advisory lock, so a
            // process that waited on the lock below while another created the tables still saw none, and its
            // CREATE TABLE failed with "relation amalgam_schema already exists".
            let exists = try run(connection, """
                SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                                WHERE c.relname = 'amalgam_schema' AND n.nspname = current_schema())
                """, at: at)
            guard try exists.first.map({ (row) throws(SearchError) in try Self.decoded(at: at, { try row.decode(Bool.self) }) }) ?? false else { return 0 }
            let rows = try run(connection, "SELECT version FROM amalgam_schema", at: at)
            return try rows.first.map { (r) throws(SearchError) in Int(try Self.decoded(at: at) { try r.decode(Int32.self) }) } ?? 0
        }
        func refuseNewer(_ version: Int) throws(SearchError) {
            guard version <= schemaVersion else {
                throw SearchError.runFolder(path: at, reason: "was made by a newer amalgam (run-store schema \(version), this one reads up to "
                    + "\(schemaVersion)); use that version, or another database")
            }
        }
        // The usual case, without a lock: the schema is there (so a reader never waits on a writer's set-up).
        let seen = try version()
        try refuseNewer(seen)
        if seen == schemaVersion { return }
        _ = try run(connection, "BEGIN", at: at)
        do throws(SearchError) {
            // Waits for another process setting the schema up; a lock held longer than 10 s is an error.
            _ = try run(connection, "SET LOCAL lock_timeout = '10s'", at: at)
            _ = try run(connection, "SELECT pg_advisory_xact_lock(\(schemaLockClass), 0)", at: at)
            let version = try version()
            try refuseNewer(version)
            if version < 1 {
                for statement in schemaV1 { _ = try run(connection, PostgresQuery(unsafeSQL: statement), at: at) }
            }
            _ = try run(connection, "COMMIT", at: at)
        } catch {
            _ = try? run(connection, "ROLLBACK", at: at)
            throw error
        }
    }

    static let schemaV1 = [
        "CREATE TABLE amalgam_schema (one int PRIMARY KEY DEFAULT 1 CHECK (one = 1), version int NOT NULL)",
        "INSERT INTO amalgam_schema (version) VALUES (1)",
        """
        CREATE TABLE amalgam_runs (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, kind text NOT NULL,
          configuration text, fingerprint text, step bigint, created timestamptz NOT NULL DEFAULT now())
        """,
        """
        CREATE TABLE amalgam_run_steps (run_id bigint NOT NULL REFERENCES amalgam_runs ON DELETE CASCADE, step bigint NOT NULL,
          json text NOT NULL, PRIMARY KEY (run_id, step))
        """,
        """
        CREATE TABLE amalgam_run_blobs (run_id bigint NOT NULL REFERENCES amalgam_runs ON DELETE CASCADE, name text NOT NULL,
          part int NOT NULL, bytes bytea NOT NULL, PRIMARY KEY (run_id, name, part))
        """,
        """
        CREATE TABLE amalgam_run_outputs (run_id bigint NOT NULL REFERENCES amalgam_runs ON DELETE CASCADE, name text NOT NULL,
          path text NOT NULL, PRIMARY KEY (run_id, name))
        """,
        // The work queue (PostgresWorkQueue.swift): evaluations claimed under leases, results written once.
        """
        CREATE TABLE amalgam_work (run_id bigint NOT NULL REFERENCES amalgam_runs ON DELETE CASCADE, idx bigint NOT NULL,
          payload text NOT NULL, state text NOT NULL DEFAULT 'queued', attempt int NOT NULL DEFAULT 0, lease_token uuid,
          lease_until timestamptz, worker text, PRIMARY KEY (run_id, idx))
        """,
        "CREATE INDEX amalgam_work_queued ON amalgam_work (run_id, idx) WHERE state = 'queued'",
        """
        CREATE TABLE amalgam_results (run_id bigint NOT NULL, idx bigint NOT NULL, attempt int NOT NULL, worker text NOT NULL,
          result bytea NOT NULL, PRIMARY KEY (run_id, idx), FOREIGN KEY (run_id, idx) REFERENCES amalgam_work ON DELETE CASCADE)
        """,
    ]

    /// The run's id and kind, creating its row when `create` and there is none.
    static func findRun(_ connection: PostgresConnection, address: PostgresAddress, run name: String, kind: String,
                        create: Bool) throws(SearchError) -> (Int64, String)? {
        let at = "\(address.display) (run `\(name)`)"
        if create {
            _ = try run(connection, "INSERT INTO amalgam_runs (name, kind) VALUES (\(name), \(kind)) ON CONFLICT (name) DO NOTHING", at: at)
        }
        let rows = try run(connection, "SELECT id, kind FROM amalgam_runs WHERE name = \(name)", at: at)
        guard let row = rows.first else { return nil }
        return try Self.decoded(at: at) { try row.decode((Int64, String).self) }
    }

    /// Takes the run's lock for this connection's life, or throws naming the process that holds it.
    /// A process killed while holding the lock frees it when the server sees its connection close, which can
    /// come a moment after the kill: the claim is retried for up to 3 s before it is refused.
    func claimRun() throws(SearchError) {
        var taken = false
        for attempt in 0..<30 {
            let rows = try query("SELECT pg_try_advisory_lock(\(Self.runLockClass), \(Int32(truncatingIfNeeded: runID)))")
            taken = try rows.first.map { (row) throws(SearchError) in try Self.decoded(at: location, { try row.decode(Bool.self) }) } ?? false
            if taken || attempt == 29 { break }
            usleep(100_000)
        }
        claimed = taken
        guard taken else {
            let holder = try query("""
                SELECT coalesce(a.application_name, ''), a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.classid = \(Int64(Self.runLockClass) & 0xFFFF_FFFF)::oid
                  AND l.objid = \(Int64(UInt32(truncatingIfNeeded: runID)))::oid AND l.granted LIMIT 1
                """)
            let who = try holder.first.map { (r) throws(SearchError) -> String in
                let (name, pid) = try Self.decoded(at: location) { try r.decode((String, Int32).self) }
                return name.isEmpty ? "server session \(pid)" : "\(name) (server session \(pid))"
            } ?? "another process"
            throw .runFolder(path: location, reason: "in use by \(who), which is still connected: wait for it to finish, or stop it")
        }
    }

    // MARK: RunStore

    public func configuration() throws(SearchError) -> RunConfiguration? {
        let rows = try query("SELECT configuration FROM amalgam_runs WHERE id = \(runID)")
        guard let row = rows.first else { return nil }
        guard let text = try Self.decoded(at: location, { try row.decode(String?.self) }) else { return nil }
        guard let value = try? JSONDecoder().decode(RunConfiguration.self, from: Data(text.utf8)) else {
            throw .runFolder(path: location, reason: "holds a configuration that cannot be read")
        }
        return value
    }

    public func checkConfiguration(_ configuration: RunConfiguration) throws(SearchError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(configuration) else { throw .runFolder(path: location, reason: "the configuration cannot be encoded") }
        let text = String(decoding: data, as: UTF8.self), fingerprint = configuration.fingerprint
        // The first process records it; any other (at the same moment or later) compares with what is recorded.
        let result = try query("UPDATE amalgam_runs SET configuration = \(text), fingerprint = \(fingerprint) WHERE id = \(runID) AND configuration IS NULL")
        if result.metadata.rows == 1 { return }
        try refuseDifferent(configuration, recorded: try self.configuration())
    }

    public func latestStep() throws(SearchError) -> Int? {
        let rows = try query("SELECT step FROM amalgam_runs WHERE id = \(runID)")
        guard let row = rows.first else { throw .runFolder(path: location, reason: "the run was deleted from the database") }
        return try Self.decoded(at: location) { try row.decode(Int64?.self) }.map { Int($0) }
    }

    public func records(in range: ClosedRange<Int>) throws(SearchError) -> [RunStep.Record] {
        let rows = try query("""
            SELECT step, json FROM amalgam_run_steps WHERE run_id = \(runID) AND step BETWEEN \(Int64(range.lowerBound)) AND \(Int64(range.upperBound))
            ORDER BY step
            """)
        var out: [RunStep.Record] = []
        for row in rows {
            let (step, json) = try Self.decoded(at: location) { try row.decode((Int64, String).self) }
            out.append(RunStep.Record(step: Int(step), json: json))
        }
        return out
    }

    public func blob(_ name: String) throws(SearchError) -> [UInt8]? {
        let rows = try query("SELECT bytes FROM amalgam_run_blobs WHERE run_id = \(runID) AND name = \(name) ORDER BY part")
        guard !rows.isEmpty else { return nil }
        var bytes: [UInt8] = []
        for row in rows {
            let buffer = try Self.decoded(at: location) { try row.decode(ByteBuffer.self) }
            bytes += buffer.readableBytesView
        }
        return bytes
    }

    public func commit(_ step: RunStep) throws(SearchError) {
        try transaction { () throws(SearchError) in
            for r in step.records {
                try query("""
                    INSERT INTO amalgam_run_steps (run_id, step, json) VALUES (\(runID), \(Int64(r.step)), \(r.json))
                    ON CONFLICT (run_id, step) DO UPDATE SET json = EXCLUDED.json
                    """)
            }
            for name in step.blobs.keys.sorted() {
                let bytes = step.blobs[name]!
                try query("DELETE FROM amalgam_run_blobs WHERE run_id = \(runID) AND name = \(name)")
                var part: Int32 = 0, start = 0
                repeat {
                    let end = min(bytes.count, start + Self.blobPartSize)
                    let buffer = ByteBuffer(bytes: bytes[start..<end])
                    try query("INSERT INTO amalgam_run_blobs (run_id, name, part, bytes) VALUES (\(runID), \(name), \(part), \(buffer))")
                    part += 1
                    start = end
                } while start < bytes.count
            }
            for name in step.outputs.keys.sorted() {
                let path = step.outputs[name]!
                try query("""
                    INSERT INTO amalgam_run_outputs (run_id, name, path) VALUES (\(runID), \(name), \(path))
                    ON CONFLICT (run_id, name) DO UPDATE SET path = EXCLUDED.path
                    """)
            }
            try query("UPDATE amalgam_runs SET step = \(Int64(step.number)) WHERE id = \(runID)")
        }
    }

    /// The names of the run's blobs that start with `prefix`, sorted.
    public func blobNames(withPrefix prefix: String) throws(SearchError) -> [String] {
        let rows = try query("SELECT DISTINCT name FROM amalgam_run_blobs WHERE run_id = \(runID) AND left(name, \(Int32(prefix.count))) = \(prefix) ORDER BY name")
        var out: [String] = []
        for row in rows { out.append(try Self.decoded(at: location) { try row.decode(String.self) }) }
        return out
    }

    public func outputs() throws(SearchError) -> [String: String] {
        let rows = try query("SELECT name, path FROM amalgam_run_outputs WHERE run_id = \(runID)")
        var out: [String: String] = [:]
        for row in rows {
            let (name, path) = try Self.decoded(at: location) { try row.decode((String, String).self) }
            out[name] = path
        }
        return out
    }
}
