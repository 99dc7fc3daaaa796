import AmalgamCore
import Foundation

/// How to pick each next token.
public struct SamplingOptions: Sendable, Equatable {
    /// Tokens to generate at most.
    public var maxTokens: Int
    /// 0 (or less) is greedy; otherwise logits are divided by it before sampling.
    public var temperature: Float
    /// Nucleus sampling: keep the most likely tokens whose probabilities sum to at least this.
    public var topP: Float
    /// Seed of the sampling generator: the same seed gives the same tokens.
    public var seed: UInt64
    /// Extra token ids that end generation (the model's EOS ids always do).
    public var stopTokenIds: [Int]
    /// Id sequences that end generation once generated (kept in the output, as EOS is).
    public var stopSequences: [[Int]]

    /// Options; greedy by default.
    public init(maxTokens: Int, temperature: Float = 0, topP: Float = 1, seed: UInt64 = 0,
                stopTokenIds: [Int] = [], stopSequences: [[Int]] = []) {
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
        self.stopTokenIds = stopTokenIds
        self.stopSequences = stopSequences
    }
}

/// Generated tokens and why generation stopped.
public struct Generation: Sendable, Equatable {
    /// Why generation ended.
    public enum StopReason: String, Sendable { case endOfSequence, stopSequence, stopString, maxTokens }
    /// The new tokens (not the prompt), including the EOS or stop sequence that ended them.
    public var tokens: [Int]
    /// Why generation ended.
    public var stopReason: StopReason
}

extension LlamaModel {
    /// Continues `prompt` with a KV cache: one pass over the prompt, then one row per new token.
    /// `onToken` sees each token as it is chosen and returns false to end generation there (a stop string
    /// found in the decoded text, say: the reason is then `.stopString`).
    public func generate(prompt: [Int], options: SamplingOptions,
                         onToken: (Int) -> Bool = { _ in true }) throws(ModelError) -> Generation {
        guard !prompt.isEmpty else { throw .emptySequence(index: 0) }
        let cache = KVCache(for: self, capacity: prompt.count + options.maxTokens)
        var sampler = TokenSampler(options)
        let stops = Set(eosTokenIds + options.stopTokenIds)
        var generated: [Int] = []
        var logits = try nextTokenLogits(prompt, cache: cache)
        while generated.count < options.maxTokens {
            let token = sampler.pick(logits)
            generated.append(token)
            let proceed = onToken(token)
            if stops.contains(token) { return Generation(tokens: generated, stopReason: .endOfSequence) }
            if options.stopSequences.contains(where: { !$0.isEmpty && generated.ends(with: $0) }) {
                return Generation(tokens: generated, stopReason: .stopSequence)
            }
            if !proceed { return Generation(tokens: generated, stopReason: .stopString) }
            if generated.count == options.maxTokens { break }
            logits = try nextTokenLogits([token], cache: cache)
        }
        return Generation(tokens: generated, stopReason: .maxTokens)
    }

    /// Runs `tokens` (continuing the cache's sequence) and returns the logits [V] after the last one.
    public func nextTokenLogits(_ tokens: [Int], cache: KVCache) throws(ModelError) -> [Float] {
        let start = cache.count
        let segment = Attention.Segment(queryRow: 0, keyRow: 0, position: start, count: tokens.count)
        let hidden = try forward(tokens: tokens, positions: Array(start..<(start + tokens.count)),
                                 segments: [segment], cache: cache)
        let out = FloatBuffer(config.vocabSize)
        projectToVocabulary(out.pointer, hidden.pointer + (tokens.count - 1) * config.hiddenSize, rows: 1)
        return out.array()
    }
}

extension Array where Element == Int {
    func ends(with suffix: [Int]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}

/// Picks tokens from logits: argmax when greedy, else temperature and top-p sampling from a seeded
/// generator.
struct TokenSampler {
    let temperature: Float
    let topP: Float
    var random: SeededGenerator

    init(_ options: SamplingOptions) {
        temperature = options.temperature
        topP = options.topP
        random = SeededGenerator(seed: options.seed)
    }

    mutating func pick(_ logits: [Float]) -> Int {
        if temperature <= 0 {
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            return best
        }
        let m = logits.max()!
        var probabilities = logits.map { Foundation.exp(($0 - m) / temperature) }
        let total = probabilities.reduce(0, +)
        for i in probabilities.indices { probabilities[i] /= total }
        // the smallest set of most likely tokens whose mass reaches top-p (at least one)
        let order = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] || (probabilities[$0] == probabilities[$1] && $0 < $1) }
        var kept = 0
        var mass: Float = 0
        while kept < order.count && (kept == 0 || mass < topP) { mass += probabilities[order[kept]]; kept += 1 }
        var u = Float(random.uniform()) * mass
        for i in 0..<kept {
            u -= probabilities[order[i]]
            if u <= 0 { return order[i] }
        }
        return order[kept - 1]
    }
}
