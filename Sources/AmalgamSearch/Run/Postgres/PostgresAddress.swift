import Foundation

/// Where a PostgreSQL run store is: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (or `postgresql://`).
/// `display` is the URL without the password, for messages and `RunStore.location`.
public struct PostgresAddress: Sendable, Equatable {
    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String

    /// The URL without its password: `postgres://USER@HOST:PORT/DATABASE`.
    public var display: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(user)@\(shownHost):\(port)/\(database)"
    }

    /// Whether `text` names a PostgreSQL store (starts with `postgres://` or `postgresql://`).
    public static func isPostgresURL(_ text: String) -> Bool {
        let lower = text.lowercased()
        return lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://")
    }

    /// Parses `url`, throwing an error that shows the expected form when it is not one.
    public init(parsing url: String) throws(SearchError) {
        let expected = "expected postgres://USER@HOST:PORT/DATABASE (a password may follow the user as USER:PASSWORD)"
        func bad(_ what: String) -> SearchError {
            // The URL as given may hold a password: show it without.
            .runFolder(path: "PostgreSQL run store `\(Self.withoutPassword(url))`", reason: "\(what); \(expected)")
        }
        guard Self.isPostgresURL(url) else { throw bad("not a PostgreSQL URL") }
        guard let components = URLComponents(string: url) else { throw bad("not a valid URL") }
        guard let user = components.percentEncodedUser.flatMap({ $0.removingPercentEncoding }), !user.isEmpty else { throw bad("no user") }
        guard let host = components.host, !host.isEmpty else { throw bad("no host") }
        if let port = components.port, !(1...65535).contains(port) { throw bad("port \(port) is out of range") }
        var path = components.percentEncodedPath
        if path.hasPrefix("/") { path.removeFirst() }
        guard let database = path.removingPercentEncoding, !database.isEmpty, !database.contains("/") else { throw bad("no database") }
        if let query = components.query, !query.isEmpty { throw bad("options after `?` (`\(query)`) are not supported") }
        self.user = user
        password = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        port = components.port ?? 5432
        self.database = database
    }

    /// `url` for messages: as `display` when it parses, else with its password hidden.
    public static func displayed(_ url: String) -> String {
        (try? PostgresAddress(parsing: url))?.display ?? withoutPassword(url)
    }

    /// `url` with anything between `:` and `@` after the user replaced by `***`.
    static func withoutPassword(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
        let credentials = url[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }
}
