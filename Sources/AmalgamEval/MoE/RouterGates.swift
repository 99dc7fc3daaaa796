import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import AmalgamTokenizer
import Foundation

/// The router rows of a mixture-of-experts model built from dense experts, as mergekit-moe makes them:
/// one row per expert and layer, from the base model's view of each expert's prompts.
public enum RouterGates {
    /// How the rows are made (mergekit-moe's `gate_mode`).
    public enum Mode: Sendable {
        /// The residual stream entering each layer at the last token of each prompt (`hidden`, `hidden_last`).
        case hiddenLast
        /// The residual stream averaged over each prompt's positions (`hidden_avg`).
        case hiddenAverage
        /// The normalised sum of the prompts' token embeddings, the same for every layer.
        case cheapEmbed
        /// Standard normals, not normalised (`random`).
        case random
        /// Uniform in ±1/√hidden_size (`uniform_random`).
        case uniformRandom
    }

    /// One expert's prompts.
    public struct Prompts: Sendable {
        public var positive: [String]
        public var negative: [String]
        public init(positive: [String], negative: [String]) {
            self.positive = positive
            self.negative = negative
        }
    }

    /// `result[layer]` holds `experts.count` rows of hidden_size values.
    ///
    /// Prompts are tokenised as mergekit does, BOS text + prompt with no special tokens added. For each
    /// expert: the mean over its positive prompts (minus the mean over its negative ones) of the chosen
    /// vector, L2-normalised per layer. `cheap_embed` normalises the sums of each set before subtracting.
    /// `progress(done, total)` counts forward passes.
    public static func compute(mode: Mode, base: ModelSource, experts: [Prompts], seed: UInt64,
                               progress: (Int, Int) -> Void = { _, _ in }) throws -> [[Float]] {
        let llama = try base.config.llama()
        let L = llama.numHiddenLayers, C = llama.hiddenSize, E = experts.count
        switch mode {
        case .random, .uniformRandom:
            var rng = SeededGenerator(seed: seed)
            let scale = Float(1 / Double(C).squareRoot())
            return (0..<L).map { _ in
                (0..<(E * C)).map { _ in mode == .random ? rng.normal() : Float(rng.uniform() * 2 - 1) * scale }
            }
        case .cheapEmbed:
            let tokenizer = try LanguageModel.tokenizer(of: base)
            let embed = try base.tensors.tensor("model.embed_tokens.weight").converted(to: .f32).floats()
            var rows: [Float] = []
            for e in experts {
                var v = normalized(embeddingSum(try tokenize(e.positive, tokenizer, vocabulary: llama.vocabSize, base: base), embed, C))
                if !e.negative.isEmpty {
                    let n = normalized(embeddingSum(try tokenize(e.negative, tokenizer, vocabulary: llama.vocabSize, base: base), embed, C))
                    for j in 0..<C { v[j] -= n[j] }
                }
                rows += normalized(v)
            }
            return Array(repeating: rows, count: L)
        case .hiddenLast, .hiddenAverage:
            let tokenizer = try LanguageModel.tokenizer(of: base)
            var sets: [[[Int]]] = []
            for e in experts {
                sets.append(try tokenize(e.positive, tokenizer, vocabulary: llama.vocabSize, base: base))
                sets.append(e.negative.isEmpty ? [] : try tokenize(e.negative, tokenizer, vocabulary: llama.vocabSize, base: base))
            }
            if mode == .hiddenAverage {
                // mergekit averages over the padded batch, pad positions included; only equal lengths agree.
                for (i, set) in sets.enumerated() where Set(set.map(\.count)).count > 1 {
                    throw EvalError.unsupported(task: "gate_mode hidden_avg", reason: "the \(i % 2 == 0 ? "positive" : "negative") prompts of expert \(i / 2) have different token counts (\(set.map(\.count))); mergekit averages over their left padding too, which Amalgam does not reproduce: use prompts of one length or gate_mode hidden")
                }
            }
            let probe = try ResidualProbe(base: base, llama: llama, tokens: Set(sets.joined().joined()))
            var result = [[Float]](repeating: [], count: L)
            for layer in 0..<L {
                let states = try probe.residuals(entering: layer, sequences: sets.flatMap { $0 })
                var next = 0
                var layerRows: [Float] = []
                for e in experts.indices {
                    var v = [Double](repeating: 0, count: C)
                    for (k, sign) in [(0, 1.0), (1, -1.0)] {
                        let count = sets[2 * e + k].count
                        guard count > 0 else { continue }
                        var mean = [Double](repeating: 0, count: C)
                        for _ in 0..<count {
                            let s = states[next]
                            next += 1
                            let tokens = s.count / C
                            let picked = mode == .hiddenLast ? (tokens - 1)..<tokens : 0..<tokens
                            for t in picked { for j in 0..<C { mean[j] += Double(s[t * C + j]) / Double(picked.count) } }
                        }
                        for j in 0..<C { v[j] += sign * mean[j] / Double(count) }
                    }
                    let norm = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-8)
                    layerRows += v.map { Float($0 / norm) }
                }
                result[layer] = layerRows
                progress(layer + 1, L)
            }
            return result
        }
    }

    /// Each prompt's ids: BOS text + prompt, without the tokenizer's special-token template.
    static func tokenize(_ prompts: [String], _ tokenizer: Tokenizer, vocabulary: Int, base: ModelSource) throws -> [[Int]] {
        let bos = tokenizer.bosTokenId.flatMap { tokenizer.token(of: $0) } ?? ""
        return try prompts.map { p in
            let ids = tokenizer.encode(bos + p, addSpecialTokens: false)
            if let bad = ids.first(where: { $0 >= vocabulary }) {
                throw EvalError.unsupported(task: "router gates", reason: "\(base.path): prompt '\(p)' has token id \(bad), beyond the model's vocab_size \(vocabulary)")
            }
            return ids
        }
    }

    /// Σ over prompts of Σ over their tokens of the embedding rows (f32, each prompt summed first).
    static func embeddingSum(_ prompts: [[Int]], _ embed: [Float], _ C: Int) -> [Float] {
        var total = [Float](repeating: 0, count: C)
        for ids in prompts {
            var sum = [Float](repeating: 0, count: C)
            for t in ids { for j in 0..<C { sum[j] += embed[t * C + j] } }
            for j in 0..<C { total[j] += sum[j] }
        }
        return total
    }

    static func normalized(_ v: [Float]) -> [Float] {
        let norm = max(v.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot(), 1e-8)
        return v.map { $0 / norm }
    }
}
