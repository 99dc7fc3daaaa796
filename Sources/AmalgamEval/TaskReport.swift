import AmalgamCore
import Foundation

/// A task's per-example results and the metrics aggregated over them.
public struct TaskReport: Sendable {
    public let taskName: String
    public let kind: TaskKind
    public let taskPath: String
    public let seed: UInt64
    public let numFewshot: Int
    public let results: [ExampleResult]
    /// Each metric's value over the examples with its standard error, in display order.
    public let metrics: [MetricValue]

    public init(task: EvalTask, seed: UInt64, results: [ExampleResult]) {
        taskName = task.spec.name
        kind = task.spec.kind
        taskPath = task.path
        self.seed = seed
        numFewshot = task.spec.numFewshot
        self.results = results
        metrics = TaskReport.aggregate(kind, results)
    }

    /// Means with lm-eval's standard error for per-example metrics; for language modelling the
    /// log-likelihood per document (mean ± stderr) and the corpus-level ratios lm-eval reports
    /// (Σ log-likelihood over Σ tokens, words or bytes), their errors by the delta method.
    static func aggregate(_ kind: TaskKind, _ results: [ExampleResult]) -> [MetricValue] {
        func mean(_ name: String) -> MetricValue {
            let s = Statistics.meanAndStderr(results.map { $0.values[name] ?? .nan })
            return MetricValue(name: name, value: s.mean, stderr: s.stderr)
        }
        switch kind {
        case .multipleChoice: return [mean("acc"), mean("acc_norm")]
        case .generation: return [mean("exact_match")]
        case .languageModeling:
            let ll = results.map { $0.values["loglikelihood"]! }
            func perplexity(_ name: String, per unit: String) -> MetricValue {
                let r = Statistics.ratioAndStderr(ll, results.map { $0.values[unit]! })
                let value = Foundation.exp(-r.ratio)
                return MetricValue(name: name, value: value, stderr: r.stderr.map { $0 * value })
            }
            let perByte = Statistics.ratioAndStderr(ll, results.map { $0.values["bytes"]! })
            return [mean("loglikelihood"), perplexity("token_perplexity", per: "tokens"), perplexity("word_perplexity", per: "words"),
                    perplexity("byte_perplexity", per: "bytes"),
                    MetricValue(name: "bits_per_byte", value: -perByte.ratio / Foundation.log(2), stderr: perByte.stderr.map { $0 / Foundation.log(2) })]
        }
    }

    /// One JSON object per example, one per line.
    public func recordsJSONL() -> String {
        results.map { JSONValue.object($0.record).compactText() + "\n" }.joined()
    }

    /// The summary: task, number of examples, each metric's value and standard error.
    public func summaryJSON() -> JSONValue {
        var metricsObject = JSONObject()
        for m in metrics {
            metricsObject[m.name] = .object(JSONObject([("value", number(m.value)), ("stderr", m.stderr.map(number) ?? .null)]))
        }
        return .object(JSONObject([
            ("task", .string(taskName)), ("kind", .string(kind.rawValue)), ("path", .string(taskPath)),
            ("n", .int(results.count)), ("num_fewshot", .int(numFewshot)), ("seed", .int(Int(truncatingIfNeeded: seed))),
            ("metrics", .object(metricsObject)),
        ]))
    }

    private func number(_ x: Double) -> JSONValue { x.isFinite ? .double(x) : .null }

    /// Writes `NAME.jsonl` (the records) and `NAME.summary.json` into `directory` (made if missing), each
    /// under a temporary name renamed when complete.
    public func write(into directory: String) throws(EvalError) {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .file(path: directory, reason: "cannot create the output folder (\(error.localizedDescription))")
        }
        let base = (directory as NSString).appendingPathComponent(taskName)
        do {
            try writeFileAtomically(recordsJSONL(), to: base + ".jsonl")
            try writeFileAtomically(summaryJSON().pythonText(indent: 2, sortKeys: false) + "\n", to: base + ".summary.json")
        } catch { throw EvalError.wrap(error, path: base) }
    }
}
