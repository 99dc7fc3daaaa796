import AmalgamCore
import AmalgamEval
import AmalgamModels
import AmalgamTokenizer
import Foundation

/// `amalgam-bench eval --model DIR --task TASK.jsonl`: multiple-choice evaluation examples/s of Amalgam beside
/// lm-evaluation-harness (HFLM, transformers f32, same threads) on the same examples, in the same run.
enum EvalBenchmark {
    static let summary = "multiple-choice eval examples/s beside lm-evaluation-harness (HFLM)"

    static func run(_ arguments: [String]) throws {
        let a = try BenchArguments(arguments, options: ["model", "task", "limit", "batch-size"], flags: ["no-reference"])
        guard let model = a["model"], let taskPath = a["task"] else {
            throw BenchError("usage: amalgam-bench eval --model DIR --task TASK.jsonl [--limit 50] [--batch-size 16] [--no-reference]")
        }
        let limit = try a.int("limit", 50), batchSize = try a.int("batch-size", 16)
        let threads = prepareThreads()
        var task = try EvalTask(contentsOf: taskPath)
        guard task.spec.kind == .multipleChoice else { throw BenchError("\(taskPath): the benchmark takes a multiple_choice task") }
        // the first `limit` examples of the evaluation split, as the reference script takes them
        let chosen = Set(task.evaluationExamples().prefix(limit).map(\.id))
        task.examples = task.examples.filter { $0.split != task.spec.evalSplit || chosen.contains($0.id) }
        let lm = try LlamaModel(folder: model)
        let tokenizer = try Tokenizer(contentsOf: model)
        let evaluator = Evaluator(model: lm, tokenizer: tokenizer, options: EvaluationOptions(batchSize: batchSize))
        var warm = task
        warm.examples = Array(task.examples.filter { $0.split == task.spec.evalSplit }.prefix(1))
        _ = try evaluator.scores(task: warm)
        let start = Date()
        let results = try evaluator.scores(task: task)
        let seconds = Date().timeIntervalSince(start)
        let ours = Double(results.count) / seconds
        print("eval: \(task.spec.name), \(results.count) examples, batch size \(batchSize), \(threads) threads")
        print(String(format: "  amalgam:  %.2f s, %.2f examples/s, peak RSS %.0f MB", seconds, ours, peakMemoryMB()))
        guard !a.has("no-reference") else { return }
        do {
            let json = try runReference("scripts/bench/eval_lmeval.py", ["--model", model, "--task", taskPath, "--limit", "\(limit)",
                                                                         "--threads", "\(threads)", "--batch-size", "\(batchSize)"])
            let rate = try referenceNumber(json, "examples_per_s")
            print(String(format: "  lm-eval:  %.2f s, %.2f examples/s, peak RSS %.0f MB (HFLM, transformers f32, torch %@)",
                         json["seconds"]?.doubleValue ?? 0, rate, Double(json["peak_rss_bytes"]?.intValue ?? 0) / 1_048_576,
                         json["torch"]?.stringValue ?? "?"))
            print(String(format: "  ratio:    %.2f× lm-eval's examples/s", ours / rate))
        } catch {
            print("  lm-eval:  \(error) (needs the reference environment with lm_eval: scripts/refenv.sh)")
        }
    }
}
