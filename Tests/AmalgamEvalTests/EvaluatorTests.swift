import AmalgamCore
import AmalgamEval
import AmalgamModels
import AmalgamTestSupport
import Foundation
import Testing

/// The evaluator on a tiny model: its metrics recomputed here by hand from the engine's raw token
/// log-probabilities, sequence by sequence.
@Suite struct EvaluatorTests {
    let model: LlamaModel
    let tokenizer = CharacterTokenizer()

    init() throws { model = try LlamaModel(folder: modelFixture("llama")) }

    /// log p(continuation | context) by scoring context + continuation alone.
    func logLikelihood(_ context: [Int], _ continuation: [Int]) throws -> Double {
        let lp = try model.score(TokenBatch([context + continuation]))[0].tokenLogProbabilities
        return lp.suffix(continuation.count).reduce(0) { $0 + Double($1) }
    }

    func task(_ lines: [String]) throws -> EvalTask { try EvalTask(text: lines.joined(separator: "\n"), path: "test.jsonl") }

    static let multipleChoice = [
        #"{"task": "mc", "kind": "multiple_choice"}"#,
        #"{"id": "q1", "context": "the cat sat on the", "choices": ["mat", "dog house", "a"], "gold": 0}"#,
        #"{"id": "q2", "context": "two plus two is", "choices": ["four", "five", "twenty two"], "gold": 2}"#,
        #"{"id": "q3", "context": "hello", "choices": ["world", "there"], "gold": 1}"#,
        #"{"id": "q4", "context": "where is it?", "choices": ["here", "there", "nowhere at all", "x"], "gold": 3}"#,
        #"{"id": "q5", "context": "a b c d", "choices": ["e", "f g"], "gold": 0}"#,
    ]

