import AmalgamCore

/// A gpt2-style (byte-level BPE) tokenizer between GGUF metadata (`tokenizer.ggml.*`) and Hugging Face
/// files (`tokenizer.json`, `tokenizer_config.json`), built as transformers' GGUF loader builds it
/// (`integrations/gguf/gguf_tokenizer_mapping.py`): control tokens become special added tokens,
/// user-defined ones plain added tokens, and known `tokenizer.ggml.pre` names get their split regex.
public enum GGUFLlamaTokenizer {
    /// llama.cpp token types.
    static let normal: Int32 = 1, control: Int32 = 3, userDefined: Int32 = 4, unused: Int32 = 5

    static let llama3Split = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Split = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// `tokenizer.ggml.pre` values whose split regex transformers knows (the rest use GPT-2's ByteLevel regex).
    static let splits: [String: String] = [
        "llama3": llama3Split, "llama-v3": llama3Split, "llama-bpe": llama3Split, "falcon3": llama3Split,
        "smaug-bpe": llama3Split, "dbrx": llama3Split, "qwen2": qwen2Split, "deepseek-r1-qwen": qwen2Split,
    ]

    /// GPT-2's byte → printable character table (`bytes_to_unicode`).
    static let byteToChar: [Character] = {
        let printable = Set(Array(33...126) + Array(161...172) + Array(174...255))
        var table: [Character] = []
        var extra = 0
        for b in 0..<256 {
            if printable.contains(b) {
                table.append(Character(Unicode.Scalar(UInt8(b))))
            } else {
                table.append(Character(Unicode.Scalar(UInt32(256 + extra))!))
                extra += 1
            }
        }
        return table
    }()
    static let alphabet: Set<Character> = Set(byteToChar)

    /// The token spelled in the byte alphabet (tokens already spelled so are kept).
    static func byteLevelSpelling(_ token: String) -> String {
        if token.allSatisfy({ alphabet.contains($0) }) { return token }
        return String(token.utf8.map { byteToChar[Int($0)] })
    }

    /// `tokenizer.json` and `tokenizer_config.json` for the GGUF's tokenizer.
    public static func huggingFaceFiles(from file: GGUFFile, contextLength: Int?) throws(CheckpointError) -> (tokenizer: JSONValue, config: JSONValue) {
        let path = file.path
        let model = file["tokenizer.ggml.model"]?.stringValue
        guard model == "gpt2" else {
            throw .gguf(.unsupportedModel(path: path, reason: "tokenizer.ggml.model is '\(model ?? "missing")'; Amalgam rebuilds only gpt2-style (byte-level BPE) tokenizers"))
        }
        guard let tokens = file["tokenizer.ggml.tokens"]?.arrayValue?.compactMap(\.stringValue), !tokens.isEmpty else {
            throw .gguf(.missingKey(path: path, key: "tokenizer.ggml.tokens"))
        }
        let types = file["tokenizer.ggml.token_type"]?.arrayValue?.compactMap { $0.intValue.map(Int32.init) } ?? []
        let merges = file["tokenizer.ggml.merges"]?.arrayValue?.compactMap(\.stringValue) ?? []

        var vocab = JSONObject()
        for (id, token) in tokens.enumerated() { vocab[byteLevelSpelling(token)] = .int(id) }
        var added: [JSONValue] = []
        for (id, token) in tokens.enumerated() where id < types.count {
            let special: Bool
            if types[id] == control, token.allSatisfy({ alphabet.contains($0) }) {
                special = true
            } else if types[id] == userDefined, vocab[token] != nil {
                special = false
            } else { continue }
            added.append(.object(JSONObject([
                ("id", .int(id)), ("content", .string(token)), ("single_word", .bool(false)), ("lstrip", .bool(false)),
                ("rstrip", .bool(false)), ("normalized", .bool(false)), ("special", .bool(special)),
            ])))
        }
        let pre = file["tokenizer.ggml.pre"]?.stringValue ?? "default"
        let byteLevel = { (useRegex: Bool, prefix: Bool) in
            JSONValue.object(JSONObject([("type", .string("ByteLevel")), ("add_prefix_space", .bool(prefix)),
                                         ("trim_offsets", .bool(true)), ("use_regex", .bool(useRegex))]))
        }
        let preTokenizer: JSONValue
        if let regex = splits[pre] {
            preTokenizer = .object(JSONObject([("type", .string("Sequence")), ("pretokenizers", .array([
                .object(JSONObject([("type", .string("Split")), ("pattern", .object(JSONObject([("Regex", .string(regex))]))),
                                    ("behavior", .string("Isolated")), ("invert", .bool(false))])),
                byteLevel(false, false),
            ]))]))
        } else {
            preTokenizer = byteLevel(true, false)
        }
        let sequence = { (id: String, typeID: Int) in
            JSONValue.object(JSONObject([("Sequence", .object(JSONObject([("id", .string(id)), ("type_id", .int(typeID))])))]))
        }
        let postProcessor = JSONValue.object(JSONObject([
            ("type", .string("TemplateProcessing")),
            ("single", .array([sequence("A", 0)])),
            ("pair", .array([sequence("A", 0), sequence("B", 1)])),
            ("special_tokens", .object(JSONObject())),
        ]))
        let mergePairs: [JSONValue] = merges.map { m in
            let parts = m.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            return .array(parts.map { .string($0) })
        }
        let bpe = JSONValue.object(JSONObject([
            ("type", .string("BPE")), ("dropout", .null), ("unk_token", .null), ("continuing_subword_prefix", .string("")),
            ("end_of_word_suffix", .string("")), ("fuse_unk", .bool(false)), ("byte_fallback", .bool(false)),
            ("ignore_merges", .bool(false)), ("vocab", .object(vocab)), ("merges", .array(mergePairs)),
        ]))
        let tokenizer = JSONValue.object(JSONObject([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null), ("added_tokens", .array(added)),
            ("normalizer", .null), ("pre_tokenizer", preTokenizer), ("post_processor", postProcessor),
            ("decoder", byteLevel(true, true)), ("model", bpe),
        ]))

