import AmalgamSearch
import AmalgamTestSupport
import Foundation
import Testing

/// A run-store backend under test: SQLite (a run folder) always; PostgreSQL when a server is given
/// (`AMALGAM_TEST_POSTGRES`, set by scripts/test.sh), and always in CI, where a missing server fails.
enum StoreBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    var testDescription: String { rawValue }

    /// The backends these tests run against here.
    static var available: [StoreBackend] { testPostgres.shouldRun ? [.sqlite, .postgres] : [.sqlite] }

    /// A new, unused place for a run: a folder path, or a run name unique in the shared test database.
    func newRun(_ label: String) -> String {
        switch self {
        case .sqlite: return temporaryFolder("run-store-contract-" + label)
        case .postgres: return "contract-\(label)-\(UUID().uuidString.prefix(8))"
        }
    }

    /// Opens (creating when there is none) the run `run` of kind `kind`.
    func open(_ run: String, kind: String = "test", resume: Bool = true) throws -> any RunStore {
        switch self {
        case .sqlite: return try RunFolder.openOrCreate(path: run, kind: kind, durability: .process, resume: resume)
        case .postgres: return try PostgresRunStore.open(url: try testPostgres.require(), run: run, kind: kind, resume: resume, claim: true)
        }
    }

    /// Deletes the run.
    func remove(_ run: String) {
        switch self {
        case .sqlite: try? FileManager.default.removeItem(atPath: run)
        case .postgres:
            guard let url = try? testPostgres.require(), let store = try? PostgresRunStore.open(url: url, run: run, kind: "test", create: false) else { return }
            try? store.execute("DELETE FROM amalgam_runs WHERE id = \(store.runID)")
        }
    }

    /// Makes the store refuse the insert of blob `name` with the bytes `[2]` (as a full disk would), until `allow` is called.
    func refuseBlob(_ name: String, in store: any RunStore) throws -> () -> Void {
        switch self {
        case .sqlite:
            let folder = try #require(store as? RunFolder)
            try folder.database.execute("""
                CREATE TRIGGER refuse BEFORE INSERT ON run_blobs WHEN NEW.name = '\(name)' AND NEW.bytes = x'02'
                BEGIN SELECT RAISE(ABORT, 'disk gone'); END
                """)
            return { try? folder.database.execute("DROP TRIGGER refuse") }
        case .postgres:
            let pg = try #require(store as? PostgresRunStore)
            // Other tests share the table: the trigger fires for this run only.
            let trigger = "refuse_\(pg.runID)"
            try pg.execute("CREATE FUNCTION \(trigger)() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk gone'; END $$")
            try pg.execute("""
                CREATE TRIGGER \(trigger) BEFORE INSERT ON amalgam_run_blobs FOR EACH ROW
                  WHEN (NEW.run_id = \(pg.runID) AND NEW.name = '\(name)' AND NEW.bytes = '\\x02'::bytea) EXECUTE FUNCTION \(trigger)()
                """)
            return {
                try? pg.execute("DROP TRIGGER IF EXISTS \(trigger) ON amalgam_run_blobs")
                try? pg.execute("DROP FUNCTION IF EXISTS \(trigger)()")
            }
        }
    }
}

/// The `RunStore` contract (Run/README.md), the same calls and the same answers from every backend.
@Suite struct RunStoreContractTests {
    @Test(arguments: StoreBackend.available)
    func aResumeSeesTheLastCommittedStepWithItsRecordsBlobsAndOutputs(_ backend: StoreBackend) throws {
        let run = backend.newRun("commit")
        defer { backend.remove(run) }
        do {
            let store = try backend.open(run, resume: false)
            #expect(try store.latestStep() == nil)
            #expect(try store.blob("a") == nil)
            try store.commit(RunStep(number: 1, records: [.init(step: 1, json: "{\"loss\":2}")], blobs: ["a": [1, 2], "b": [3]]))
            try store.commit(RunStep(number: 3, records: [.init(step: 2, json: "{\"loss\":1.5}"), .init(step: 3, json: "{\"loss\":1}")],
                                     blobs: ["a": [4, 5, 6], "empty": []], outputs: ["model": "/x/model"]))
        }
        let store = try backend.open(run, resume: true)
        #expect(try store.latestStep() == 3)
        #expect(try store.records(in: 1...3).map(\.json) == ["{\"loss\":2}", "{\"loss\":1.5}", "{\"loss\":1}"])
        #expect(try store.records(in: 2...2).map(\.step) == [2])
        #expect(try store.blob("a") == [4, 5, 6])
        #expect(try store.blob("b") == [3])
        #expect(try store.blob("empty") == [])
        #expect(try store.blob("c") == nil)
        #expect(try store.outputs() == ["model": "/x/model"])
        #expect(store.kind == "test")
    }

