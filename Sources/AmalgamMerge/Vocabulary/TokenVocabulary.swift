import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// A model's tokens and their ids, read from its `tokenizer.json` (model vocabulary plus added tokens),
/// without the ids at or past the config's `vocab_size` (padding that has no embedding row).
public struct TokenVocabulary: Sendable {
    /// Token text → id.
    public let ids: [String: Int]
    /// Tokens in id order (the order `get_vocab()` gives when sorted by id).
    public let tokens: [String]
    /// The added-token entries of tokenizer.json, by content, as written there.
    public let addedTokens: [String: JSONObject]
    /// The parsed tokenizer.json, for writing a merged tokenizer.
    public let document: JSONObject

    public var count: Int { ids.count }

    /// The vocabulary of an input model: its `tokenizer.json` (read from its folder, or the one made from
    /// a GGUF's metadata); ids ≥ the config's `vocab_size` are left out.
    public init(model: ModelSource) throws(MergeError) {
        let path = model.path + "/tokenizer.json"
        let vocabSize = model.config.vocabSize
        let json: JSONValue
        do {
            guard let bytes = try model.companionBytes("tokenizer.json") else {
                throw MergeError.config(path: model.path, key: "tokenizer_source", reason: "no tokenizer.json in this model folder; vocabulary merging needs one (convert the tokenizer with transformers' AutoTokenizer(...).save_pretrained)")
            }
            json = try JSONValue.parse(bytes)
        } catch let error as MergeError {
            throw error
        } catch {
            throw .config(path: path, key: "(file)", reason: "\(error)")
        }
        guard case let .object(doc) = json, let vocab = doc["model"]?["vocab"]?.objectValue else {
            throw .config(path: path, key: "model.vocab", reason: "missing; only tokenizers with a vocabulary map (BPE, WordPiece) can be merged")
        }
        var ids: [String: Int] = [:]
        let limit = vocabSize ?? Int.max
        for (token, value) in vocab {
            guard let id = value.intValue else { throw .config(path: path, key: "model.vocab.\(token)", reason: "id is not an integer") }
            if id < limit { ids[token] = id }
        }
        var added: [String: JSONObject] = [:]
        for entry in doc["added_tokens"]?.arrayValue ?? [] {
            guard let o = entry.objectValue, let content = o["content"]?.stringValue, let id = o["id"]?.intValue else { continue }
            if id < limit {
                ids[content] = id
                added[content] = o
            }
        }
        self.ids = ids
        tokens = ids.sorted { $0.value < $1.value }.map(\.key)
        addedTokens = added
        document = doc
    }
}

/// The output vocabulary of a merge and, for every input model, where each output token's row is.
public struct VocabularyPlan: Sendable {
    /// Output token text → output id.
    public let vocabulary: [String: Int]
    /// Output size after padding to `pad_to_multiple_of`.
    public let paddedSize: Int
    /// Per referenced model (plan model index): output id → row in that model, or -1.
    public let permutations: [[Int]]
    /// Where rows of tokens that some model lacks come from, per output id (only ids needing one).
    public let defaults: [Int: RowSource]
    /// Tokens whose configured source must replace every model's own row (`force: true`).
    public let forced: Set<Int>
    /// The tokenizer.json to write (nil: copy the source model's tokenizer files unchanged).
    public let tokenizerDocument: JSONObject?
    /// Index of the model whose tokenizer files are the starting point.
    public let tokenizerDonor: Int
    /// Added tokens to record in tokenizer_config.json's `added_tokens_decoder` (id → entry).
    public let newAddedTokens: [(id: Int, entry: JSONObject)]

    /// Where a default row comes from.
    public enum RowSource: Sendable, Equatable {
        case zero
        /// A row of one model (plan model index, row in that model).
        case model(Int, row: Int)
        /// The mean of the rows of the models that have the token.
        case average
    }
}
