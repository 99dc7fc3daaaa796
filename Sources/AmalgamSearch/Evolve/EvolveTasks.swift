import AmalgamEval
import Foundation

/// The tasks of an evolve run, loaded once: the training examples every candidate is scored on (one score
/// in [0, 1] per example, the evaluation harness's), and the test examples the best model is evaluated on.
public struct EvolveTasks: Sendable {
    public let entries: [EvolveTaskEntry]
    /// The tasks as their files define them (evaluated split: the header's `eval_split`).
    public let tasks: [EvalTask]
    /// The same tasks evaluating their training split.
    public let trainTasks: [EvalTask]
    /// Training examples scored per task.
    public let trainCounts: [Int]
    /// Examples per model call.
    public let batchSize: Int

    /// Loads the task files; fails when a task has no example in its training split or two share a name.
    public init(entries: [EvolveTaskEntry], batchSize: Int) throws(SearchError) {
        var tasks: [EvalTask] = [], train: [EvalTask] = [], counts: [Int] = []
        for entry in entries {
            let task: EvalTask
            do { task = try EvalTask(contentsOf: entry.path) } catch { throw .badData(path: entry.path, reason: error.description) }
            if let other = tasks.first(where: { $0.spec.name == task.spec.name }) {
                throw .badData(path: entry.path, reason: "its task name `\(task.spec.name)` is also that of \(other.path); the fitness names tasks, so rename one in its header")
            }
            var t = task
            t.spec.evalSplit = entry.trainSplit
            let n = t.evaluationExamples(limit: entry.trainExamples).count
            guard n > 0 else {
                throw .badData(path: entry.path, reason: "no example has split `\(entry.trainSplit)`; the search needs training examples (set `train_split`)")
            }
            tasks.append(task)
            train.append(t)
            counts.append(n)
        }
        self.entries = entries
        self.tasks = tasks
        trainTasks = train
        trainCounts = counts
        self.batchSize = batchSize
    }

    /// The tasks' names, in order.
    public var names: [String] { tasks.map(\.spec.name) }
    /// Training examples over all tasks (the columns of M2N2's score matrix).
    public var exampleCount: Int { trainCounts.reduce(0, +) }

    /// Per-example training scores of `model`, task after task.
    public func trainScores(model: any EvaluableModel, tokenizer: any TextTokenizer, formatter: (any PromptFormatter)?) throws(SearchError) -> [[Double]] {
        var out: [[Double]] = []
        for (entry, task) in zip(entries, trainTasks) {
            let evaluator = Evaluator(model: model, tokenizer: tokenizer, formatter: formatter,
                                      options: EvaluationOptions(batchSize: batchSize, limit: entry.trainExamples))
            do { out.append(try evaluator.scores(task: task).map(\.score)) } catch {
                throw .badData(path: entry.path, reason: "scoring the training split failed: \(error.description)")
            }
        }
        return out
    }

    /// Reports of `model` on each task's test split (its `eval_split`), `test_examples` at most.
    public func testReports(model: any EvaluableModel, tokenizer: any TextTokenizer, formatter: (any PromptFormatter)?) throws(SearchError) -> [TaskReport] {
        var out: [TaskReport] = []
        for (entry, task) in zip(entries, tasks) {
            let evaluator = Evaluator(model: model, tokenizer: tokenizer, formatter: formatter,
                                      options: EvaluationOptions(batchSize: batchSize, limit: entry.testExamples))
            do { out.append(try evaluator.evaluate(task: task)) } catch {
                throw .badData(path: entry.path, reason: "evaluating the test split failed: \(error.description)")
            }
        }
        return out
    }

    /// Mean score per task (by task name) of per-task scores.
    public func metrics(_ perTask: [[Double]]) -> [String: Double] {
        var m: [String: Double] = [:]
        for (name, scores) in zip(names, perTask) { m[name] = scores.isEmpty ? 0 : scores.reduce(0, +) / Double(scores.count) }
        return m
    }

    /// The fitness: Σ weight × mean score, in task order.
    public func fitness(_ perTask: [[Double]]) -> Double {
        var total = 0.0
        for (entry, scores) in zip(entries, perTask) where !scores.isEmpty {
            total += entry.weight * scores.reduce(0, +) / Double(scores.count)
        }
        return total
    }

    /// The fitness of one row of flat per-example scores (task after task).
    public func fitness<Row: Collection>(flat row: Row) -> Double where Row.Element == Float { fitness(split(row.map { Double($0) })) }

    /// Flat per-example scores cut back into tasks.
    public func split(_ flat: [Double]) -> [[Double]] {
        var out: [[Double]] = [], start = 0
        for n in trainCounts {
            out.append(Array(flat[start..<min(flat.count, start + n)]))
            start += n
        }
        return out
    }

    /// The fitness weights by task name (CMA-ES's `WeightedFitness`).
    public var weightedFitness: WeightedFitness {
        WeightedFitness(Dictionary(uniqueKeysWithValues: zip(names, entries.map(\.weight))))
    }
}

/// M2N2's scorer for checkpoints: the candidate (a mapped flat genome) loaded as a Llama-family model
/// without copying, scored on the training examples.
public struct CheckpointScorer: CandidateScorer {
    public typealias Store = CheckpointGenomeStore
    public let tasks: EvolveTasks
    /// The architecture (the first seed's `config.json`).
    public let config: EvolveArchitecture
    public let tokenizer: any TextTokenizer
    public let formatter: (any PromptFormatter)?

    public init(tasks: EvolveTasks, config: EvolveArchitecture, tokenizer: any TextTokenizer, formatter: (any PromptFormatter)?) {
        self.tasks = tasks
        self.config = config
        self.tokenizer = tokenizer
        self.formatter = formatter
    }

    public var exampleCount: Int { tasks.exampleCount }

    public func scoreCandidate(of store: CheckpointGenomeStore, into scores: UnsafeMutableBufferPointer<Float>) throws(SearchError) {
        let model = try config.model(weights: try store.candidateSource())
        let perTask = try tasks.trainScores(model: model, tokenizer: tokenizer, formatter: formatter)
        var j = 0
        for row in perTask {
            for s in row { scores[j] = Float(s); j += 1 }
        }
        guard j == scores.count else {
            throw .badData(path: tasks.entries.first?.path ?? "tasks", reason: "scored \(j) training examples, expected \(scores.count)")
        }
    }
}