    @Test(arguments: StoreBackend.available)
    func aCommitThatFailsHalfwayLeavesThePreviousStepWhole(_ backend: StoreBackend) throws {
        let run = backend.newRun("rollback")
        defer { backend.remove(run) }
        let store = try backend.open(run, resume: false)
        try store.commit(RunStep(number: 1, records: [.init(step: 1, json: "1")], blobs: ["optimiser": [1], "state": [1]]))
        // The second blob's insert fails after the first one's went in: nothing of step 2 may remain.
        let allow = try backend.refuseBlob("state", in: store)
        defer { allow() }
        #expect(throws: SearchError.self) {
            try store.commit(RunStep(number: 2, records: [.init(step: 2, json: "2")], blobs: ["optimiser": [2], "state": [2]],
                                     outputs: ["model": "/x"]))
        }
        #expect(try store.latestStep() == 1)
        #expect(try store.blob("optimiser") == [1])
        #expect(try store.blob("state") == [1])
        #expect(try store.records(in: 1...2).map(\.step) == [1])
        #expect(try store.outputs() == [:])
        // The store is usable after the failed commit.
        allow()
        try store.commit(RunStep(number: 2, records: [.init(step: 2, json: "2")], blobs: ["state": [2]]))
        #expect(try store.latestStep() == 2 && store.blob("state") == [2])
    }

    @Test(arguments: StoreBackend.available)
    func aResumeWithAnotherConfigurationIsRefusedNamingWhatDiffers(_ backend: StoreBackend) throws {
        let run = backend.newRun("config")
        defer { backend.remove(run) }
        do {
            let store = try backend.open(run, resume: false)
            #expect(try store.configuration() == nil)
            try store.checkConfiguration(RunConfiguration([("lr", "0.01"), ("seed", "3")]))
        }
        let store = try backend.open(run)
        #expect(try store.configuration() == RunConfiguration([("lr", "0.01"), ("seed", "3")]))
        try store.checkConfiguration(RunConfiguration([("lr", "0.01"), ("seed", "3")]))
        do {
            try store.checkConfiguration(RunConfiguration([("lr", "0.02"), ("seed", "3"), ("steps", "9")]))
            Issue.record("another configuration was accepted")
        } catch {
            #expect(error.description.contains(store.location))
            #expect(error.description.contains("lr: 0.01 in the run, 0.02 now"))
            #expect(error.description.contains("steps: (absent) in the run, 9 now"))
            #expect(!error.description.contains("seed"))
        }
    }

    @Test(arguments: StoreBackend.available)
    func aRunThatHoldsStepsIsRefusedWithoutResumeAndARunOfAnotherKindAlways(_ backend: StoreBackend) throws {
        let run = backend.newRun("kind")
        defer { backend.remove(run) }
        do {
            let store = try backend.open(run, resume: false)
            try store.commit(RunStep(number: 1))
        }
        do {
            _ = try backend.open(run, resume: false)
            Issue.record("a run holding steps was reopened without resume")
        } catch {
            #expect("\(error)".contains("--resume"))
        }
        do {
            _ = try backend.open(run, kind: "other", resume: true)
            Issue.record("a run of another kind was opened")
        } catch {
            #expect("\(error)".contains("test"))
        }
    }
}

