import AmalgamCore
import AmalgamEval
import AmalgamTestSupport
import AmalgamTokenizer
import Foundation
import Testing

/// Our request building and metrics against lm-evaluation-harness's own code
/// (fixtures/eval/lmeval_reference.json, made by scripts/fixtures/make_eval_fixtures.py).
@Suite struct LMEvalReferenceTests {
    let reference: JSONValue

    init() throws { reference = try lmEvalReference() }

    func ints(_ v: JSONValue?) -> [Int] { v?.arrayValue?.compactMap(\.intValue) ?? [] }
    func doubles(_ v: JSONValue?) -> [Double] { v?.arrayValue?.compactMap(\.doubleValue) ?? [] }

    @Test func contextAndContinuationAreTokenizedAsLMEvalDoes() throws {
        let tokenizer = try Tokenizer(contentsOf: fixturesDirectory + "/tokenizer/smollm2")
        let cases = try #require(reference["encode_pairs"]?.arrayValue)
        #expect(cases.count >= 10)
        for c in cases {
            let request = LogLikelihoodRequests.pair(context: c["context"]!.stringValue!, continuation: c["continuation"]!.stringValue!,
                                                     tokenizer: tokenizer)
            #expect(request.context == ints(c["context_ids"]), "context of \(c.compactText())")
            #expect(request.continuation == ints(c["continuation_ids"]), "continuation of \(c.compactText())")
        }
    }

    @Test func documentsAreCutIntoLMEvalsRollingWindows() throws {
        for c in try #require(reference["rolling_windows"]?.arrayValue) {
            let windows = LogLikelihoodRequests.rollingWindows(ints(c["tokens"]), prefixToken: 1, maxLength: c["max_length"]!.intValue!)
            let expected = c["windows"]!.arrayValue!.map { LogLikelihoodRequest(context: ints($0["context"]), continuation: ints($0["continuation"])) }
            #expect(windows == expected, "\(c["tokens"]!.arrayValue!.count) tokens, max_length \(c["max_length"]!.intValue!)")
            // every token is predicted exactly once, and no scored sequence is longer than max_length + 1
            #expect(windows.flatMap(\.continuation) == ints(c["tokens"]))
            #expect(windows.allSatisfy { $0.context.count + $0.continuation.count <= c["max_length"]!.intValue! + 1 })
        }
    }

    @Test func accuracyAndNormalisedAccuracyMatchLMEval() throws {
        for c in try #require(reference["multiple_choice"]?.arrayValue) {
            let m = MultipleChoiceMetrics.score(logLikelihoods: doubles(c["lls"]), choices: c["choices"]!.arrayValue!.map { $0.stringValue! },
                                                gold: c["gold"]!.intValue!)
            #expect(m.acc == c["acc"]!.doubleValue!, "acc of \(c.compactText())")
            #expect(m.accNorm == c["acc_norm"]!.doubleValue!, "acc_norm of \(c.compactText())")
        }
    }

    @Test func meanStderrPerplexityAndBitsPerByteMatchLMEval() throws {
        let a = try #require(reference["aggregates"])
        let s = Statistics.meanAndStderr(doubles(a["values"]))
        #expect(abs(s.mean - a["mean"]!.doubleValue!) < 1e-12)
        #expect(abs(s.stderr! - a["mean_stderr"]!.doubleValue!) < 1e-12)
        let r = Statistics.ratioAndStderr(doubles(a["lls"]), doubles(a["counts"]))
        #expect(abs(Foundation.exp(-r.ratio) - a["weighted_perplexity"]!.doubleValue!) < 1e-9 * a["weighted_perplexity"]!.doubleValue!)
        #expect(abs(-r.ratio / Foundation.log(2) - a["bits_per_byte"]!.doubleValue!) < 1e-12)
        for w in a["word_counts"]!.arrayValue! {
            #expect(DocumentCounts.words(w["text"]!.stringValue!) == w["words"]!.intValue!, "words of \(w["text"]!.compactText())")
            #expect(DocumentCounts.bytes(w["text"]!.stringValue!) == w["bytes"]!.intValue!)
        }
    }

    @Test func answersAreExtractedAndComparedAsGSM8KInLMEval() throws {
        let rule = AnswerRule.gsm8k
        for c in try #require(reference["answers"]?.arrayValue) {
            let extracted = AnswerExtraction.extract(c["completion"]!.stringValue!, rule: rule) ?? AnswerExtraction.invalid
            #expect(extracted == c["extracted"]!.stringValue!, "extraction from \(c["completion"]!.compactText())")
            #expect(AnswerExtraction.exactMatch(prediction: extracted, gold: c["gold"]!.stringValue!, rule: rule) == c["exact_match"]!.doubleValue!,
                    "exact match of \(c.compactText())")
        }
    }

    @Test func stderrOfARatioAgreesWithTheDeltaMethodByHand() {
        // R = Σa/Σb; residuals a − R·b; stderr = sqrt(Σ residual² / (n − 1) / n) / mean(b)
        let a = [-10.0, -30.0, -20.0], b = [5.0, 10.0, 10.0]
        let r = Statistics.ratioAndStderr(a, b)
        #expect(r.ratio == -2.4)
        let residuals = [-10.0 + 2.4 * 5, -30.0 + 2.4 * 10, -20.0 + 2.4 * 10]  // 2, −6, 4
        let expected = (residuals.map { $0 * $0 }.reduce(0, +) / 2 / 3).squareRoot() / (25.0 / 3)
        #expect(abs(r.stderr! - expected) < 1e-12)
        #expect(Statistics.meanAndStderr([1]).stderr == nil)
    }
}
