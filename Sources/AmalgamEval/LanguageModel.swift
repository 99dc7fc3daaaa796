import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import AmalgamTokenizer

/// A model with what text needs: its tokenizer and chat templates, all from one `ModelSource` (a folder,
/// a `.safetensors` file or a Llama `.gguf`, whose tokenizer and templates come from its metadata).
/// `eval`, `generate`, `finetune` and `dam` open models through it; `precision` says how the engine holds
/// the weights (nil: a GGUF's dequantized to f32, as `finetune` and `dam` need them).
public struct LanguageModel {
    /// Where the model came from.
    public let source: ModelSource
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let templates: ChatTemplateSet

    /// Loads the model, its tokenizer and its chat templates; throws the `CheckpointError`, `ModelError` or
    /// `TokenizerError` naming the file at fault.
    public init(source: ModelSource, precision: WeightPrecision? = nil) throws {
        self.source = source
        model = try LlamaModel(source: source, precision: precision)
        tokenizer = try LanguageModel.tokenizer(of: source)
        templates = try LanguageModel.chatTemplates(of: source)
    }

    /// Opens `path` (`ModelSource.open`) and loads it.
    public init(path: String, precision: WeightPrecision? = nil) throws {
        try self.init(source: ModelSource.open(path), precision: precision)
    }

    /// The model's tokenizer: tokenizer.json and tokenizer_config.json of its folder, or for a GGUF the
    /// ones rebuilt from its `tokenizer.ggml.*` metadata (as `amalgam convert` writes them).
    public static func tokenizer(of source: ModelSource) throws(TokenizerError) -> Tokenizer {
        if let folder = source.companionFolder { return try Tokenizer(contentsOf: folder) }
        let origin = source.path + " (tokenizer.ggml.*)"
        guard let json = source.companionText("tokenizer.json") else { throw .notFound(path: source.path) }
        let config: TokenizerConfig
        if let text = source.companionText("tokenizer_config.json") {
            let value: JSONValue
            do { value = try JSONValue.parse(text) } catch { throw .invalidJSON(path: origin, error: error) }
            config = try TokenizerConfig(json: value, path: origin)
        } else {
            config = TokenizerConfig()
        }
        let value: JSONValue
        do { value = try JSONValue.parse(json) } catch { throw .invalidJSON(path: origin, error: error) }
        return try Tokenizer(json: value, path: origin, config: config)
    }

    /// The model's chat templates: its folder's (`chat_template.jinja`, tokenizer_config.json, …) or a
    /// GGUF's `tokenizer.chat_template*` metadata.
    public static func chatTemplates(of source: ModelSource) throws(TokenizerError) -> ChatTemplateSet {
        if let metadata = source.ggufStringMetadata { return ChatTemplateSet(ggufMetadata: metadata, path: source.path) }
        if let folder = source.companionFolder { return try ChatTemplateSet(folder: folder) }
        return try ChatTemplateSet(texts: source.companionTexts(), origin: source.path + ": ")
    }
}
