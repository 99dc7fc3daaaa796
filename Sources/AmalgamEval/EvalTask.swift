import AmalgamCore
import Foundation

/// The three kinds of task, named as the task file names them.
public enum TaskKind: String, Sendable, CaseIterable {
    /// Pick the choice with the highest log-likelihood given the context (lm-eval's `multiple_choice`).
    case multipleChoice = "multiple_choice"
    /// Greedy generation, an answer extracted by a regex and compared exactly (lm-eval's `generate_until`).
    case generation
    /// Log-likelihood of whole documents in rolling windows (lm-eval's `loglikelihood_rolling`).
    case languageModeling = "language_modeling"
}

/// How the answer of a generation task is found and compared (lm-eval's regex filter + `exact_match`).
public struct AnswerRule: Sendable, Equatable {
    /// Generation stops as soon as the text contains one of these (lm-eval's `until`); the text is cut there.
    public var stop: [String]
    /// Tokens generated at most (lm-eval's `max_gen_toks`).
    public var maxTokens: Int
    /// The regex whose first capture group (or whole match when it has none) is the answer.
    public var answerRegex: String
    /// Which match counts when there are several: the first or the last.
    public var takeLast: Bool
    /// Regexes removed from both prediction and gold before comparing (lm-eval's `regexes_to_ignore`).
    public var ignorePatterns: [String]
    /// Compare case-insensitively.
    public var ignoreCase: Bool

    /// GSM8K's settings in lm-eval (strict-match filter, exact_match with its ignore list).
    public static let gsm8k = AnswerRule(stop: ["Question:", "\n\n"], maxTokens: 256, answerRegex: "#### (\\-?[0-9\\.\\,]+)",
                                         takeLast: false, ignorePatterns: [",", "\\$", "(?s).*#### ", "\\.$"], ignoreCase: true)
}

/// A task file's header: what kind of task, how prompts are built, which examples run.
public struct TaskSpec: Sendable, Equatable {
    public var name: String
    public var kind: TaskKind
    /// Text put before the few-shot examples (lm-eval's `description`).
    public var description: String
    /// Between a context and its continuation (lm-eval's `target_delimiter`, default " ").
    public var targetDelimiter: String
    /// Between few-shot examples and before the query (lm-eval's `fewshot_delimiter`, default "\n\n").
    public var fewshotDelimiter: String
    /// Few-shot examples put before each query.
    public var numFewshot: Int
    /// The split few-shot examples are drawn from.
    public var fewshotSplit: String
    /// The split that is evaluated.
    public var evalSplit: String
    /// Evaluate at most this many examples (a seeded sample, kept in file order).
    public var limit: Int?
    /// Seed of the few-shot draws and of the `limit` sample.
    public var seed: UInt64
    /// Wrap each prompt in the model's chat template (as one user turn with the generation prompt).
    public var chatTemplate: Bool
    /// Generation tasks: stop strings, answer regex, comparison.
    public var answer: AnswerRule
    /// Language modelling: window length in tokens (default: the model's context length).
    public var maxLength: Int?
}

/// One example of a task file.
public struct TaskExample: Sendable, Equatable {
    /// What is scored.
    public enum Content: Sendable, Equatable {
        /// A context, the choices (continuations) and the index of the right one.
        case multipleChoice(context: String, choices: [String], gold: Int)
        /// A prompt, its reference completion (shown in few-shot examples) and the gold answer.
        case generation(input: String, target: String, answer: String)
        /// A document scored as a whole.
        case document(text: String)
    }

    public var id: String
    public var split: String
    /// The line of the task file it was read from (1-based).
    public var line: Int
    public var content: Content
}

/// A task file: a header line and one example per line (JSONL). See README "Evaluation".
public struct EvalTask: Sendable, Equatable {
    public var path: String
    public var spec: TaskSpec
    public var examples: [TaskExample]

