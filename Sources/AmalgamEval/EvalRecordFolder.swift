import AmalgamCore
import Foundation

/// The output folder of `amalgam eval --out`, read back: the summary of each task it holds
/// (`TASK.summary.json`, as `TaskReport.summaryJSON` writes it), in task-name order. The per-example
/// records (`TASK.jsonl`) are read by `PairedComparison`.
public struct EvalRecordFolder: Sendable {
    /// One metric of a task: its value over the examples and its standard error.
    public struct Metric: Sendable, Equatable {
        public var name: String
        public var value: Double
        public var stderr: Double?
    }

    /// One task's summary.
    public struct Task: Sendable {
        public var name: String
        public var kind: TaskKind
        /// Examples evaluated.
        public var count: Int
        /// In the order the summary lists them.
        public var metrics: [Metric]

        /// The metric `PairedComparison` compares by default for this kind (bits per byte, acc, exact_match).
        public var headline: Metric? {
            let name = PairedComparison.defaultMetric(kind).name
            return metrics.first { $0.name == name }
        }
    }

    /// The folder.
    public let path: String
    /// Its tasks, by name.
    public let tasks: [Task]

    /// Whether `path` is a folder holding at least one `TASK.summary.json`.
    public static func holdsRecords(_ path: String) -> Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).contains { $0.hasSuffix(".summary.json") }
    }

    /// Reads every `TASK.summary.json` in `path`; fails naming the file that is not one.
    public init(path: String) throws(EvalError) {
        self.path = path
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else {
            throw .file(path: path, reason: "cannot list the folder; give an output folder of `amalgam eval` (its --out)")
        }
        var tasks: [Task] = []
        for file in names.filter({ $0.hasSuffix(".summary.json") }).sorted() {
            let summaryPath = (path as NSString).appendingPathComponent(file)
            let json = try JSONValue.read(contentsOf: summaryPath, error: EvalError.json)
            guard let name = json["task"]?.stringValue, let kindName = json["kind"]?.stringValue, let kind = TaskKind(rawValue: kindName),
                  let count = json["n"]?.intValue, let metrics = json["metrics"]?.objectValue else {
                throw .file(path: summaryPath, reason: "lacks \"task\", \"kind\", \"n\" or \"metrics\"; was it written by `amalgam eval`?")
            }
            tasks.append(Task(name: name, kind: kind, count: count, metrics: metrics.compactMap { entry in
                entry.value["value"]?.doubleValue.map { Metric(name: entry.key, value: $0, stderr: entry.value["stderr"]?.doubleValue) }
            }))
        }
        guard !tasks.isEmpty else {
            throw .file(path: path, reason: "holds no TASK.summary.json; give an output folder of `amalgam eval` (its --out)")
        }
        self.tasks = tasks
    }
}
