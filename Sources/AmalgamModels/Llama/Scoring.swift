import AmalgamCore
import Foundation

/// How well a model predicts one sequence: each token after the first given the ones before it.
public struct SequenceScore: Sendable, Equatable {
    /// log p(token[t] | token[..<t]) for t = 1 ..< count (natural log).
    public let tokenLogProbabilities: [Float]

    /// Sum of the token log-probabilities.
    public var logLikelihood: Double { tokenLogProbabilities.reduce(0) { $0 + Double($1) } }
    /// Tokens scored (the sequence length minus one).
    public var tokenCount: Int { tokenLogProbabilities.count }
    /// exp(−logLikelihood / tokenCount); NaN when nothing was scored.
    public var perplexity: Double { tokenCount == 0 ? .nan : Foundation.exp(-logLikelihood / Double(tokenCount)) }
}

extension LlamaModel {
    /// Rows of logits computed at once when scoring, bounding memory at rows × V floats.
    static let scoringChunk = 128

    /// Per-token log-probabilities of every sequence, in one forward pass without a KV cache. The
    /// vocabulary projection runs in chunks of rows so memory stays bounded for long batches.
    public func score(_ batch: TokenBatch) throws(ModelError) -> [SequenceScore] {
        let hidden = try run(batch)
        let C = config.hiddenSize, V = config.vocabSize
        // rows whose next token is known: every position but each sequence's last
        var rows: [(row: Int, target: Int)] = []
        for (i, s) in batch.sequences.enumerated() {
            for t in 0..<(s.count - 1) { rows.append((batch.offsets[i] + t, s[t + 1])) }
        }
        var logProbabilities = [Float](repeating: 0, count: rows.count)
        let chunk = Self.scoringChunk
        let selected = FloatBuffer(chunk * C)
        let logits = FloatBuffer(chunk * V)
        var start = 0
        while start < rows.count {
            let n = min(chunk, rows.count - start)
            for j in 0..<n {
                (selected.pointer + j * C).update(from: hidden.pointer + rows[start + j].row * C, count: C)
            }
            projectToVocabulary(logits.pointer, selected.pointer, rows: n)
            let targets = rows[start..<(start + n)].map(\.target)
            let lp = SendableConstPointer(logits.pointer)
            logProbabilities.withUnsafeMutableBufferPointer { out in
                let o = SendablePointer(out.baseAddress! + start)
                parallelChunks(n, minimumChunk: 4) { range in
                    for j in range { o.base[j] = Layers.logProbability(lp.base + j * V, count: V, target: targets[j]) }
                }
            }
            start += n
        }
        var scores: [SequenceScore] = []
        var next = 0
        for s in batch.sequences {
            scores.append(SequenceScore(tokenLogProbabilities: Array(logProbabilities[next..<(next + s.count - 1)])))
            next += s.count - 1
        }
        return scores
    }
}

extension LlamaModel {
    /// Scores any number of sequences, grouping consecutive ones into passes of at most
    /// `tokensPerPass` tokens (a longer sequence gets a pass of its own) so activations stay bounded.
    public func score(_ sequences: [[Int]], tokensPerPass: Int = 4096) throws(ModelError) -> [SequenceScore] {
        var scores: [SequenceScore] = []
        var group: [[Int]] = []
        var tokens = 0
        for s in sequences {
            if !group.isEmpty && tokens + s.count > tokensPerPass {
                scores += try score(TokenBatch(group))
                group = []
                tokens = 0
            }
            group.append(s)
            tokens += s.count
        }
        if !group.isEmpty { scores += try score(TokenBatch(group)) }
        return scores
    }
}
