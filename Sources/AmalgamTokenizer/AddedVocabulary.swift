/// A token added on top of the model's vocabulary (`added_tokens`), matched in the text before the
/// pipeline runs so that it is never split.
public struct AddedToken: Sendable, Equatable {
    /// The id tokenizers gives it, which is not always the one in the file (see `assignAddedTokenIds`).
    public internal(set) var id: Int
    public let content: String
    /// Matched only when not inside a word.
    public let singleWord: Bool
    /// Takes the whitespace on its left (`lstrip`) or right (`rstrip`) with it.
    public let lstrip: Bool
    public let rstrip: Bool
    /// Matched in the normalized text rather than the raw text.
    public let normalized: Bool
    /// A special token: dropped by `decode(skipSpecialTokens: true)`.
    public let special: Bool

    init(_ node: JSONNode) throws(TokenizerError) {
        let id = try node.required("id")
        guard let value = id.value.intValue, value >= 0 else { throw id.invalid("expected a non-negative integer") }
        self.id = value
        content = try node.string("content")
        singleWord = try node.bool("single_word", default: false)
        lstrip = try node.bool("lstrip", default: false)
        rstrip = try node.bool("rstrip", default: false)
        special = try node.bool("special", default: false)
        normalized = try node.bool("normalized", default: !special)
    }
}

/// Gives added tokens their ids as tokenizers does when it reads a file: the `id` written there is
/// ignored; a token already in the vocabulary (or added before) keeps that id, a new one gets the next id
/// after the vocabulary and the added tokens. Empty and repeated tokens are dropped.
func assignAddedTokenIds(_ tokens: [AddedToken], vocabularyId: (String) -> Int?, vocabularyCount: Int) -> [AddedToken] {
    var out: [AddedToken] = []
    var ids: [String: Int] = [:]
    var maxId: Int? = nil
    for var token in tokens where !token.content.isEmpty {
        if out.contains(where: { $0.content == token.content && $0 == token }) { continue }
        if let known = ids[token.content] ?? vocabularyId(token.content) {
            token.id = known
        } else if let maxId {
            token.id = maxId >= vocabularyCount || vocabularyCount == 0 ? maxId + 1 : vocabularyCount
        } else {
            token.id = vocabularyCount
        }
        ids[token.content] = token.id
        maxId = max(maxId ?? token.id, token.id)
        out.removeAll { $0.content == token.content }
        out.append(token)
    }
    return out
}

/// Finds added tokens in text: leftmost match first, the longest among those starting there, as the
/// Aho-Corasick `LeftmostLongest` search tokenizers uses.
struct AddedTokenMatcher: Sendable {
    /// Candidates by first byte, longest first.
    private let byFirstByte: [[(pattern: [UInt8], token: AddedToken)]]
    /// Whether any token starts with the byte: most bytes of a text are skipped on this alone.
    private let starts: [Bool]
    let isEmpty: Bool

    init(_ tokens: [(pattern: String, token: AddedToken)]) {
        var table = Array(repeating: [(pattern: [UInt8], token: AddedToken)](), count: 256)
        for (pattern, token) in tokens where !pattern.isEmpty {
            let bytes = Array(pattern.utf8)
            table[Int(bytes[0])].append((bytes, token))
        }
        for k in table.indices { table[k].sort { $0.pattern.count > $1.pattern.count } }
        byFirstByte = table
        starts = table.map { !$0.isEmpty }
        isEmpty = tokens.isEmpty
    }

    /// The text cut into segments (indices of `text`), each plain text or an added token (with the
    /// whitespace it strips).
    func split(_ text: ArraySlice<UInt8>) -> [(range: Range<Int>, token: AddedToken?)] {
        guard !isEmpty else { return [(text.indices, nil)] }
        var out: [(range: Range<Int>, token: AddedToken?)] = []
        var done = text.startIndex, i = text.startIndex
        while i < text.endIndex {
            guard starts[Int(text[i])], let (length, token) = longestMatch(text, at: i) else { i += 1; continue }
            var start = i, stop = i + length
            i = stop  // a match that is then refused still consumes its text, as the search is non-overlapping
            if token.singleWord && (endsWithWordCharacter(text[..<start]) || startsWithWordCharacter(text[stop...])) {
                continue
            }
            if token.lstrip { start = max(startOfTrailingWhitespace(text[..<start]), done) }
            if token.rstrip { stop = endOfLeadingWhitespace(text[stop...]) }
            if done < start { out.append((done..<start, nil)) }
            out.append((start..<stop, token))
            done = stop
            i = max(i, stop)
        }
        if done < text.endIndex { out.append((done..<text.endIndex, nil)) }
        return out
    }

    private func longestMatch(_ text: ArraySlice<UInt8>, at i: Int) -> (Int, AddedToken)? {
        for (pattern, token) in byFirstByte[Int(text[i])] where i + pattern.count <= text.endIndex {
            if text[i..<(i + pattern.count)].elementsEqual(pattern) { return (pattern.count, token) }
        }
        return nil
    }
}

private func isWordCharacter(_ s: Unicode.Scalar) -> Bool {
    s == "_" || classify(s) == .letter || classify(s) == .number
}

private func endsWithWordCharacter(_ bytes: ArraySlice<UInt8>) -> Bool {
    String(decoding: bytes, as: UTF8.self).unicodeScalars.last.map(isWordCharacter) ?? false
}

private func startsWithWordCharacter(_ bytes: ArraySlice<UInt8>) -> Bool {
    String(decoding: bytes.prefix(4), as: UTF8.self).unicodeScalars.first.map(isWordCharacter) ?? false
}

/// The offset where the whitespace ending `bytes` begins.
private func startOfTrailingWhitespace(_ bytes: ArraySlice<UInt8>) -> Int {
    var start = bytes.endIndex
    for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars.reversed() {
        guard scalar.properties.isWhitespace else { break }
        start -= UTF8.width(scalar)
    }
    return start
}

/// The offset where the whitespace starting `bytes` ends.
private func endOfLeadingWhitespace(_ bytes: ArraySlice<UInt8>) -> Int {
    var end = bytes.startIndex
    for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
        guard scalar.properties.isWhitespace else { break }
        end += UTF8.width(scalar)
    }
    return end
}
