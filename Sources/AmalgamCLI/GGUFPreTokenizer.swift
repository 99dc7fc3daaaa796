import AmalgamCheckpoint
import AmalgamTokenizer
import Foundation

/// The `tokenizer.ggml.pre` of a GGUF written from a Hugging Face folder: the name a GGUF input carried
/// (`kept`), else the one llama.cpp's converter would choose for the folder's tokenizer; when no known
/// tokenizer matches, `default` and a printed warning.
func llamaCppPreTokenizer(folder: String, kept: String? = nil) throws -> String {
    if let kept, !kept.isEmpty { return kept }
    guard FileManager.default.fileExists(atPath: folder + "/tokenizer.json") else { return LlamaCppPreTokenizer.fallback }
    let choice = LlamaCppPreTokenizer.name(for: try Tokenizer(contentsOf: folder))
    if let warning = choice.warning { printError("warning: " + warning) }
    return choice.name
}

/// The `tokenizer.ggml.pre` of a GGUF file, if `path` is one and carries it.
func ggufPreTokenizer(of path: String) throws -> String? {
    guard path.lowercased().hasSuffix(".gguf") else { return nil }
    return try GGUFFile(path: path)["tokenizer.ggml.pre"]?.stringValue
}
