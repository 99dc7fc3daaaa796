/// A continuation scored given a context, in tokens, and the sequence the model runs on for it.
public struct LogLikelihoodRequest: Sendable, Equatable {
    public var context: [Int]
    public var continuation: [Int]

    public init(context: [Int], continuation: [Int]) {
        self.context = context
        self.continuation = continuation
    }

    /// The tokens the model scores: context + continuation, keeping the last `maxLength + 1` (lm-eval
    /// feeds `(context + continuation)[-(max_length + 1):][:-1]` and reads the continuation's positions).
    public func sequence(maxLength: Int) -> [Int] {
        let whole = context + continuation
        return whole.count > maxLength + 1 ? Array(whole.suffix(maxLength + 1)) : whole
    }

    /// The continuation's log-likelihood from the token log-probabilities of `sequence(maxLength:)`.
    public func logLikelihood(fromTokenLogProbabilities lp: [Float]) -> Double {
        lp.suffix(continuation.count).reduce(0) { $0 + Double($1) }
    }
}

/// lm-eval's ways of turning text into log-likelihood requests.
public enum LogLikelihoodRequests {
    /// A (context, continuation) pair tokenized as lm-eval's `_encode_pair` does: trailing spaces of the
    /// context move to the continuation, the whole string is tokenized and the continuation is what follows
    /// the context's token count in it; an empty context becomes the
    /// prefix token (or the continuation's first token when it is that token).
    public static func pair(context: String, continuation: String, tokenizer: any TextTokenizer) -> LogLikelihoodRequest {
        guard !context.isEmpty else {
            // The prefix token as context, unless the continuation already starts with it.
            let ids = tokenizer.tokenIds(continuation)
            if let prefix = tokenizer.prefixTokenId, ids.first != prefix { return LogLikelihoodRequest(context: [prefix], continuation: ids) }
            return LogLikelihoodRequest(context: Array(ids.prefix(1)), continuation: Array(ids.dropFirst()))
        }
        var context = context, continuation = continuation
        // Python's rstrip(): trailing whitespace.
        let trailing = context.reversed().prefix { $0.unicodeScalars.allSatisfy(DocumentCounts.isPythonWhitespace) }.count
        if trailing > 0 {
            continuation = String(context.suffix(trailing)) + continuation
            context = String(context.dropLast(trailing))
        }
        let whole = tokenizer.tokenIds(context + continuation)
        let contextIds = tokenizer.tokenIds(context)
        // As lm-eval: the context as encoded alone, the continuation as what follows that many tokens of
        // the whole (empty when a merge across the boundary made the whole shorter).
        return LogLikelihoodRequest(context: contextIds, continuation: Array(whole.dropFirst(contextIds.count)))
    }

    /// The windows lm-eval scores a document in (`loglikelihood_rolling`: `get_rolling_token_windows` with
    /// context length 1, then `make_disjoint_window`): the first window predicts the first `maxLength`
    /// tokens after the prefix token; each next one predicts up to `maxLength` further tokens given the
    /// tokens just before them, so every token is predicted exactly once.
    public static func rollingWindows(_ tokens: [Int], prefixToken: Int, maxLength: Int) -> [LogLikelihoodRequest] {
        guard !tokens.isEmpty else { return [] }
        var windows: [LogLikelihoodRequest] = []
        let first = min(maxLength, tokens.count)
        windows.append(LogLikelihoodRequest(context: [prefixToken], continuation: Array(tokens[..<first])))
        var predicted = first
        while predicted < tokens.count {
            let count = min(tokens.count - predicted, maxLength)
            let end = predicted + count
            // The model input is tokens[end − maxLength − 1 ..< end − 1]; the part before the predicted
            // tokens is the context (disjoint window).
            let inputStart = max(0, end - maxLength - 1)
            let input = Array(tokens[inputStart..<(end - 1)])
            let context = Array(input[..<(input.count - (count - 1))])
            windows.append(LogLikelihoodRequest(context: context, continuation: Array(tokens[predicted..<end])))
            predicted = end
        }
        return windows
    }
}
