import AmalgamCore
import Foundation

/// A Hugging Face tokenizer read from `tokenizer.json` (and `tokenizer_config.json` beside it), giving the
/// same ids as the `tokenizers` library. Encoding runs: added tokens → normalizer → pre-tokenizer → model →
/// post-processor; decoding: ids → token strings → decoder.
public final class Tokenizer: Sendable {
    /// The tokenizer.json the tokenizer was read from.
    public let path: String
    public let config: TokenizerConfig
    /// The added tokens, in file order.
    public let addedTokens: [AddedToken]
    let normalizer: (any Normalizer)?
    let preTokenizer: (any PreTokenizer)?
    let model: any TokenModel
    let postProcessor: (any PostProcessor)?
    let decoder: (any Decoder)?
    private let rawMatcher: AddedTokenMatcher
    private let normalizedMatcher: AddedTokenMatcher
    private let addedByContent: [String: AddedToken]
    /// The text decoding gives an added token: normalized ones decode to their normalized content.
    private let addedText: [Int: String]
    /// The contents of the special tokens, which `decode(skipSpecialTokens: true)` drops by text.
    private let specialContents: Set<String>

    /// Reads a tokenizer from a `tokenizer.json` file or a folder holding one.
    public convenience init(contentsOf path: String) throws(TokenizerError) {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw .notFound(path: path) }
        let file = isFolder.boolValue ? (path as NSString).appendingPathComponent("tokenizer.json") : path
        guard FileManager.default.fileExists(atPath: file) else { throw .notFound(path: path) }
        let configFile = ((file as NSString).deletingLastPathComponent as NSString).appendingPathComponent("tokenizer_config.json")
        let json = try JSONValue.read(contentsOf: file, error: TokenizerError.json)
        var config = TokenizerConfig()
        if FileManager.default.fileExists(atPath: configFile) {
            config = try TokenizerConfig(JSONNode(value: try JSONValue.read(contentsOf: configFile, error: TokenizerError.json), file: configFile, path: ""))
        }
        try self.init(json: json, path: file, config: config)
    }

    /// Builds a tokenizer from the parsed JSON of a tokenizer.json (`path` names it in errors).
    public init(json: JSONValue, path: String, config: TokenizerConfig = TokenizerConfig()) throws(TokenizerError) {
        let root = JSONNode(value: json, file: path, path: "")
        self.path = path
        self.config = config
        model = try makeModel(try root.required("model"))
        normalizer = try root.optional("normalizer").map { (n) throws(TokenizerError) in try makeNormalizer(n) }
        preTokenizer = try root.optional("pre_tokenizer").map { (n) throws(TokenizerError) in try makePreTokenizer(n) }
        postProcessor = try root.optional("post_processor").map { (n) throws(TokenizerError) in try makePostProcessor(n) }
        decoder = try root.optional("decoder").map { (n) throws(TokenizerError) in try makeDecoder(n) }
        let written = try (root.optional("added_tokens") == nil ? [] : root.array("added_tokens"))
            .map { (n) throws(TokenizerError) in try AddedToken(n) }
        let model = self.model, normalizer = self.normalizer
        addedTokens = assignAddedTokenIds(written, vocabularyId: { model.id(of: $0) }, vocabularyCount: model.vocabularyCount)
        addedByContent = Dictionary(addedTokens.map { ($0.content, $0) }, uniquingKeysWith: { _, last in last })
        addedText = Dictionary(addedTokens.map { ($0.id, $0.normalized ? normalizer?.normalize($0.content) ?? $0.content : $0.content) },
                               uniquingKeysWith: { _, last in last })
        specialContents = Set(addedTokens.filter(\.special).map(\.content))
        rawMatcher = AddedTokenMatcher(addedTokens.filter { !$0.normalized }.map { ($0.content, $0) })
        normalizedMatcher = AddedTokenMatcher(addedTokens.filter(\.normalized).map { (normalizer?.normalize($0.content) ?? $0.content, $0) })
    }

    /// The number of ids: the model's vocabulary and the added tokens.
    public var vocabularySize: Int { max(model.tokens.count, (addedTokens.map(\.id).max() ?? -1) + 1) }

    /// The id of a token (an added token or a vocabulary entry), if there is one.
    public func id(of token: String) -> Int? {
        if let added = addedByContent[token] { return added.id }
        return model.id(of: token)
    }

    /// The text of a token id as decoding sees it (an added token's, else the vocabulary's).
    public func token(of id: Int) -> String? {
        if let added = addedText[id] { return added }
        return id >= 0 && id < model.tokens.count ? model.tokens[id] : nil
    }

    /// The id of the beginning-of-sequence token named in tokenizer_config.json.
    public var bosTokenId: Int? { config.bosToken.flatMap(id(of:)) }
    /// The id of the end-of-sequence token named in tokenizer_config.json.
    public var eosTokenId: Int? { config.eosToken.flatMap(id(of:)) }

    /// The ids of `text`; `addSpecialTokens` lets the post-processor add its BOS/EOS template.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        let bytes = Array(text.utf8)
        for (range, token) in rawMatcher.split(bytes[...]) {
            if let token { ids.append(token.id); continue }
            let normalized = normalizer.map { Array($0.normalize(String(decoding: bytes[range], as: UTF8.self)).utf8)[...] } ?? bytes[range]
            for (r, t) in normalizedMatcher.split(normalized) {
                if let t { ids.append(t.id); continue }
                encodeSegment(normalized[r], atOrigin: range.lowerBound == 0 && r.lowerBound == normalized.startIndex, into: &ids)
            }
        }
        if addSpecialTokens, let postProcessor { ids = postProcessor.process(ids) }
        return ids
    }

    /// Pre-tokenizes and encodes text with no added token in it.
    private func encodeSegment(_ text: ArraySlice<UInt8>, atOrigin: Bool, into ids: inout [Int]) {
        guard !text.isEmpty else { return }
        var pieces = PreTokenized(pieces: [Piece(bytes: text, atOrigin: atOrigin)])
        preTokenizer?.preTokenize(&pieces)
        for piece in pieces.pieces { model.tokenize(piece.bytes, byteLevel: pieces.byteLevel, into: &ids) }
    }

    /// The ids of many texts, encoded in parallel; the result does not depend on the thread count.
    public func encodeBatch(_ texts: [String], addSpecialTokens: Bool = true) -> [[Int]] {
        var results = [[Int]](repeating: [], count: texts.count)
        results.withUnsafeMutableBufferPointer { buffer in
            let out = SendablePointer(buffer.baseAddress!)
            parallelChunks(texts.count, minimumChunk: 256) { range in
                for k in range { (out.base + k).initialize(to: self.encode(texts[k], addSpecialTokens: addSpecialTokens)) }
            }
        }
        return results
    }

    /// The text of `ids`; ids outside the vocabulary are skipped, as tokenizers does.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            // As tokenizers does: unknown ids are skipped, and special tokens are recognised by their text.
            guard let token = token(of: id), !(skipSpecialTokens && specialContents.contains(token)) else { continue }
            tokens.append(token)
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decodeChain(tokens).joined()
    }
}
