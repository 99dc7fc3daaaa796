import AmalgamCore
import CSQLite
import Foundation

/// A minimal SQLite connection: execute SQL, prepared statements with positional parameters, and
/// transactions. Everything a run folder needs, nothing more.
public final class SQLiteDatabase {
    /// The database file, for error messages.
    public let path: String
    private let handle: OpaquePointer
    private var cache: [String: SQLiteStatement] = [:]

    /// Opens (creating if needed) the database at `path`.
    public init(path: String) throws(SearchError) {
        self.path = path
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw .runFolder(path: path, reason: "cannot open the database (\(message))")
        }
        handle = db
        sqlite3_busy_timeout(db, 5000)
    }

    deinit {
        cache.removeAll()
        // close_v2: a statement still held elsewhere (a caller's local outliving this object) defers the close to
        // its finalization instead of failing it (sqlite3_close returns SQLITE_BUSY and leaks the connection).
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements without results.
    public func execute(_ sql: String) throws(SearchError) {
        var error: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(handle, sql, nil, nil, &error) == SQLITE_OK else {
            let message = error.map { explain(String(cString: $0)) } ?? lastError
            sqlite3_free(error)
            throw .runFolder(path: path, reason: "SQL failed (\(message)): \(sql.prefix(80))")
        }
    }

    /// A prepared statement for `sql`, reused across calls (reset and with its parameters cleared).
    public func statement(_ sql: String) throws(SearchError) -> SQLiteStatement {
        if let s = cache[sql] {
            sqlite3_reset(s.handle)
            sqlite3_clear_bindings(s.handle)
            return s
        }
        var s: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &s, nil) == SQLITE_OK, let s else {
            throw .runFolder(path: path, reason: "SQL failed (\(lastError)): \(sql.prefix(80))")
        }
        let statement = SQLiteStatement(handle: s, database: self)
        cache[sql] = statement
        return statement
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws. Inside another
    /// transaction, `body` becomes part of it (committed or rolled back with it).
    public func transaction<R>(_ body: () throws(SearchError) -> R) throws(SearchError) -> R {
        if sqlite3_get_autocommit(handle) == 0 { return try body() }
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// SQLite's message for the last failure; a full disk says so and what to do.
    var lastError: String { explain(String(cString: sqlite3_errmsg(handle))) }

    /// `message`, with what to do when the last failure was a full disk.
    private func explain(_ message: String) -> String {
        let code = sqlite3_errcode(handle)
        let system = sqlite3_system_errno(handle)
        guard code == SQLITE_FULL || (code == SQLITE_IOERR && (system == ENOSPC || system == EDQUOT)) else { return message }
        let free = freeBytes(near: path).map { " (\(byteCountText($0)) free)" } ?? ""
        return "\(message): no space left on device\(free); free some space, then continue the run with --resume "
            + "(the run folder keeps its last committed step)"
    }
}

/// A prepared statement: bind parameters (1-based), then `step()` through the rows.
public final class SQLiteStatement {
    let handle: OpaquePointer
    private unowned let database: SQLiteDatabase

    init(handle: OpaquePointer, database: SQLiteDatabase) {
        self.handle = handle
        self.database = database
    }

    deinit { sqlite3_finalize(handle) }

    /// Binds the values to parameters 1, 2, … in order and returns the statement.
    @discardableResult
    public func bind(_ values: SQLiteValue...) throws(SearchError) -> SQLiteStatement {
        for (i, v) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch v {
            case .null: rc = sqlite3_bind_null(handle, index)
            case let .int(x): rc = sqlite3_bind_int64(handle, index, x)
            case let .double(x): rc = sqlite3_bind_double(handle, index, x)
            case let .text(x): rc = sqlite3_bind_text(handle, index, x, -1, sqliteTransient)
            case let .blob(x):
                rc = x.withUnsafeBytes { sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count), sqliteTransient) }
            }
            guard rc == SQLITE_OK else {
                throw .runFolder(path: database.path, reason: "cannot bind parameter \(index) (\(database.lastError))")
            }
        }
        return self
    }

    /// Advances to the next row: true when there is one, false when done.
    @discardableResult
    public func step() throws(SearchError) -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw .runFolder(path: database.path, reason: "SQL failed (\(database.lastError))")
        }
    }

    /// Column `i` (0-based) of the current row as an integer.
    public func int(_ i: Int32) -> Int64 { sqlite3_column_int64(handle, i) }
    /// Column `i` as a double.
    public func double(_ i: Int32) -> Double { sqlite3_column_double(handle, i) }
    /// Whether column `i` is NULL.
    public func isNull(_ i: Int32) -> Bool { sqlite3_column_type(handle, i) == SQLITE_NULL }
    /// Column `i` as text, nil when NULL.
    public func text(_ i: Int32) -> String? {
        guard let p = sqlite3_column_text(handle, i) else { return nil }
        return String(cString: p)
    }
    /// Column `i` as bytes.
    public func blob(_ i: Int32) -> [UInt8] {
        let n = Int(sqlite3_column_bytes(handle, i))
        guard n > 0, let p = sqlite3_column_blob(handle, i) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }
}

/// A value bound to a statement parameter.
public enum SQLiteValue {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])

    /// An integer or NULL.
    public static func optional(_ x: Int?) -> SQLiteValue { x.map { .int(Int64($0)) } ?? .null }
    /// A 64-bit pattern (seeds, generator words) stored as SQLite's signed integer.
    public static func bits(_ x: UInt64) -> SQLiteValue { .int(Int64(bitPattern: x)) }
}

/// SQLite's SQLITE_TRANSIENT (copy the bound value now), which the C macro defines as -1.
private let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
