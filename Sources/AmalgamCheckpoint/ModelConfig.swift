import AmalgamCore

/// A model's `config.json`: every field kept as read (so unknown ones are written back unchanged),
/// with typed accessors for what Amalgam uses.
public struct ModelConfig: Sendable, Equatable {
    /// All fields, in file order.
    public var raw: JSONObject
    /// Where it was read from, for messages.
    public let path: String

    public init(raw: JSONObject, path: String) {
        self.raw = raw
        self.path = path
    }

    /// Reads and parses `config.json`.
    public init(contentsOf path: String) throws(CheckpointError) {
        let json = try JSONValue.read(contentsOf: path, error: CheckpointError.json)
        guard case let .object(o) = json else { throw .invalidConfig(path: path, key: "(file)", reason: "not a JSON object") }
        self.init(raw: o, path: path)
    }

    /// The text transformers would write: `json.dumps(config, indent=2, sort_keys=True) + "\n"`.
    public func jsonText() -> String { JSONValue.object(raw).pythonText() + "\n" }

    public var modelType: String? { raw["model_type"]?.stringValue }
    public var architectures: [String] { raw["architectures"]?.arrayValue?.compactMap(\.stringValue) ?? [] }

    /// The number of transformer layers, if the config states it.
    public var numHiddenLayers: Int? {
        get { (raw["num_hidden_layers"] ?? raw["n_layer"] ?? raw["num_layers"])?.intValue }
        set { raw["num_hidden_layers"] = newValue.map { .int($0) } }
    }

    public var vocabSize: Int? {
        get { raw["vocab_size"]?.intValue }
        set { raw["vocab_size"] = newValue.map { .int($0) } }
    }

    /// `dtype` (transformers 5) or `torch_dtype` (earlier).
    public var dtype: DType? {
        get { (raw["dtype"] ?? raw["torch_dtype"])?.stringValue.flatMap { DType(torchName: $0) } }
        set {
            let key = raw["torch_dtype"] != nil && raw["dtype"] == nil ? "torch_dtype" : "dtype"
            raw[key] = newValue.map { .string($0.torchName) }
        }
    }

    /// The fields as the configuration reader reads them: typed getters whose errors name this file and the key
    /// path; unknown keys are Hugging Face's business and pass, a null reads as absent.
    public func fields<E: ConfigErrorReporting>(as _: E.Type = E.self) -> ConfigMapping<E> { ConfigMapping(json: raw, path: path) }

    /// Whether `model_type` is one of the Llama-family types Amalgam runs (llama, mistral, qwen2, qwen3).
    public var isLlamaFamily: Bool { LlamaConfig.modelTypes.contains(modelType ?? "") }

    /// The typed Llama-family configuration; throws naming the missing or bad key.
    public func llama() throws(CheckpointError) -> LlamaConfig { try LlamaConfig(self) }

    /// The config of the text decoder: this one, or `text_config` of a Gemma 3 multimodal checkpoint
    /// (`model_type` gemma3, whose vision tower the engine does not run). GPT-2's names (`n_embd`, `n_layer`,
    /// `n_head`, `n_positions`, `n_inner`, `layer_norm_epsilon`) are given their common names here.
    public func textDecoder() throws(CheckpointError) -> ModelConfig {
        if modelType == "gpt2" {
            var t = raw
            for (from, to) in [("n_embd", "hidden_size"), ("n_layer", "num_hidden_layers"), ("n_head", "num_attention_heads"),
                               ("n_positions", "max_position_embeddings"), ("layer_norm_epsilon", "rms_norm_eps")] where t[to] == nil {
                t[to] = t[from]
            }
            if t["intermediate_size"] == nil {
                t["intermediate_size"] = t["n_inner"].flatMap { $0.isNull ? nil : $0 } ?? .int(4 * (t["hidden_size"]?.intValue ?? 0))
            }
            if t["tie_word_embeddings"] == nil { t["tie_word_embeddings"] = .bool(true) }
            if t["rms_norm_eps"] == nil { t["rms_norm_eps"] = .double(1e-5) }
            return ModelConfig(raw: t, path: path)
        }
        guard modelType == "gemma3" else { return self }
        guard var text = raw["text_config"]?.objectValue else {
            throw .invalidConfig(path: path, key: "text_config", reason: "missing; a gemma3 (multimodal) config.json keeps its text model's settings there")
        }
        if text["model_type"] == nil { text["model_type"] = .string("gemma3_text") }
        return ModelConfig(raw: text, path: path + " (text_config)")
    }

