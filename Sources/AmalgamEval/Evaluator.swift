import AmalgamCore
import Foundation

/// How a run goes: batching, how many examples, which seed.
public struct EvaluationOptions: Sendable {
    /// Examples whose sequences are scored in one call to the model (all choices of an example go together).
    public var batchSize: Int
    /// Evaluate at most this many examples (overrides the task header's `limit`).
    public var limit: Int?
    /// Seed of few-shot draws and of the `limit` sample (overrides the header's `seed`).
    public var seed: UInt64?
    /// Called after each batch with (examples done, examples in all).
    public var progress: (@Sendable (Int, Int) -> Void)?

    public init(batchSize: Int = 16, limit: Int? = nil, seed: UInt64? = nil, progress: (@Sendable (Int, Int) -> Void)? = nil) {
        self.batchSize = max(1, batchSize)
        self.limit = limit
        self.seed = seed
        self.progress = progress
    }
}

/// The result of one example.
public struct ExampleResult: Sendable {
    public var id: String
    /// One score in [0, 1] for search: `acc` (multiple choice), `exact_match` (generation), or the
    /// geometric-mean token probability exp(log-likelihood / tokens) (language modelling).
    public var score: Double
    /// The per-example values the summary aggregates, by metric name.
    public var values: [String: Double]
    /// The JSONL record written for the example (id, scores, prediction, gold, log-likelihoods…).
    public var record: JSONObject
}

/// Runs tasks on a model the way lm-evaluation-harness does (see README "Evaluation").
public struct Evaluator: Sendable {
    public let model: any EvaluableModel
    public let tokenizer: any TextTokenizer
    /// Used by tasks with `"chat_template": true`; such a task fails without one.
    public let formatter: (any PromptFormatter)?
    public var options: EvaluationOptions

    public init(model: any EvaluableModel, tokenizer: any TextTokenizer, formatter: (any PromptFormatter)? = nil,
                options: EvaluationOptions = EvaluationOptions()) {
        self.model = model
        self.tokenizer = tokenizer
        self.formatter = formatter
        self.options = options
    }

    /// One result per evaluated example, in file order; the same bytes for the same model, task and options.
    public func scores(task: EvalTask) throws(EvalError) -> [ExampleResult] {
        let examples = task.evaluationExamples(limit: options.limit, seed: options.seed)
        switch task.spec.kind {
        case .multipleChoice: return try multipleChoice(task, examples)
        case .generation: return try generation(task, examples)
        case .languageModeling: return try languageModeling(task, examples)
        }
    }

    /// Scores the task and aggregates its metrics.
    public func evaluate(task: EvalTask) throws(EvalError) -> TaskReport {
        let results = try scores(task: task)
        return TaskReport(task: task, seed: options.seed ?? task.spec.seed, results: results)
    }

    // MARK: prompts

    /// The text an example's continuation (choice or generation) follows: description, few-shot
    /// examples and the example's context or input; empty for a document.
    public func promptText(for example: TaskExample, in task: EvalTask) throws(EvalError) -> String {
        switch example.content {
        case let .multipleChoice(context, _, _): return try prompt(task, example, query: context)
        case let .generation(input, _, _): return try prompt(task, example, query: input)
        case .document: return ""
        }
    }

    /// The text before the query's continuation: description, few-shot examples each followed by the
    /// few-shot delimiter, then the query (lm-eval's `fewshot_context`), through the chat template when
    /// the task asks for it.
    func prompt(_ task: EvalTask, _ example: TaskExample, query: String) throws(EvalError) -> String {
        let spec = task.spec
        var text = spec.description
        for shot in task.fewshotExamples(for: example, seed: options.seed) {
            switch shot.content {
            case let .multipleChoice(context, choices, gold): text += context + spec.targetDelimiter + choices[gold]
            case let .generation(input, target, _): text += input + spec.targetDelimiter + target
            case .document: break
            }
            text += spec.fewshotDelimiter
        }
        text += query
        guard spec.chatTemplate else { return text }
        guard let formatter else {
            throw .unsupported(task: spec.name, reason: "the task sets \"chat_template\": true but no chat template was given; remove the key or evaluate with a model whose chat template Amalgam can apply")
        }
        do { return try formatter.userTurn(text) } catch {
            throw .unsupported(task: spec.name, reason: "the chat template failed: \(error)")
        }
    }

    func run<T>(_ task: EvalTask, _ id: String, _ body: () throws -> T) throws(EvalError) -> T {
        do { return try body() } catch let error as EvalError { throw error } catch {
            throw .model(task: task.spec.name, example: id, reason: "\(error)")
        }
    }

    func batches(_ count: Int) -> [Range<Int>] {
        stride(from: 0, to: count, by: options.batchSize).map { $0..<min($0 + options.batchSize, count) }
    }

    // MARK: multiple choice

