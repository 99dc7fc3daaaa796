import AmalgamCore
import Foundation

/// A model as every command takes it: a Hugging Face folder (one safetensors file or shards behind an
/// index), a single `.safetensors` file (config and tokenizer from its folder) or a Llama `.gguf` file.
/// It hands out its `config.json`, its tokenizer and generation files, and its tensors by Hugging Face
/// name, lazily. A GGUF is read in place and each tensor dequantized to f32 when asked for (q/k rows
/// un-permuted): the one GGUF policy, so `merge`, `eval`, `score`, `generate`, `dam` and `finetune` see
/// the same weights.
public struct ModelSource: Sendable {
    /// What the reference named on disk.
    public enum Kind: String, Sendable {
        /// A folder with `model.safetensors` (or a single weight file).
        case folder
        /// A folder whose weights are split over several safetensors files.
        case shardedFolder = "sharded folder"
        /// One `.safetensors` file; config.json and companions come from its folder.
        case safetensorsFile = "safetensors file"
        /// A llama.cpp `.gguf` file; config and tokenizer rebuilt from its metadata.
        case gguf
    }

    /// The reference as given (a path; later a Hugging Face cache reference).
    public let reference: String
    /// The resolved path on disk.
    public let path: String
    public let kind: Kind
    /// The parsed `config.json` (for a GGUF: made from its `llama.*` metadata, as `amalgam convert` writes it).
    public let config: ModelConfig
    /// The weights under their Hugging Face names, read lazily.
    public let tensors: any TensorSource
    /// The opened GGUF file, when the model is one (its string metadata holds the chat templates).
    public let gguf: GGUFFile?
    /// Companion files (tokenizer, generation config, chat templates) the model has, by file name:
    /// files next to the weights, or files made from a GGUF's metadata.
    public let companions: [String]
    /// The folder the companion files on disk are in (nil for a GGUF, whose files are made from metadata).
    public let companionFolder: String?
    /// Companion files made for a model that has none on disk (a GGUF's tokenizer), by name.
    private let generated: [String: String]

    /// Number of transformer layers, from the config or else from tensor names.
    public var layerCount: Int {
        config.numHiddenLayers ?? ((tensors.tensorInfos.compactMap { TensorName($0.name).layer }.max() ?? -1) + 1)
    }

    /// The GGUF's string metadata (`tokenizer.chat_template*` among them), nil for other kinds.
    public var ggufStringMetadata: [(key: String, value: String)]? { gguf?.stringMetadata }

