import AmalgamModels
import AmalgamTokenizer

/// What the evaluator needs from a language model: token log-probabilities of whole sequences and greedy
/// continuation. `LlamaModel` conforms; the search can pass any in-memory model that does.
public protocol EvaluableModel: Sendable {
    /// The longest sequence the model takes (lm-eval's `max_length`).
    var contextLength: Int { get }
    /// For each sequence, log p(s[t] | s[..<t]) for t = 1 ..< count (natural log), scored in as few passes
    /// as memory allows. The result must not depend on how many threads run.
    func tokenLogProbabilities(_ sequences: [[Int]]) throws -> [[Float]]
    /// Greedy (argmax, first on ties) continuation of `prompt`, at most `maxTokens` tokens, ending early
    /// at an end-of-sequence id (not returned) or when `shouldStop` says so for the tokens so far.
    func greedyContinuation(of prompt: [Int], maxTokens: Int, shouldStop: ([Int]) -> Bool) throws -> [Int]
}

extension LlamaModel: EvaluableModel {
    public var contextLength: Int { config.maxPositionEmbeddings }

    public func tokenLogProbabilities(_ sequences: [[Int]]) throws -> [[Float]] {
        try score(sequences, tokensPerPass: 4096).map(\.tokenLogProbabilities)
    }

    public func greedyContinuation(of prompt: [Int], maxTokens: Int, shouldStop: ([Int]) -> Bool) throws -> [Int] {
        guard maxTokens > 0 else { return [] }
        let cache = KVCache(for: self, capacity: prompt.count + maxTokens)
        let stops = Set(eosTokenIds)
        var generated: [Int] = []
        var logits = try nextTokenLogits(prompt, cache: cache)
        while true {
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            if stops.contains(best) { break }
            generated.append(best)
            if generated.count == maxTokens || shouldStop(generated) { break }
            logits = try nextTokenLogits([best], cache: cache)
        }
        return generated
    }
}

/// Text to token ids and back, as the evaluator uses them: no special tokens added when encoding (lm-eval's
/// `add_special_tokens=False` for causal models), special tokens skipped when decoding.
public protocol TextTokenizer: Sendable {
    /// The ids of `text` without BOS/EOS.
    func tokenIds(_ text: String) -> [Int]
    /// The text of `ids`, special tokens left out.
    func text(of ids: [Int]) -> String
    /// The token an empty context is replaced by (lm-eval's `prefix_token_id`: BOS, else EOS).
    var prefixTokenId: Int? { get }
}

extension Tokenizer: TextTokenizer {
    public func tokenIds(_ text: String) -> [Int] { encode(text, addSpecialTokens: false) }
    public func text(of ids: [Int]) -> String { decode(ids, skipSpecialTokens: true) }
    public var prefixTokenId: Int? { bosTokenId ?? eosTokenId }
}

/// Turns the text of a prompt into what the model sees, e.g. through the model's chat template. The
/// evaluator uses one only for tasks with `"chat_template": true`.
public protocol PromptFormatter: Sendable {
    /// The prompt for one user turn holding `text`, ending where the assistant's answer starts.
    func userTurn(_ text: String) throws -> String
}
