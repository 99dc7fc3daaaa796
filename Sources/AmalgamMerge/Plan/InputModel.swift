import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// An input checkpoint opened for merging: its tensors (lazily) and its configuration.
public struct OpenedModel: Sendable {
    /// The path as the config names it.
    public let reference: String
    /// The resolved path on disk.
    public let path: String
    public let tensors: any TensorSource
    public let config: ModelConfig
    /// Companion files (tokenizer, generation config) present next to the weights.
    public let companions: [String]
    /// Files made for a checkpoint that has none on disk (a GGUF's tokenizer), by name.
    public let generatedFiles: [(name: String, text: String)]

    /// Number of transformer layers, from the config or else from tensor names.
    public var layerCount: Int {
        config.numHiddenLayers ?? ((tensors.tensorInfos.compactMap { TensorName($0.name).layer }.max() ?? -1) + 1)
    }

    /// Opens a model folder. `relativeTo` is tried for relative paths that do not exist as given
    /// (configs that name models relative to themselves).
    public static func open(_ reference: String, relativeTo base: String? = nil) throws(MergeError) -> OpenedModel {
        let fm = FileManager.default
        var path = reference
        if !fm.fileExists(atPath: path), !reference.hasPrefix("/"), let base {
            let candidate = (base as NSString).appendingPathComponent(reference)
            if fm.fileExists(atPath: candidate) { path = candidate }
        }
        do { path = try HubCache.resolve(path) } catch { throw .checkpoint(.hub(error)) }  // org/name[@revision]
        guard fm.fileExists(atPath: path) else {
            throw .config(path: reference, key: "model", reason: "no such folder or file; Amalgam reads local model folders (safetensors) and .gguf files — download the model first (e.g. `huggingface-cli download \(reference) --local-dir DIR`)")
        }
        do {
            if path.lowercased().hasSuffix(".gguf") {
                // A llama.cpp checkpoint: HF names, q/k un-permuted, quantized tensors dequantized as read.
                let source = try GGUFLlamaSource(path: path)
                let embedding = source.info("model.embed_tokens.weight")?.dtype ?? .f32
                let config = try GGUFLlamaConvert.huggingFaceConfig(source.file, dtype: embedding, tied: source.info("lm_head.weight") == nil)
                let tokenizer = try GGUFLlamaTokenizer.huggingFaceFiles(from: source.file, contextLength: source.file["llama.context_length"]?.intValue)
                return OpenedModel(reference: reference, path: path, tensors: source, config: config, companions: [],
                                   generatedFiles: [("tokenizer.json", tokenizer.tokenizer.pythonText(sortKeys: false) + "\n"),
                                                    ("tokenizer_config.json", tokenizer.config.pythonText(sortKeys: false) + "\n")])
            }
            let folder = try ModelFolder(path: path)
            return OpenedModel(reference: reference, path: path, tensors: folder.weights, config: folder.config,
                               companions: folder.companions, generatedFiles: [])
        } catch {
            throw .checkpoint(error)
        }
    }
}
