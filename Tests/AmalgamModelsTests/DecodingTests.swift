import AmalgamCore
import AmalgamModels
import AmalgamTestSupport
import Foundation
import Testing

/// Expected logits of sequence `b`, position `t`.
private func expectedRow(_ e: ExpectedLogits, _ b: Int, _ t: Int) -> ArraySlice<Float> {
    e.logits[((b * e.maxLength + t) * e.vocab)..<((b * e.maxLength + t + 1) * e.vocab)]
}

private func maxDifference(_ a: some Collection<Float>, _ b: some Collection<Float>) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

@Test("a short sequence alone (the GEMV path) gives transformers' logits",
      arguments: ["llama", "qwen2", "qwen3", "llama-bf16", "llama-f16"])
func shortSequenceMatches(_ name: String) throws {
    let model = try LlamaModel(folder: modelFixture(name))
    let expected = try ExpectedLogits(name)
    let ours = try model.logits(TokenBatch([expected.batch.sequences[2]]))
    for t in 0..<ours.rows {
        #expect(maxDifference(ours[row: t], expectedRow(expected, 2, t)) <= 1e-4)
    }
}

@Test("decoding with the KV cache, prompt then one token at a time, gives the full pass's logits",
      arguments: ["mistral", "llama3-rope", "qwen3", "llama-bf16"])
func cachedDecodingMatches(_ name: String) throws {
    let model = try LlamaModel(folder: modelFixture(name))
    let expected = try ExpectedLogits(name)
    let sequence = expected.batch.sequences[0]
    let cache = KVCache(for: model, capacity: sequence.count)
    var logits = try model.nextTokenLogits(Array(sequence[0..<5]), cache: cache)
    #expect(maxDifference(logits, expectedRow(expected, 0, 4)) <= 1e-4)
    for t in 5..<sequence.count {
        logits = try model.nextTokenLogits([sequence[t]], cache: cache)
        #expect(maxDifference(logits, expectedRow(expected, 0, t)) <= 1e-4, "position \(t)")
    }
    #expect(cache.count == sequence.count)
    #expect(throws: ModelError.contextTooLong(length: sequence.count + 1, limit: sequence.count)) {
        try model.nextTokenLogits([1], cache: cache)
    }
}

@Test("scoring gives each token's log-softmax probability under transformers' logits")
func scoringMatchesLogSoftmax() throws {
    let model = try LlamaModel(folder: modelFixture("qwen2"))
    let expected = try ExpectedLogits("qwen2")
    let scores = try model.score(expected.batch)
    for (b, s) in expected.batch.sequences.enumerated() {
        #expect(scores[b].tokenCount == s.count - 1)
        for t in 0..<(s.count - 1) {
            let row = expectedRow(expected, b, t).map(Double.init)
            let m = row.max()!
            let reference = row[s[t + 1]] - m - log(row.reduce(0) { $0 + exp($1 - m) })
            #expect(abs(Double(scores[b].tokenLogProbabilities[t]) - reference) <= 1e-4)
        }
        let ll = scores[b].tokenLogProbabilities.reduce(0.0) { $0 + Double($1) }
        #expect(abs(scores[b].perplexity - exp(-ll / Double(s.count - 1))) <= 1e-9 * scores[b].perplexity)
    }
}

@Test("an empty sequence or an unknown token is refused with a clear error")
func badInputsAreRefused() throws {
    let model = try LlamaModel(folder: modelFixture("llama"))
    #expect(throws: ModelError.emptySequence(index: 1)) { try TokenBatch([[1, 2], []]) }
    #expect(throws: ModelError.tokenOutOfRange(token: 64, vocabSize: 64)) { try model.logits(TokenBatch([[1, 64]])) }
}

@Test("greedy generation follows the argmax of full forward passes and stops on EOS")
func greedyGeneration() throws {
    let model = try LlamaModel(folder: modelFixture("llama"))
    let prompt = [1, 5, 9, 17]
    let generation = try model.generate(prompt: prompt, options: SamplingOptions(maxTokens: 6, stopTokenIds: []))
    var context = prompt
    var reference: [Int] = []
    for _ in 0..<generation.tokens.count {
        let logits = try model.logits(TokenBatch([context]))
        let next = logits.argmaxPerRow().last!
        reference.append(next)
        context.append(next)
        if model.eosTokenIds.contains(next) { break }
    }
    #expect(generation.tokens == reference)
    let first = generation.tokens[0]
    let stopped = try model.generate(prompt: prompt, options: SamplingOptions(maxTokens: 6, stopTokenIds: [first]))
    #expect(stopped.tokens == [first] && stopped.stopReason == .endOfSequence)
    if generation.tokens.count >= 2 {
        let stopSequence = Array(generation.tokens[0..<2])
        let bySequence = try model.generate(prompt: prompt, options: SamplingOptions(maxTokens: 6, stopSequences: [stopSequence]))
        #expect(bySequence.tokens == stopSequence && bySequence.stopReason == .stopSequence)
    }
}

@Test("sampling is reproducible from its seed, another seed draws another sample, and a tiny top-p is greedy")
func sampledGeneration() throws {
    let model = try LlamaModel(folder: modelFixture("qwen3"))
    let prompt = [1, 6, 60]
    let options = SamplingOptions(maxTokens: 8, temperature: 1.5, topP: 0.9, seed: 42)
    let a = try model.generate(prompt: prompt, options: options)
    let b = try model.generate(prompt: prompt, options: options)
    #expect(a == b)
    // Seeds 0…7 at temperature 1.5 over a 64-token vocabulary: were the seed ignored, all eight samples
    // would be one.
    let samples = try (0..<8).map { seed -> [Int] in
        var other = options
        other.seed = UInt64(seed)
        return try model.generate(prompt: prompt, options: other).tokens
    }
    #expect(Set(samples).count >= 4, "\(samples)")
    let greedy = try model.generate(prompt: prompt, options: SamplingOptions(maxTokens: 8))
    let nucleusOfOne = try model.generate(prompt: prompt, options: SamplingOptions(maxTokens: 8, temperature: 1, topP: 1e-6, seed: 3))
    #expect(nucleusOfOne.tokens == greedy.tokens)
    #expect(samples.contains { $0 != greedy.tokens })
}

@Test("scoring in several bounded passes gives the same numbers as one pass")
func scoringInPassesMatchesOnePass() throws {
    let model = try LlamaModel(folder: modelFixture("mistral"))
    let expected = try ExpectedLogits("mistral")
    let onePass = try model.score(expected.batch)
    let passes = try model.score(expected.batch.sequences, tokensPerPass: 8)
    #expect(onePass.count == passes.count)
    for (a, b) in zip(onePass, passes) {
        #expect(zip(a.tokenLogProbabilities, b.tokenLogProbabilities).allSatisfy { abs($0 - $1) <= 1e-5 })
    }
}