/// What only the PostgreSQL store has: a URL, a server that may be absent or refuse, a schema version
/// shared by every run of a database, and a run lock between processes.
@Suite(.requires(testPostgres)) struct PostgresRunStoreTests {
    /// The test server's URL with another user or database.
    func url(user: String? = nil, database: String? = nil) throws -> String {
        var c = try #require(URLComponents(string: try testPostgres.require()))
        if let user { c.user = user }
        if let database { c.path = "/" + database }
        return try #require(c.string)
    }

    func refusal(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        Issue.record("no error")
        return ""
    }

    @Test func aBadURLIsRefusedShowingTheExpectedFormWithoutThePassword() {
        for (url, what) in [("postgres://127.0.0.1:5432/db", "no user"), ("postgres://u@127.0.0.1:5432/", "no database"),
                            ("postgres://u:hunter2@127.0.0.1:99999/db", "port"), ("postgres://u:hunter2@h/db?sslmode=require", "sslmode")] {
            let message = refusal { _ = try PostgresRunStore.open(url: url, run: "r", kind: "test") }
            #expect(message.contains("PostgreSQL run store") && message.contains(what), "\(url): \(message)")
            #expect(message.contains("postgres://USER@HOST:PORT/DATABASE"), "\(message)")
            #expect(!message.contains("hunter2"), "the password is shown: \(message)")
        }
        #expect(PostgresAddress.isPostgresURL("postgresql://u@h/d") && !PostgresAddress.isPostgresURL("runs/a"))
    }

    @Test func anUnreachableServerIsAClearErrorNamingTheStore() throws {
        // Port 1 on loopback: nothing listens there, the connection is refused at once.
        let message = refusal { _ = try PostgresRunStore.open(url: "postgres://amalgam:secret@127.0.0.1:1/amalgam_test", run: "r", kind: "test") }
        #expect(message.contains("postgres://amalgam@127.0.0.1:1/amalgam_test"), "\(message)")
        #expect(message.contains("cannot reach the server at 127.0.0.1:1"), "\(message)")
        #expect(!message.contains("secret"))
    }

    @Test func aRefusedLoginOrAMissingDatabaseIsAClearErrorNamingUserAndDatabase() throws {
        // scripts/check/postgres.sh makes pg_hba.conf reject the role amalgam_refused.
        let refused = refusal { _ = try PostgresRunStore.open(url: try url(user: "amalgam_refused"), run: "r", kind: "test") }
        #expect(refused.contains("refused the login of `amalgam_refused`") && refused.contains("pg_hba.conf"), "\(refused)")
        let missing = refusal { _ = try PostgresRunStore.open(url: try url(database: "no_such_database"), run: "r", kind: "test") }
        #expect(missing.contains("no_such_database") && missing.contains("does not exist"), "\(missing)")
    }

    @Test func aRunIsContinuedByOneProcessAtATimeAndFreedWhenItsConnectionEnds() throws {
        let run = "lock-\(UUID().uuidString.prefix(8))"
        let first = try PostgresRunStore.open(url: try testPostgres.require(), run: run, kind: "test", claim: true)
        defer { try? first.execute("DELETE FROM amalgam_runs WHERE id = \(first.runID)") }
        let message = refusal { _ = try PostgresRunStore.open(url: try testPostgres.require(), run: run, kind: "test", claim: true) }
        #expect(message.contains("in use by amalgam \(getpid()) on"), "\(message)")
        // A process that only looks does not need the lock.
        let looking = try PostgresRunStore.open(url: try testPostgres.require(), run: run, kind: "test", claim: false)
        #expect(try looking.latestStep() == nil)
        first.close()
        let second = try PostgresRunStore.open(url: try testPostgres.require(), run: run, kind: "test", claim: true)
        try second.commit(RunStep(number: 1))
        #expect(try looking.latestStep() == 1, "a commit is seen by every connection")
    }

    /// The first use of a database by several processes at once: one creates the tables while the others
    /// wait on the schema lock, then find them. (Their re-check once read the session's stale catalog cache,
    /// saw no tables and failed with "relation amalgam_schema already exists".) Fresh databases owned by the
    /// tests' role, made and dropped by the server's superuser.
    @Test func manyProcessesOpeningAFreshDatabaseAtOnceAllFindOneSchema() throws {
        let admin = try PostgresRunStore.open(url: try url(user: "postgres"), run: "fresh-admin-\(UUID().uuidString.prefix(8))", kind: "test")
        defer { try? admin.execute("DELETE FROM amalgam_runs WHERE id = \(admin.runID)") }
        for round in 0..<6 {
            let name = "amalgam_fresh_\(UUID().uuidString.prefix(8).lowercased())"
            try admin.execute("CREATE DATABASE \(name) OWNER amalgam")
            defer { try? admin.execute("DROP DATABASE \(name) WITH (FORCE)") }
            let fresh = try url(database: name)
            final class Failures: @unchecked Sendable {
                let lock = NSLock()
                var messages: [String] = []
                func add(_ m: String) { lock.lock(); messages.append(m); lock.unlock() }
            }
            let failures = Failures()
            DispatchQueue.concurrentPerform(iterations: 8) { i in
                do { try PostgresRunStore.open(url: fresh, run: "run-\(i)", kind: "test").close() } catch { failures.add("\(error)") }
            }
            let errors = failures.messages
            #expect(errors.isEmpty, "round \(round): \(errors.count) of 8 failed, first: \(errors.first ?? "")")
        }
    }

    @Test func aRunThatDoesNotExistIsNotCreatedByAProcessThatOnlyJoins() throws {
        let message = refusal { _ = try PostgresRunStore.open(url: try testPostgres.require(), run: "never-made", kind: "test", create: false) }
        #expect(message.contains("run `never-made`") && message.contains("no such run"), "\(message)")
    }

    /// A database whose schema a newer amalgam made is refused, and never changed. (In the server's own
    /// `postgres` database, as its superuser: the tests' database is shared by the other tests.)
    @Test func aDatabaseOfANewerSchemaIsRefusedSayingWhatToDo() throws {
        let admin = try url(user: "postgres", database: "postgres")
        let store = try PostgresRunStore.open(url: admin, run: "schema", kind: "test")
        try store.execute("UPDATE amalgam_schema SET version = \(PostgresRunStore.schemaVersion + 8)")
        defer {
            try? store.execute("DROP TABLE amalgam_results, amalgam_work, amalgam_run_steps, amalgam_run_blobs, amalgam_run_outputs, amalgam_runs, amalgam_schema")
        }
        let message = refusal { _ = try PostgresRunStore.open(url: admin, run: "schema", kind: "test") }
        #expect(message.contains("newer amalgam") && message.contains("schema \(PostgresRunStore.schemaVersion + 8)"), "\(message)")
    }
}
