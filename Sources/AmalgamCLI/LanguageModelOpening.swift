import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import AmalgamTokenizer
import Foundation

/// A model with what text generation needs: its tokenizer and chat templates, from a Hugging Face folder
/// or a Llama `.gguf` file (weights dequantized to f32, tokenizer rebuilt from the metadata as
/// `amalgam convert` does).
struct LanguageModelBundle {
    let model: LlamaModel
    let tokenizer: Tokenizer
    let templates: ChatTemplateSet
    /// The model's path, for messages.
    let path: String

    init(path: String) throws {
        self.path = path
        if path.lowercased().hasSuffix(".gguf") {
            let source = try GGUFLlamaSource(path: path)
            model = try Self.model(source)
            let files = try GGUFLlamaTokenizer.huggingFaceFiles(from: source.file, contextLength: source.file["llama.context_length"]?.intValue)
            tokenizer = try Tokenizer(json: files.tokenizer, path: path + " (tokenizer.ggml.*)",
                                      config: TokenizerConfig(json: files.config, path: path + " (tokenizer.ggml.*)"))
            templates = ChatTemplateSet(ggufMetadata: source.file.stringMetadata, path: path)
        } else {
            model = try LlamaModel(folder: path)
            tokenizer = try Tokenizer(contentsOf: path)
            templates = try ChatTemplateSet(folder: path)
        }
    }

    /// The model of a Llama GGUF alone (weights dequantized to f32): enough for token ids in and out, so a
    /// GGUF without a tokenizer (`tokenizer.ggml.model` = `none`) works too.
    static func model(_ source: GGUFLlamaSource) throws -> LlamaModel {
        let generic = try source.huggingFaceConfig(dtype: .f32)
        return try LlamaModel(config: ModelConfig(raw: generic.raw, path: source.file.path), weights: source)
    }
}