    /// Reads and checks a task file.
    public init(contentsOf path: String) throws(EvalError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .file(path: path, reason: "cannot read the task file (missing or unreadable)")
        }
        try self.init(text: String(decoding: data, as: UTF8.self), path: path)
    }

    /// Parses task-file text; `path` names it in errors.
    public init(text: String, path: String) throws(EvalError) {
        self.path = path
        var spec: TaskSpec?
        var examples: [TaskExample] = []
        var seenIds: [String: Int] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = index + 1
            let trimmed = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let value: JSONValue
            do { value = try JSONValue.parse(trimmed) } catch {
                throw .task(path: path, line: line, key: nil, reason: "not valid JSON (\(error)); each line holds one JSON object")
            }
            guard let object = value.objectValue else {
                throw .task(path: path, line: line, key: nil, reason: "expected a JSON object, got \(value.compactText().prefix(40))")
            }
            let fields = ConfigMapping<TaskLineError>(json: object, path: path)
            let example: TaskExample
            do throws(TaskLineError) {
                guard let current = spec else {
                    spec = try TaskSpec(header: fields)
                    continue
                }
                example = try TaskExample(fields, line: line, spec: current)
            } catch {
                throw error.at(line: line)
            }
            if let first = seenIds[example.id] {
                throw .task(path: path, line: line, key: "id", reason: "'\(example.id)' is already the id of line \(first); ids must be unique")
            }
            seenIds[example.id] = line
            examples.append(example)
        }
        guard let spec else {
            throw .task(path: path, line: 1, key: nil, reason: "empty task file; the first line must be the header ({\"task\": NAME, \"kind\": …})")
        }
        self.spec = spec
        self.examples = examples
        guard examples.contains(where: { $0.split == spec.evalSplit }) else {
            throw .task(path: path, line: 1, key: "eval_split", reason: "no example has split '\(spec.evalSplit)'; set \"split\" on the examples or change eval_split")
        }
        if spec.numFewshot > 0 {
            let pool = examples.filter { $0.split == spec.fewshotSplit }.count
            let needed = spec.numFewshot + (spec.fewshotSplit == spec.evalSplit ? 1 : 0)
            guard pool >= needed else {
                throw .task(path: path, line: 1, key: "num_fewshot", reason: "\(spec.numFewshot) few-shot examples asked but split '\(spec.fewshotSplit)' has \(pool) (needs \(needed)); add examples or lower num_fewshot")
            }
        }
    }

    /// The examples evaluated: those of the evaluation split, or a seeded sample of `limit` of them in
    /// file order. `limit` and `seed` override the header's.
    public func evaluationExamples(limit: Int? = nil, seed: UInt64? = nil) -> [TaskExample] {
        let all = examples.filter { $0.split == spec.evalSplit }
        guard let n = limit ?? spec.limit, n < all.count else { return all }
        var random = SeededGenerator(seed: seed ?? spec.seed, stream: 1)
        var order = Array(all.indices)
        for i in 0..<n { order.swapAt(i, i + random.integer(below: order.count - i)) }
        return order[0..<n].sorted().map { all[$0] }
    }

    /// The few-shot examples shown before `example`: `numFewshot` distinct draws from the few-shot split
    /// (never the example itself), from a stream of the seed keyed by the example's line so the choice
    /// does not depend on `limit` or batching.
    public func fewshotExamples(for example: TaskExample, seed: UInt64? = nil) -> [TaskExample] {
        guard spec.numFewshot > 0 else { return [] }
        var pool = examples.filter { $0.split == spec.fewshotSplit && $0.id != example.id }
        var random = SeededGenerator(seed: SeedDerivation.seed(seed ?? spec.seed, stream: example.line), stream: 2)
        let k = min(spec.numFewshot, pool.count)
        for i in 0..<k { pool.swapAt(i, i + random.integer(below: pool.count - i)) }
        return Array(pool[0..<k])
    }
}

/// An error of one line of a task file, read through the configuration reader; `at(line:)` gives it its line.
struct TaskLineError: ConfigErrorReporting {
    let path: String
    let key: String
    let reason: String

    static func config(path: String, key: String, reason: String) -> TaskLineError { TaskLineError(path: path, key: key, reason: reason) }

    func at(line: Int) -> EvalError { .task(path: path, line: line, key: key == "(document)" ? nil : key, reason: reason) }
}

extension ConfigMapping where E == TaskLineError {
    func regex(_ key: String, _ pattern: String) throws(TaskLineError) {
        do { _ = try ScalarRegex(pattern, dialect: .python) } catch {
            throw fail(key, "'\(pattern)' is not a valid regular expression: \(error)")
        }
    }
}

extension TaskSpec {
    static let headerKeys = ["task", "kind", "description", "target_delimiter", "fewshot_delimiter", "num_fewshot", "fewshot_split",
                             "eval_split", "limit", "seed", "chat_template", "stop", "max_tokens", "answer_regex", "answer_match",
                             "ignore_patterns", "ignore_case", "max_length", "metadata"]