    @Test func multipleChoiceScoresEachChoiceGivenTheContextAndAppliesAccAndAccNorm() throws {
        let t = try task(Self.multipleChoice)
        let report = try Evaluator(model: model, tokenizer: tokenizer).evaluate(task: t)
        #expect(report.results.count == 5)
        var accs: [Double] = [], norms: [Double] = []
        for (example, result) in zip(t.examples, report.results) {
            guard case let .multipleChoice(context, choices, gold) = example.content else { Issue.record("kind"); continue }
            let lls = try choices.map { try logLikelihood(tokenizer.tokenIds(context), tokenizer.tokenIds(" " + $0)) }
            let recorded = result.record["loglikelihoods"]!.arrayValue!.map { $0.doubleValue! }
            for (a, b) in zip(lls, recorded) { #expect(abs(a - b) < 1e-4, "\(example.id): \(a) vs \(b)") }
            var best = 0, bestNorm = 0
            for i in lls.indices {
                if lls[i] > lls[best] { best = i }
                if lls[i] / Double(choices[i].count) > lls[bestNorm] / Double(choices[bestNorm].count) { bestNorm = i }
            }
            accs.append(best == gold ? 1 : 0)
            norms.append(bestNorm == gold ? 1 : 0)
            #expect(result.record["acc"]!.doubleValue! == accs.last!, "\(example.id) acc")
            #expect(result.record["acc_norm"]!.doubleValue! == norms.last!, "\(example.id) acc_norm")
            #expect(result.score == accs.last!)
        }
        let mean = accs.reduce(0, +) / 5
        let stderr = (accs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4 / 5).squareRoot()
        #expect(report.metrics.map(\.name) == ["acc", "acc_norm"])
        #expect(abs(report.metrics[0].value - mean) < 1e-12 && abs(report.metrics[0].stderr! - stderr) < 1e-12)
        #expect(abs(report.metrics[1].value - norms.reduce(0, +) / 5) < 1e-12)
    }

    @Test func theSameTaskGivesTheSameBytes() throws {
        let t = try task(Self.multipleChoice)
        let a = try Evaluator(model: model, tokenizer: tokenizer).evaluate(task: t)
        let b = try Evaluator(model: model, tokenizer: tokenizer).evaluate(task: t)
        #expect(a.recordsJSONL() == b.recordsJSONL())
        #expect(a.summaryJSON() == b.summaryJSON())
        // Another batch size packs the sequences differently; the numbers agree to rounding.
        let one = try Evaluator(model: model, tokenizer: tokenizer, options: EvaluationOptions(batchSize: 1)).evaluate(task: t)
        for (x, y) in zip(a.results, one.results) {
            let lx = x.record["loglikelihoods"]!.arrayValue!.map { $0.doubleValue! }, ly = y.record["loglikelihoods"]!.arrayValue!.map { $0.doubleValue! }
            for (p, q) in zip(lx, ly) { #expect(abs(p - q) < 1e-4) }
        }
    }

    @Test func documentsAreScoredInRollingWindowsWithBitsPerByteAndPerplexity() throws {
        let docs = ["the quick brown fox jumps over the lazy dog. the end.", "to be or not to be, that is the question:\nwhether tis nobler",
                    "short one"]
        var lines = [#"{"task": "lm", "kind": "language_modeling", "max_length": 16}"#]
        for (i, d) in docs.enumerated() {
            lines.append(JSONValue.object(JSONObject([("id", .int(i)), ("text", .string(d))])).compactText())
        }
        let report = try Evaluator(model: model, tokenizer: tokenizer, options: EvaluationOptions(batchSize: 2)).evaluate(task: try task(lines))
        var lls: [Double] = []
        for (d, result) in zip(docs, report.results) {
            let ids = tokenizer.tokenIds(d)
            // by hand: the first 16 tokens after the prefix token, then 16 more given the one before, then the
            // rest given as many preceding tokens as fit in 16 inputs
            var ll = 0.0
            var start = 0
            while start < ids.count {
                let end = min(start + 16, ids.count)
                let inputStart = start == 0 ? 0 : max(0, end - 17)
                let context = start == 0 ? [1] : Array(ids[inputStart..<start])
                ll += try logLikelihood(context, Array(ids[start..<end]))
                start = end
            }
            lls.append(ll)
            #expect(abs(result.record["loglikelihood"]!.doubleValue! - ll) < 1e-3, "\(d)")
            #expect(result.record["tokens"]!.intValue! == ids.count)
            let bpb = -ll / Double(d.utf8.count) / Foundation.log(2)
            #expect(abs(result.record["bits_per_byte"]!.doubleValue! - bpb) < 1e-4)
            #expect(abs(result.score - Foundation.exp(ll / Double(ids.count))) < 1e-4)
        }
        #expect(report.results[0].record["windows"]!.intValue! == 4)  // 53 tokens: 16 + 16 + 16 + 5
        // the short document fits one window: the whole sequence after the prefix token
        let whole = try model.score(TokenBatch([[1] + tokenizer.tokenIds(docs[2])]))[0].logLikelihood
        #expect(abs(report.results[2].record["loglikelihood"]!.doubleValue! - whole) < 1e-4)
        let tokens = docs.map { Double(tokenizer.tokenIds($0).count) }, bytes = docs.map { Double($0.utf8.count) }
        let metric = Dictionary(uniqueKeysWithValues: report.metrics.map { ($0.name, $0) })
        #expect(abs(metric["token_perplexity"]!.value - Foundation.exp(-lls.reduce(0, +) / tokens.reduce(0, +))) < 1e-3)
        #expect(abs(metric["bits_per_byte"]!.value - (-lls.reduce(0, +) / bytes.reduce(0, +) / Foundation.log(2))) < 1e-5)
        #expect(abs(metric["loglikelihood"]!.value - lls.reduce(0, +) / 3) < 1e-3)
        #expect(metric["word_perplexity"] != nil && metric["byte_perplexity"] != nil)
    }

    @Test func generationIsGreedyStopsAtStopStringsAndExtractsTheAnswer() throws {
        let lines = [
            #"{"task": "gen", "kind": "generation", "stop": ["e"], "max_tokens": 12, "answer_regex": "([a-z]+)", "ignore_patterns": []}"#,
            #"{"id": 1, "input": "two plus two is", "target": "four", "answer": "four"}"#,
            #"{"id": 2, "input": "the cat", "target": "sat", "answer": "sat"}"#,
        ]
        let t = try task(lines)
        let results = try Evaluator(model: model, tokenizer: tokenizer).scores(task: t)
        for (example, result) in zip(t.examples, results) {
            guard case let .generation(input, _, gold) = example.content else { continue }
            let engine = try model.generate(prompt: tokenizer.tokenIds(input), options: SamplingOptions(maxTokens: 12))
            let text = tokenizer.text(of: engine.tokens.filter { !model.eosTokenIds.contains($0) })
            let completion = text.range(of: "e").map { String(text[..<$0.lowerBound]) } ?? text
            #expect(result.record["completion"]!.stringValue! == completion)
            let regex = try NSRegularExpression(pattern: "([a-z]+)")
            let match = regex.firstMatch(in: completion, range: NSRange(completion.startIndex..., in: completion))
            let predicted = match.flatMap { Range($0.range(at: 1), in: completion) }.map { String(completion[$0]) } ?? "[invalid]"
            #expect(result.record["prediction"]!.stringValue! == predicted)
            #expect(result.score == (predicted == gold ? 1 : 0))
        }
    }

    @Test func fewshotPromptsJoinExamplesAsLMEvalDoes() throws {
        let lines = [
            #"{"task": "gen", "kind": "generation", "num_fewshot": 2, "description": "Solve.\n\n"}"#,
            #"{"id": "s1", "split": "train", "input": "Question: 1+1?\nAnswer:", "target": "1+1=2\n#### 2"}"#,
            #"{"id": "s2", "split": "train", "input": "Question: 2+2?\nAnswer:", "target": "2+2=4\n#### 4"}"#,
            #"{"id": "s3", "split": "train", "input": "Question: 3+3?\nAnswer:", "target": "3+3=6\n#### 6"}"#,
            #"{"id": "t1", "input": "Question: 4+4?\nAnswer:", "target": "4+4=8\n#### 8"}"#,
        ]
        let t = try task(lines)
        let example = t.evaluationExamples()[0]
        let shots = t.fewshotExamples(for: example)
        #expect(shots.count == 2 && Set(shots.map(\.id)).count == 2 && shots.allSatisfy { $0.split == "train" })
        var expected = "Solve.\n\n"
        for s in shots {
            guard case let .generation(input, target, _) = s.content else { continue }
            expected += input + " " + target + "\n\n"
        }
        expected += "Question: 4+4?\nAnswer:"
        #expect(try Evaluator(model: model, tokenizer: tokenizer).promptText(for: example, in: t) == expected)
        if case let .generation(_, _, answer) = example.content { #expect(answer == "8") }
    }

    struct Brackets: PromptFormatter {
        func userTurn(_ text: String) throws -> String { "<user>" + text + "</user>" }
    }

    @Test func chatTemplateTasksNeedAFormatterAndUseIt() throws {
        var lines = Self.multipleChoice
        lines[0] = #"{"task": "mc", "kind": "multiple_choice", "chat_template": true}"#
        let t = try task(lines)
        #expect(throws: EvalError.self) { try Evaluator(model: model, tokenizer: tokenizer).scores(task: t) }
        let evaluator = Evaluator(model: model, tokenizer: tokenizer, formatter: Brackets())
        #expect(try evaluator.promptText(for: t.examples[0], in: t) == "<user>the cat sat on the</user>")
        #expect(try evaluator.scores(task: t).count == 5)
    }

    @Test func searchGetsOneScoreInTheUnitIntervalPerExample() throws {
        let scores = try Evaluator(model: model, tokenizer: tokenizer).scores(task: try task(Self.multipleChoice))
        #expect(scores.map(\.id) == ["q1", "q2", "q3", "q4", "q5"])
        #expect(scores.allSatisfy { (0...1).contains($0.score) })
    }

    @Test func recordsAndSummaryAreWrittenAsFiles() throws {
        let report = try Evaluator(model: model, tokenizer: tokenizer).evaluate(task: try task(Self.multipleChoice))
        let dir = temporaryFolder("records")
        try report.write(into: dir)
        let records = try String(contentsOfFile: dir + "/mc.jsonl", encoding: .utf8)
        #expect(records.split(separator: "\n").count == 5)
        #expect(records.hasPrefix(#"{"id":"q1","score":"#))
        let summary = try JSONValue.parse(String(contentsOfFile: dir + "/mc.summary.json", encoding: .utf8))
        #expect(summary["n"]?.intValue == 5)
        #expect(summary["metrics"]?["acc"]?["value"]?.doubleValue == report.metrics[0].value)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["mc.jsonl", "mc.summary.json"])
    }
}