    func multipleChoice(_ task: EvalTask, _ examples: [TaskExample]) throws(EvalError) -> [ExampleResult] {
        let maxLength = model.contextLength
        // With a chat template the choice follows the assistant prompt directly (lm-eval drops the delimiter).
        let delimiter = task.spec.chatTemplate ? "" : task.spec.targetDelimiter
        var results: [ExampleResult] = []
        for range in batches(examples.count) {
            var requests: [[LogLikelihoodRequest]] = []
            for example in examples[range] {
                guard case let .multipleChoice(context, choices, _) = example.content else { continue }
                let prefix = try prompt(task, example, query: context)
                requests.append(choices.map { LogLikelihoodRequest.pair(prefix, delimiter + $0, tokenizer) })
            }
            let flat = requests.flatMap { $0 }
            let lp = try run(task, examples[range.lowerBound].id) { try model.tokenLogProbabilities(flat.map { $0.sequence(maxLength: maxLength) }) }
            var next = 0
            for (example, group) in zip(examples[range], requests) {
                guard case let .multipleChoice(_, choices, gold) = example.content else { continue }
                let lls = group.enumerated().map { j, r in r.logLikelihood(fromTokenLogProbabilities: lp[next + j]) }
                next += group.count
                let m = MultipleChoiceMetrics.score(logLikelihoods: lls, choices: choices, gold: gold)
                var record = JSONObject()
                record["id"] = .string(example.id)
                record["score"] = .double(m.acc)
                record["acc"] = .double(m.acc)
                record["acc_norm"] = .double(m.accNorm)
                record["prediction"] = .int(m.prediction)
                record["prediction_norm"] = .int(m.predictionNorm)
                record["gold"] = .int(gold)
                record["loglikelihoods"] = .array(lls.map { .double($0) })
                record["continuation_tokens"] = .array(group.map { .int($0.continuation.count) })
                results.append(ExampleResult(id: example.id, score: m.acc, values: ["acc": m.acc, "acc_norm": m.accNorm], record: record))
            }
            options.progress?(results.count, examples.count)
        }
        return results
    }

    // MARK: generation

    func generation(_ task: EvalTask, _ examples: [TaskExample]) throws(EvalError) -> [ExampleResult] {
        let rule = task.spec.answer
        var results: [ExampleResult] = []
        for example in examples {
            guard case let .generation(input, _, gold) = example.content else { continue }
            let text = try prompt(task, example, query: input)
            var ids = tokenizer.tokenIds(text)
            // lm-eval keeps the last max_length − max_gen_toks tokens of the context.
            let room = max(1, model.contextLength - rule.maxTokens)
            if ids.count > room { ids = Array(ids.suffix(room)) }
            let tokenizer = self.tokenizer
            let stops = rule.stop.filter { !$0.isEmpty }
            let generated = try run(task, example.id) {
                try model.greedyContinuation(of: ids, maxTokens: rule.maxTokens) { tokens in
                    let t = tokenizer.text(of: tokens)
                    return stops.contains { t.contains($0) }
                }
            }
            let completion = AnswerExtraction.truncate(tokenizer.text(of: generated), at: rule.stop)
            let extracted = AnswerExtraction.extract(completion, rule: rule) ?? AnswerExtraction.invalid
            let em = AnswerExtraction.exactMatch(prediction: extracted, gold: gold, rule: rule)
            var record = JSONObject()
            record["id"] = .string(example.id)
            record["score"] = .double(em)
            record["exact_match"] = .double(em)
            record["prediction"] = .string(extracted)
            record["gold"] = .string(gold)
            record["completion"] = .string(completion)
            record["prompt_tokens"] = .int(ids.count)
            record["generated_tokens"] = .int(generated.count)
            results.append(ExampleResult(id: example.id, score: em, values: ["exact_match": em], record: record))
            options.progress?(results.count, examples.count)
        }
        return results
    }

    // MARK: language modelling

    func languageModeling(_ task: EvalTask, _ examples: [TaskExample]) throws(EvalError) -> [ExampleResult] {
        let maxLength = task.spec.maxLength ?? model.contextLength
        guard let prefix = tokenizer.prefixTokenId else {
            throw .unsupported(task: task.spec.name, reason: "the tokenizer has neither a BOS nor an EOS token to start documents with (lm-eval's prefix token)")
        }
        var results: [ExampleResult] = []
        for range in batches(examples.count) {
            var documents: [(example: TaskExample, text: String, tokens: Int, windows: [LogLikelihoodRequest])] = []
            for example in examples[range] {
                guard case let .document(text) = example.content else { continue }
                let ids = tokenizer.tokenIds(text)
                documents.append((example, text, ids.count, LogLikelihoodRequests.rollingWindows(ids, prefixToken: prefix, maxLength: maxLength)))
            }
            let flat = documents.flatMap(\.windows)
            let lp = try run(task, examples[range.lowerBound].id) { try model.tokenLogProbabilities(flat.map { $0.sequence(maxLength: maxLength) }) }
            var next = 0
            for d in documents {
                var ll = 0.0
                for w in d.windows {
                    ll += w.logLikelihood(fromTokenLogProbabilities: lp[next])
                    next += 1
                }
                let words = DocumentCounts.words(d.text), bytes = DocumentCounts.bytes(d.text)
                let score = d.tokens > 0 ? Foundation.exp(ll / Double(d.tokens)) : 0
                var record = JSONObject()
                record["id"] = .string(d.example.id)
                record["score"] = .double(score)
                record["loglikelihood"] = .double(ll)
                record["tokens"] = .int(d.tokens)
                record["words"] = .int(words)
                record["bytes"] = .int(bytes)
                record["windows"] = .int(d.windows.count)
                record["token_perplexity"] = .double(Foundation.exp(-ll / Double(max(d.tokens, 1))))
                record["bits_per_byte"] = .double(-ll / Double(bytes) / Foundation.log(2))
                results.append(ExampleResult(id: d.example.id, score: score,
                                             values: ["loglikelihood": ll, "tokens": Double(d.tokens), "words": Double(words), "bytes": Double(bytes)],
                                             record: record))
            }
            options.progress?(results.count, examples.count)
        }
        return results
    }
}

extension LogLikelihoodRequest {
    /// lm-eval's `_encode_pair` of a context and continuation.
    static func pair(_ context: String, _ continuation: String, _ tokenizer: any TextTokenizer) -> LogLikelihoodRequest {
        LogLikelihoodRequests.pair(context: context, continuation: continuation, tokenizer: tokenizer)
    }
}