    init(header r: ConfigMapping<TaskLineError>) throws(TaskLineError) {
        guard r.contains("task") else {
            throw r.fail("task", "the first line must be the task header, naming the task: {\"task\": NAME, \"kind\": \(TaskKind.allCases.map(\.rawValue).joined(separator: "|")), …}")
        }
        try r.rejectUnknown(TaskSpec.headerKeys, in: "the task header")
        name = try r.require("task", "a string").string()
        guard !name.isEmpty, !name.contains("/") else { throw r.fail("task", "the name must be non-empty and hold no '/' (it names output files)") }
        let kindName = try r.require("kind", "a string").string()
        guard let k = TaskKind(rawValue: kindName) else {
            throw r.fail("kind", "'\(kindName)' is not a task kind; use one of \(TaskKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        kind = k
        description = try r.string("description") ?? ""
        targetDelimiter = try r.string("target_delimiter") ?? " "
        fewshotDelimiter = try r.string("fewshot_delimiter") ?? "\n\n"
        numFewshot = try r.int("num_fewshot", minimum: 0) ?? 0
        fewshotSplit = try r.string("fewshot_split") ?? "train"
        evalSplit = try r.string("eval_split") ?? "test"
        limit = try r.int("limit", minimum: 1)
        seed = try r.uint64("seed") ?? 0
        chatTemplate = try r.bool("chat_template") ?? false
        let d = AnswerRule.gsm8k
        answer = AnswerRule(stop: try r.strings("stop") ?? d.stop, maxTokens: try r.int("max_tokens", minimum: 1) ?? d.maxTokens,
                            answerRegex: try r.string("answer_regex") ?? d.answerRegex, takeLast: false,
                            ignorePatterns: try r.strings("ignore_patterns") ?? d.ignorePatterns,
                            ignoreCase: try r.bool("ignore_case") ?? d.ignoreCase)
        let match = try r.string("answer_match") ?? "first"
        guard match == "first" || match == "last" else { throw r.fail("answer_match", "'\(match)' must be first or last") }
        answer.takeLast = match == "last"
        try r.regex("answer_regex", answer.answerRegex)
        for p in answer.ignorePatterns { try r.regex("ignore_patterns", p) }
        maxLength = try r.int("max_length", minimum: 2)
        if kind == .languageModeling && numFewshot > 0 {
            throw r.fail("num_fewshot", "language_modeling tasks score documents alone; remove num_fewshot")
        }
    }
}

extension TaskExample {
    init(_ r: ConfigMapping<TaskLineError>, line: Int, spec: TaskSpec) throws(TaskLineError) {
        let common = ["id", "split", "metadata"]
        guard let idValue = r.value("id") else { throw r.fail("id", "missing; every example needs an id (a string or an integer)") }
        if case .scalar(_, .string) = idValue.node {
            id = try idValue.string()
        } else if idValue.node.isNumeric, let i = try? idValue.int() {
            id = String(i)
        } else {
            throw r.fail("id", "expected a string or an integer, got \(idValue.node.found(.json))")
        }
        split = try r.string("split") ?? spec.evalSplit
        self.line = line
        switch spec.kind {
        case .multipleChoice:
            try r.rejectUnknown(common + ["context", "choices", "gold"], in: "a multiple_choice example")
            let choices = try r.require("choices", "an array of strings").strings(minimumCount: 2)
            let gold = try r.require("gold", "the index of the right choice").int(minimum: 0)
            guard gold < choices.count else { throw r.fail("gold", "\(gold) is out of range for \(choices.count) choices (0-based)") }
            content = .multipleChoice(context: try r.require("context", "a string").string(), choices: choices, gold: gold)
        case .generation:
            try r.rejectUnknown(common + ["input", "target", "answer"], in: "a generation example")
            let target = try r.require("target", "a string").string()
            let answer: String
            if r.contains("answer") {
                answer = try r.require("answer", "a string").string()
            } else {
                guard let a = AnswerExtraction.extract(target, rule: spec.answer) else {
                    throw r.fail("target", "answer_regex '\(spec.answer.answerRegex)' finds no answer in it; add \"answer\" or fix the target")
                }
                answer = a
            }
            content = .generation(input: try r.require("input", "a string").string(), target: target, answer: answer)
        case .languageModeling:
            try r.rejectUnknown(common + ["text"], in: "a language_modeling example")
            let text = try r.require("text", "a string").string()
            guard !text.isEmpty else { throw r.fail("text", "is empty; a document needs text") }
            content = .document(text: text)
        }
    }
}
