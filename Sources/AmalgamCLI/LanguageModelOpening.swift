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
            let generic = try source.huggingFaceConfig(dtype: .f32)
            model = try LlamaModel(config: ModelConfig(raw: generic.raw, path: path), weights: source)
            let files = try GGUFLlamaTokenizer.huggingFaceFiles(from: source.file, contextLength: source.file["llama.context_length"]?.intValue)
            tokenizer = try Tokenizer(json: files.tokenizer, path: path + " (tokenizer.ggml.*)",
                                      config: TokenizerConfig(json: files.config, path: path + " (tokenizer.ggml.*)"))
            var named: [String: ChatTemplateSet.Entry] = [:]
            for entry in source.file.metadata where entry.key.hasPrefix("tokenizer.chat_template.") {
                if let text = entry.value.stringValue {
                    named[String(entry.key.dropFirst("tokenizer.chat_template.".count))] = .init(source: text, origin: "\(path): \(entry.key)")
                }
            }
            let main = source.file["tokenizer.chat_template"]?.stringValue.map { ChatTemplateSet.Entry(source: $0, origin: "\(path): tokenizer.chat_template") }
            templates = ChatTemplateSet(defaultTemplate: main, named: named)
        } else {
            model = try LlamaModel(folder: path)
            tokenizer = try Tokenizer(contentsOf: path)
            templates = try ChatTemplateSet(folder: path)
        }
    }

    /// The names and values every chat template sees besides the messages: the special tokens' text.
    var templateVariables: [String: JSONValue] {
        var v: [String: JSONValue] = [:]
        let c = tokenizer.config
        for (name, token) in [("bos_token", c.bosToken), ("eos_token", c.eosToken), ("unk_token", c.unkToken), ("pad_token", c.padToken)] {
            if let token { v[name] = .string(token) }
        }
        return v
    }
}