    /// The typed configuration of any decoder the engine runs (`LlamaConfig.decoderTypes`), read from
    /// `textDecoder()`; throws naming the missing or bad key, or listing the supported types.
    public func decoder() throws(CheckpointError) -> LlamaConfig {
        try LlamaConfig(textDecoder(), accepting: LlamaConfig.decoderTypes, kind: "a model type the engine runs")
    }
}

/// The configuration of a Llama-family decoder (llama, mistral, qwen2, qwen3).
public struct LlamaConfig: Sendable, Equatable {
    public static let modelTypes: Set<String> = ["llama", "mistral", "qwen2", "qwen3"]
    /// Every decoder the engine runs: the Llama family and the families that differ from it only by
    /// per-family options (norms, activation, soft-caps, scales, fused projections, partial rotary).
    /// `gemma3` is the multimodal checkpoint, of which the engine runs the text model.
    public static let decoderTypes: Set<String> = modelTypes.union(["gemma2", "gemma3_text", "gemma3", "olmo2", "granite", "phi3", "gpt2", "mixtral", "qwen2_moe", "qwen3_moe"])

    public var modelType: String
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var vocabSize: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    /// Rope scaling parameters (`rope_scaling`, or the non-default part of `rope_parameters`).
    public var ropeScaling: JSONObject?
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool
    public var slidingWindow: Int?
    public var attentionBias: Bool
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]

    init(_ config: ModelConfig, accepting types: Set<String> = modelTypes,
         kind: String = "a Llama-family type") throws(CheckpointError) {
        let m = config.fields(as: CheckpointError.self)
        func positive(_ key: String) throws(CheckpointError) -> Int {
            try m.require(key, "an integer ≥ 1; a \(config.modelType ?? "Llama-family") config.json must have it").int(minimum: 1)
        }
        let type = try m.require("model_type", "the model's type, a string").string()
        guard types.contains(type) else {
            throw m.fail("model_type", "'\(type)' is not \(kind) (accepted: \(types.sorted().joined(separator: ", ")))")
        }
        modelType = type
        hiddenSize = try positive("hidden_size")
        intermediateSize = try positive("intermediate_size")
        numHiddenLayers = try positive("num_hidden_layers")
        numAttentionHeads = try positive("num_attention_heads")
        numKeyValueHeads = m["num_key_value_heads"] != nil ? try positive("num_key_value_heads") : numAttentionHeads
        headDim = m["head_dim"] != nil ? try positive("head_dim") : hiddenSize / numAttentionHeads
        vocabSize = try positive("vocab_size")
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw m.fail("num_key_value_heads", "\(numKeyValueHeads) does not divide num_attention_heads (\(numAttentionHeads))")
        }
        rmsNormEps = try m.double("rms_norm_eps") ?? 1e-6
        let ropeParameters = try m.value("rope_parameters")?.mapping()
        ropeTheta = try (m.value("rope_theta") ?? ropeParameters?.value("rope_theta"))?.double() ?? 10000
        if try m.value("rope_scaling")?.mapping() != nil, let scaling = config.raw["rope_scaling"]?.objectValue {
            ropeScaling = scaling
        } else if let kind = try ropeParameters?.string("rope_type"), kind != "default" {
            ropeScaling = config.raw["rope_parameters"]?.objectValue
        } else {
            ropeScaling = nil
        }
        maxPositionEmbeddings = try m.int("max_position_embeddings") ?? 2048
        tieWordEmbeddings = try m.bool("tie_word_embeddings") ?? false
        slidingWindow = try m.int("sliding_window")
        attentionBias = try m.bool("attention_bias") ?? (type == "qwen2")
        bosTokenId = try m.int("bos_token_id")
        if let e = m.value("eos_token_id") {
            if case .sequence = e.node {
                var ids: [Int] = []
                for item in try e.items() { ids.append(try item.int()) }
                eosTokenIds = ids
            } else {
                eosTokenIds = [try e.int()]
            }
        } else {
            eosTokenIds = []
        }
    }
}
