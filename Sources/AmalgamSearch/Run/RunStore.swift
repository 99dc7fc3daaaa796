import AmalgamCore
import Foundation

/// Where a resumable job keeps its state: its configuration, its step records and its blobs (optimiser
/// state, coefficients, generator state…), each step committed whole.
///
/// The contract (Run/README.md says it at length), the same for every backend:
/// - `commit(_:)` is atomic: after a kill, a crash or a failed commit, a reader sees the store exactly as
///   after the previous commit or exactly as after this one, never a mix of the two;
/// - `latestStep` and everything `blob`/`records` return are the last committed state: what a resume sees;
/// - `checkConfiguration` refuses a resume whose configuration differs, naming the keys that differ;
/// - large outputs (a merged model) are files written through `AtomicOutput`; `recordOutput` notes them.
///
/// `RunFolder` (SQLite, one folder per run) is the embedded implementation. A server backend (PostgreSQL,
/// many workers) implements the same calls over its own tables; the jobs see only this protocol.
public protocol RunStore: AnyObject {
    /// Where the run lives (a folder, or a store URL without credentials), for messages.
    var location: String { get }
    /// The kind of job the run belongs to (`dam`, `finetune`, `m2n2`, `evolve-cmaes`, …).
    var kind: String { get }

    /// The configuration the run was started with, if one was recorded.
    func configuration() throws(SearchError) -> RunConfiguration?
    /// Records the configuration (when none is recorded) or checks that `configuration` is the recorded
    /// one, throwing an error that names the differing keys and what to do.
    func checkConfiguration(_ configuration: RunConfiguration) throws(SearchError)

    /// The number of the last committed step; nil before the first.
    func latestStep() throws(SearchError) -> Int?
    /// The committed step records with numbers in `range`, in order.
    func records(in range: ClosedRange<Int>) throws(SearchError) -> [RunStep.Record]
    /// The committed bytes of blob `name`, if any.
    func blob(_ name: String) throws(SearchError) -> [UInt8]?
    /// Commits one step: its records, its blobs (replacing those of the same names) and its outputs, in
    /// one transaction.
    func commit(_ step: RunStep) throws(SearchError)
    /// The outputs recorded so far: name → path.
    func outputs() throws(SearchError) -> [String: String]
}

/// Everything one step of a job changes, committed together by `RunStore.commit`.
public struct RunStep: Sendable {
    /// A step's own figures (loss, gradient norm, …) as JSON text, kept for the run's history.
    public struct Record: Sendable, Equatable {
        /// The step's number (1 for the first).
        public var step: Int
        /// JSON text.
        public var json: String
        /// A record.
        public init(step: Int, json: String) {
            self.step = step
            self.json = json
        }
    }

    /// The step's number: the store's `latestStep` after the commit.
    public var number: Int
    /// Records of this step and of the steps since the last commit.
    public var records: [Record]
    /// Named blobs, replacing the stored ones of the same names.
    public var blobs: [String: [UInt8]]
    /// Outputs written (whole, through `AtomicOutput`) before this commit: name → path.
    public var outputs: [String: String]

    /// A step.
    public init(number: Int, records: [Record] = [], blobs: [String: [UInt8]] = [:], outputs: [String: String] = [:]) {
        self.number = number
        self.records = records
        self.blobs = blobs
        self.outputs = outputs
    }
}

/// A job's configuration as named values, in the job's own order, with a fingerprint: a resume with another
/// configuration is refused, naming what differs.
public struct RunConfiguration: Sendable, Equatable, Codable {
    /// Name and value (as text) of each setting.
    public var entries: [Entry]

    /// One setting.
    public struct Entry: Sendable, Equatable, Codable {
        /// The setting's name (a key path such as `m2n2.archive_size`).
        public var key: String
        /// Its value, as text.
        public var value: String
    }

    /// The configuration from `(key, value)` pairs.
    public init(_ entries: [(String, String)]) {
        self.entries = entries.map { Entry(key: $0.0, value: $0.1) }
    }

    /// The configuration of an `Encodable` value: each leaf of its JSON form (sorted keys) under its key path.
    public init<T: Encodable>(encoding value: T) throws(SearchError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let data = try? encoder.encode(value), let json = try? JSONValue.parse([UInt8](data)) else {
            throw .runFolder(path: "\(T.self)", reason: "the configuration cannot be encoded as JSON")
        }
        var out: [(String, String)] = []
        func walk(_ node: JSONValue, _ path: String) {
            if let object = node.objectValue {
                for (key, child) in object { walk(child, path.isEmpty ? key : path + "." + key) }
            } else if let array = node.arrayValue, !array.isEmpty, array.contains(where: { $0.objectValue != nil || $0.arrayValue != nil }) {
                for (i, child) in array.enumerated() { walk(child, path + "[\(i)]") }
            } else {
                out.append((path, node.compactText()))
            }
        }
        walk(json, "")
        self.init(out)
    }

    /// SHA-256 of the entries (key and value of each, in order): equal configurations, equal fingerprints.
    public var fingerprint: String {
        SHA256.hex(Array(entries.map { $0.key + "\u{1F}" + $0.value }.joined(separator: "\u{1E}").utf8))
    }

    /// The keys whose values differ from `recorded`'s (present in one only, or with another value), each with
    /// both values: `lr: 0.01 (run) → 0.02 (now)`.
    public func differences(from recorded: RunConfiguration) -> [String] {
        let mine = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        let theirs = Dictionary(recorded.entries.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        var keys: [String] = recorded.entries.map(\.key)
        for e in entries where theirs[e.key] == nil { keys.append(e.key) }
        return keys.compactMap { key in
            let was = theirs[key], now = mine[key]
            guard was != now else { return nil }
            return "\(key): \(was ?? "(absent)") in the run, \(now ?? "(absent)") now"
        }
    }
}

extension RunStore {
    /// The default check: records `configuration` when the run has none, else compares fingerprints and
    /// names what differs.
    public func refuseDifferent(_ configuration: RunConfiguration, recorded: RunConfiguration?) throws(SearchError) {
        guard let recorded, recorded.fingerprint != configuration.fingerprint else { return }
        let differences = configuration.differences(from: recorded)
        let shown = differences.prefix(5).joined(separator: "; ") + (differences.count > 5 ? "; and \(differences.count - 5) more" : "")
        throw .runFolder(path: location, reason: "was started with another configuration (\(shown.isEmpty ? "the order of the settings differs" : shown)); "
            + "resume it with the same settings, or start a new run in another folder")
    }
}

extension RunStep.Record {
    /// The record decoded as `T` (JSON; ±∞ and NaN written as strings), or nil when it is not one.
    public func decoded<T: Decodable>(as type: T.Type) -> T? {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try? decoder.decode(T.self, from: Data(json.utf8))
    }
}