        var config = JSONObject()
        config["add_bos_token"] = .bool(file["tokenizer.ggml.add_bos_token"]?.boolValue ?? false)
        if let eosFlag = file["tokenizer.ggml.add_eos_token"]?.boolValue { config["add_eos_token"] = .bool(eosFlag) }
        for (name, key) in [("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id")] {
            if let id = file["tokenizer.ggml.\(key)"]?.intValue, id >= 0, id < tokens.count { config[name] = .string(tokens[id]) }
        }
        if let template = file["tokenizer.chat_template"]?.stringValue { config["chat_template"] = .string(template) }
        config["clean_up_tokenization_spaces"] = .bool(false)
        if let contextLength { config["model_max_length"] = .int(contextLength) }
        config["tokenizer_class"] = .string("PreTrainedTokenizerFast")
        return (tokenizer, .object(config))
    }

    /// The `tokenizer.ggml.*` metadata for a Hugging Face byte-level BPE tokenizer, in llama.cpp's order.
    /// `tokenizerConfig` supplies the special tokens, `add_bos_token` and the chat template; `pre` is the
    /// `tokenizer.ggml.pre` name (one llama.cpp knows: see `LlamaCppPreTokenizer` in AmalgamTokenizer);
    /// the token list is padded to `vocabularySize` (the embedding's rows) with unused `[PAD<id>]` tokens.
    public static func metadata(tokenizer: JSONValue, tokenizerConfig: JSONObject, chatTemplate: String?, pre: String,
                                vocabularySize: Int? = nil, bosTokenID: Int?, eosTokenID: Int?,
                                path: String) throws(CheckpointError) -> [(key: String, value: GGUFValue)] {
        guard let model = tokenizer["model"], model["type"]?.stringValue == "BPE", let vocab = model["vocab"]?.objectValue else {
            throw .gguf(.unsupportedModel(path: path, reason: "tokenizer.json is not a BPE tokenizer; Amalgam writes only gpt2-style (byte-level BPE) tokenizers to GGUF"))
        }
        var byID: [Int: String] = [:]
        for (token, id) in vocab { if let i = id.intValue { byID[i] = token } }
        var types: [Int: Int32] = [:]
        for a in tokenizer["added_tokens"]?.arrayValue ?? [] {
            guard let id = a["id"]?.intValue, let content = a["content"]?.stringValue else { continue }
            byID[id] = content
            types[id] = a["special"]?.boolValue == true ? control : userDefined
        }
        let count = max((byID.keys.max() ?? -1) + 1, vocabularySize ?? 0)
        var tokens: [GGUFValue] = []
        var tokenTypes: [GGUFValue] = []
        var idOf: [String: Int] = [:]
        for id in 0..<count {
            // llama.cpp's converter fills ids the tokenizer does not use with unused "[PAD<id>]" tokens.
            let token = byID[id] ?? "[PAD\(id)]"
            tokens.append(.string(token))
            tokenTypes.append(.int32(byID[id] == nil ? unused : (types[id] ?? normal)))
            idOf[token] = idOf[token] ?? id
        }
        let merges: [GGUFValue] = (model["merges"]?.arrayValue ?? []).compactMap { m in
            if let s = m.stringValue { return .string(s) }
            if let pair = m.arrayValue?.compactMap(\.stringValue), pair.count == 2 { return .string(pair[0] + " " + pair[1]) }
            return nil
        }
        // Without the key, the post-processor says whether a BOS token is added (gguf-py's SpecialVocab reads it so).
        let addsBOS = tokenizer["post_processor"]?["single"]?.arrayValue?.first?["SpecialToken"] != nil
        func id(_ key: String) -> Int? {
            let v = tokenizerConfig[key]
            if let s = v?.stringValue { return idOf[s] }
            if let s = v?["content"]?.stringValue { return idOf[s] }
            return nil
        }
        var out: [(String, GGUFValue)] = [
            ("tokenizer.ggml.add_space_prefix", .bool(false)),
            ("tokenizer.ggml.add_bos_token", .bool(tokenizerConfig["add_bos_token"]?.boolValue ?? addsBOS)),
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .array(.string, tokens)),
            ("tokenizer.ggml.token_type", .array(.int32, tokenTypes)),
            ("tokenizer.ggml.merges", .array(.string, merges)),
        ]
        if let addsEOS = tokenizerConfig["add_eos_token"]?.boolValue { out.insert(("tokenizer.ggml.add_eos_token", .bool(addsEOS)), at: 2) }
        if let b = bosTokenID ?? id("bos_token") { out.append(("tokenizer.ggml.bos_token_id", .uint32(UInt32(b)))) }
        if let e = eosTokenID ?? id("eos_token") { out.append(("tokenizer.ggml.eos_token_id", .uint32(UInt32(e)))) }
        if let u = id("unk_token") { out.append(("tokenizer.ggml.unknown_token_id", .uint32(UInt32(u)))) }
        if let p = id("pad_token") { out.append(("tokenizer.ggml.padding_token_id", .uint32(UInt32(p)))) }
        if let t = chatTemplate ?? tokenizerConfig["chat_template"]?.stringValue { out.append(("tokenizer.chat_template", .string(t))) }
        return out
    }
}
