import AmalgamCore
import Foundation

/// Two models compared example by example on one task, from the records `amalgam eval` wrote for each.
///
/// When both models read the same examples, the spread between examples (some passages are simply harder)
/// cancels in the per-example differences, so their mean and standard error tell the models apart far
/// better than the two separate means and their stderrs do.
public struct PairedComparison: Sendable, Equatable {
    public let task: String
    /// The per-example value compared (a key of each record).
    public let metric: String
    /// True for losses such as bits per byte, false for accuracies.
    public let lowerIsBetter: Bool
    /// Examples present in both folders (the two record files must hold the same ids).
    public let count: Int
    public let meanA: Double
    public let meanB: Double
    /// Mean of B − A over the examples, and its standard error (sample standard deviation / √n).
    public let difference: Double
    public let stderr: Double?
    /// Examples where B is better, where A is, and where they are equal.
    public let betterB: Int
    public let betterA: Int
    public let ties: Int

    /// The metric compared by default for a task kind: bits per byte of each document (lower is better),
    /// `acc`, `exact_match`.
    public static func defaultMetric(_ kind: TaskKind) -> (name: String, lowerIsBetter: Bool) {
        switch kind {
        case .languageModeling: return ("bits_per_byte", true)
        case .multipleChoice: return ("acc", false)
        case .generation: return ("exact_match", false)
        }
    }

    /// Compares paired values `a[i]` and `b[i]`.
    public init(task: String, metric: String, lowerIsBetter: Bool, a: [Double], b: [Double]) {
        precondition(a.count == b.count, "paired values must have the same count")
        self.task = task
        self.metric = metric
        self.lowerIsBetter = lowerIsBetter
        count = a.count
        let n = Double(max(a.count, 1))
        meanA = a.reduce(0, +) / n
        meanB = b.reduce(0, +) / n
        let d = Statistics.meanAndStderr(zip(b, a).map { $0 - $1 })
        difference = d.mean
        stderr = d.stderr
        var better = 0, worse = 0, equal = 0
        for (x, y) in zip(a, b) {
            if x == y { equal += 1 } else if (y < x) == lowerIsBetter { better += 1 } else { worse += 1 }
        }
        betterB = better
        betterA = worse
        ties = equal
    }

    /// Compares the tasks evaluated in both `folderA` and `folderB` (each `TASK.summary.json` with its
    /// `TASK.jsonl`), in name order; `metric` overrides each task kind's default. Fails when no task is in
    /// both, or when the two record files of a task do not hold the same example ids (a different `--limit`
    /// or `--seed`), naming the first id missing.
    public static func compare(folderA: String, folderB: String, metric: String? = nil) throws(EvalError) -> [PairedComparison] {
        func summaries(_ folder: String) throws(EvalError) -> [String] {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
                throw .file(path: folder, reason: "cannot list the folder; give an output folder of `amalgam eval` (its --out)")
            }
            return names.filter { $0.hasSuffix(".summary.json") }.map { String($0.dropLast(".summary.json".count)) }
        }
        let common = Set(try summaries(folderA)).intersection(try summaries(folderB)).sorted()
        guard !common.isEmpty else {
            throw .file(path: folderB, reason: "no task evaluated in both it and \(folderA) (no TASK.summary.json in common)")
        }
        var out: [PairedComparison] = []
        for task in common {
            let summaryPath = (folderA as NSString).appendingPathComponent(task + ".summary.json")
            let summary = try JSONValue.read(contentsOf: summaryPath, error: EvalError.json)
            guard let kindName = summary["kind"]?.stringValue, let kind = TaskKind(rawValue: kindName) else {
                throw .file(path: summaryPath, reason: "no known \"kind\"; was it written by `amalgam eval`?")
            }
            let chosen = metric.map { name in (name: name, lowerIsBetter: lowerIsBetterByName(name)) } ?? defaultMetric(kind)
            let a = try values(folder: folderA, task: task, metric: chosen.name)
            let b = try values(folder: folderB, task: task, metric: chosen.name)
            let pathB = (folderB as NSString).appendingPathComponent(task + ".jsonl")
            let byID = Dictionary(b.map { ($0.id, $0.value) }, uniquingKeysWith: { first, _ in first })
            var pairedA: [Double] = [], pairedB: [Double] = []
            for (id, x) in a {
                guard let y = byID[id] else {
                    throw .file(path: pathB, reason: "has no record for example '\(id)' of \(folderA); evaluate both models with the same --limit and --seed")
                }
                pairedA.append(x)
                pairedB.append(y)
            }
            guard a.count == b.count else {
                throw .file(path: pathB, reason: "holds \(b.count) records, \((folderA as NSString).appendingPathComponent(task + ".jsonl")) \(a.count); evaluate both models with the same --limit and --seed")
            }
            out.append(PairedComparison(task: task, metric: chosen.name, lowerIsBetter: chosen.lowerIsBetter, a: pairedA, b: pairedB))
        }
        return out
    }

    /// Losses and perplexities go down, everything else up.
    static func lowerIsBetterByName(_ name: String) -> Bool {
        name == "bits_per_byte" || name.hasSuffix("perplexity") || name == "loss"
    }

    /// `(id, record[metric])` of each line of `folder/task.jsonl`, in file order.
    static func values(folder: String, task: String, metric: String) throws(EvalError) -> [(id: String, value: Double)] {
        let path = (folder as NSString).appendingPathComponent(task + ".jsonl")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw .file(path: path, reason: "cannot read it") }
        var out: [(id: String, value: Double)] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let record: JSONValue
            do { record = try JSONValue.parse(String(line)) } catch { throw .task(path: path, line: i + 1, key: nil, reason: "is not JSON: \(error)") }
            guard let id = record["id"]?.stringValue else { throw .task(path: path, line: i + 1, key: "id", reason: "missing") }
            guard let v = record[metric]?.doubleValue else {
                let keys = record.objectValue.map { $0.keys.joined(separator: ", ") } ?? ""
                throw .task(path: path, line: i + 1, key: metric, reason: "missing; the records hold \(keys)")
            }
            out.append((id, v))
        }
        return out
    }
}