    /// Opens a model. `relativeTo` is tried for relative paths that do not exist as given (configs that
    /// name models relative to themselves).
    public static func open(_ reference: String, relativeTo base: String? = nil) throws(CheckpointError) -> ModelSource {
        if let (model, adapter) = try LoRAReference.split(reference, relativeTo: base) {
            return try openWithAdapter(reference: reference, model: model, adapter: adapter, relativeTo: base)
        }
        let path = try resolve(reference, relativeTo: base)
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            let folder = try ModelFolder(path: path)
            return ModelSource(reference: reference, path: path, kind: folder.weights.files.count > 1 ? .shardedFolder : .folder,
                               config: folder.config, tensors: folder.weights, gguf: nil, companions: folder.companions,
                               companionFolder: path, generated: [:])
        }
        let lower = path.lowercased()
        if lower.hasSuffix(".gguf") { return try openGGUF(reference: reference, path: path) }
        if lower.hasSuffix(".safetensors") {
            let folder = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
            let configPath = folder + "/config.json"
            guard FileManager.default.fileExists(atPath: configPath) else {
                throw .invalidConfig(path: configPath, key: "(file)", reason: "missing; a single .safetensors file is read with the config.json of its folder (\(path))")
            }
            let file = try SafetensorsFile(path: path)
            return ModelSource(reference: reference, path: path, kind: .safetensorsFile, config: try ModelConfig(contentsOf: configPath),
                               tensors: try SafetensorsCheckpoint(path: path, files: [file]), gguf: nil,
                               companions: ModelFolder.companionFiles.filter { FileManager.default.fileExists(atPath: folder + "/" + $0) },
                               companionFolder: folder, generated: [:])
        }
        throw .file(.cannotOpen(path: path, reason: "not a model folder, a .safetensors file or a .gguf file"))
    }

    /// The path on disk of `reference`: as given, or relative to `base` when that exists instead.
    ///
    /// The one place where a reference that is not a local path is resolved: a Hugging Face reference
    /// (`org/name[@revision]`) is looked up in the Hugging Face cache, and downloaded there when missing.
    public static func resolve(_ reference: String, relativeTo base: String? = nil) throws(CheckpointError) -> String {
        let fm = FileManager.default
        if fm.fileExists(atPath: reference) { return reference }
        if !reference.hasPrefix("/"), let base {
            let candidate = (base as NSString).appendingPathComponent(reference)
            if fm.fileExists(atPath: candidate) { return candidate }
        }
        if HubReference(reference) != nil {  // org/name[@revision]: the Hugging Face cache, downloaded when missing
            do { return try HubCache.resolve(reference) } catch { throw .hub(error) }
        }
        throw .modelNotFound(reference: reference)
    }

    /// `model+adapter`: the model's files with the adapter applied to its tensors as they are read.
    private static func openWithAdapter(reference: String, model: String, adapter: String, relativeTo base: String?) throws(CheckpointError) -> ModelSource {
        let source = try open(model, relativeTo: base)
        let folder = try resolve(adapter, relativeTo: base)
        let tensors: LoRATensorSource
        do { tensors = try LoRATensorSource(base: source.tensors, adapter: LoRAAdapter(folder: folder), baseName: source.path) } catch { throw .lora(error) }
        var config = source.config
        if tensors.untiesEmbeddings { config.raw["tie_word_embeddings"] = .bool(false) }
        return ModelSource(reference: reference, path: source.path, kind: source.kind, config: config, tensors: tensors, gguf: source.gguf,
                           companions: source.companions, companionFolder: source.companionFolder, generated: source.generated)
    }

    private static func openGGUF(reference: String, path: String) throws(CheckpointError) -> ModelSource {
        let source = try GGUFLlamaSource(path: path)
        let embedding = source.info("model.embed_tokens.weight")?.dtype ?? .f32
        let generic = try source.huggingFaceConfig(dtype: embedding)
        var generated: [String: String] = [:]
        // `tokenizer.ggml.model` = `none` is a GGUF without a vocabulary (token ids in, logits out).
        if source.file["tokenizer.ggml.model"]?.stringValue != "none" {
            let tokenizer = try GGUFLlamaTokenizer.huggingFaceFiles(from: source.file, contextLength: source.file["llama.context_length"]?.intValue)
            generated = ["tokenizer.json": tokenizer.tokenizer.pythonText(sortKeys: false) + "\n",
                         "tokenizer_config.json": tokenizer.config.pythonText(sortKeys: false) + "\n"]
        }
        return ModelSource(reference: reference, path: path, kind: .gguf, config: ModelConfig(raw: generic.raw, path: path + " (llama.* metadata)"),
                           tensors: source, gguf: source.file, companions: generated.keys.sorted(),
                           companionFolder: nil, generated: generated)
    }

    /// The bytes of a companion file, or nil when the model has none by that name.
    public func companionBytes(_ name: String) throws(CheckpointError) -> [UInt8]? {
        if let text = generated[name] { return Array(text.utf8) }
        guard companions.contains(name), let companionFolder else { return nil }
        let file: MappedFile
        do { file = try MappedFile(path: companionFolder + "/" + name) } catch { throw .file(error) }
        return file.count == 0 ? [] : Array(file.bytes(offset: 0, count: file.count))
    }

    /// The text of a companion file, or nil when the model has none by that name (or it is not UTF-8).
    public func companionText(_ name: String) -> String? {
        guard let bytes = try? companionBytes(name) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Every companion file's text by name (`tokenizer.json`, `tokenizer_config.json`, …), for a tokenizer
    /// or chat templates built from texts.
    public func companionTexts() -> [String: String] {
        var texts: [String: String] = [:]
        for name in companions { texts[name] = companionText(name) }
        return texts
    }

    /// Writes the companion files into `directory` (each atomically), except those in `skipping`.
    public func writeCompanions(into directory: String, skipping: Set<String> = []) throws(CheckpointError) {
        for name in companions where !skipping.contains(name) {
            guard let bytes = try companionBytes(name) else { continue }
            do { try writeFileAtomically(bytes, to: directory + "/" + name) } catch { throw .file(error) }
        }
    }

    /// Writes `config.json` into `directory` as the model has it: its file's bytes, or for a GGUF the
    /// config made from its metadata.
    public func writeConfig(into directory: String) throws(CheckpointError) {
        do {
            if let companionFolder {
                let file = try MappedFile(path: companionFolder + "/config.json")
                try writeFileAtomically(file.count == 0 ? [] : Array(file.bytes(offset: 0, count: file.count)), to: directory + "/config.json")
            } else {
                try writeFileAtomically(config.jsonText(), to: directory + "/config.json")
            }
        } catch { throw .file(error) }
    }

    /// `eos_token_id` of `generation_config.json` (a number or a list), empty when there is none.
    public var generationEOSTokenIds: [Int] {
        guard let text = companionText("generation_config.json"), let e = (try? JSONValue.parse(text))?["eos_token_id"] else { return [] }
        return e.arrayValue?.compactMap(\.intValue) ?? e.intValue.map { [$0] } ?? []
    }
}
