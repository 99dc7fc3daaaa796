import AmalgamCore
import Foundation

extension GGUFLlamaConvert {
    /// `general.file_type` (llama.cpp's `llama_ftype`) for a file whose matrices are mostly `type`.
    static func fileType(_ type: GGMLType) -> UInt32 {
        switch type {
        case .f16: return 1
        case .q8_0: return 7
        case .bf16: return 32
        default: return 0
        }
    }

    /// The type a tensor is stored as: vectors stay F32 as llama.cpp keeps them; Q8_0 rows that do not
    /// fill whole blocks fall back to F16, as llama.cpp's converter does.
    static func storageType(shape: [Int], requested: GGMLType) -> GGMLType {
        if shape.count < 2 { return .f32 }
        if requested.blockLayout.elements > 1, shape.last! % requested.blockLayout.elements != 0 { return .f16 }
        return requested
    }

    /// Converts a Hugging Face Llama folder (or a `.safetensors` file beside its config) into a GGUF file in
    /// llama.cpp's layout: GGUF names, q/k rows permuted for llama.cpp's rope, `llama.*` and `tokenizer.ggml.*`
    /// metadata, matrices as `type` (F32, F16, BF16 or Q8_0), vectors as F32. Tensors are written in
    /// lexicographic order of their HF names. `preTokenizer` is written as `tokenizer.ggml.pre`: llama.cpp
    /// refuses a name it does not know, so give the one `LlamaCppPreTokenizer` (AmalgamTokenizer) finds for the
    /// folder's tokenizer, or a GGUF input's.
    public static func toGGUF(folder: String, output: String, type: GGMLType, name: String? = nil, preTokenizer: String = "default",
                              overwrite: Bool = false, progress: @escaping (String) -> Void = { _ in }) throws(CheckpointError) {
        guard type.canQuantize else {
            throw .gguf(.cannotQuantize(tensor: "(all)", type: type.name, reason: "Amalgam writes F32, F16, BF16 and Q8_0"))
        }
        if FileManager.default.fileExists(atPath: output), !overwrite { throw .file(.alreadyExists(path: output)) }
        let model = try ModelSource.open(folder)
        let llama = try model.config.llama()
        guard llama.modelType == "llama" else {
            throw .gguf(.unsupportedModel(path: folder, reason: "model_type '\(llama.modelType)' is not supported; Amalgam writes Llama GGUF files"))
        }
        if let scaling = llama.ropeScaling {
            let kind = scaling["rope_type"]?.stringValue ?? scaling["type"]?.stringValue ?? "?"
            throw .gguf(.unsupportedModel(path: folder, reason: "rope scaling '\(kind)' is not written to GGUF yet (llama.cpp would run the model without it); convert without GGUF output or use llama.cpp's convert_hf_to_gguf.py"))
        }
        let source = model.tensors
        var entries: [GGUFWriter.Entry] = []
        var matrixTypes: [GGMLType] = []
        for info in source.tensorInfos.sorted(by: { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }) {
            if info.name.hasSuffix("rotary_emb.inv_freq") { continue }
            if info.name == "lm_head.weight", llama.tieWordEmbeddings { continue }
            guard let ggufName = GGUFLlamaNames.ggufName(info.name) else {
                throw .unexpectedTensor(path: folder, tensor: info.name, reason: "has no llama.cpp counterpart; this is not a plain Llama checkpoint")
            }
            let stored = storageType(shape: info.shape, requested: type)
            if info.shape.count >= 2 { matrixTypes.append(stored) }
            let heads = GGUFLlamaNames.permutedHeads(hfName: info.name, heads: llama.numAttentionHeads, kvHeads: llama.numKeyValueHeads)
            entries.append(GGUFWriter.Entry(name: ggufName, type: stored, ne: info.shape.reversed()) { () throws(CheckpointError) in
                progress(info.name)
                var values = try source.tensor(info.name).floats()
                source.release(info.name)
                if let heads {
                    values.withUnsafeMutableBufferPointer { GGUFLlamaNames.permuteRows($0, rows: info.shape[0], heads: heads, toHF: false) }
                }
                return values.withUnsafeBufferPointer { stored.quantize($0) }
            })
        }
        let mostCommon = Dictionary(grouping: matrixTypes, by: { $0 }).max { $0.value.count < $1.value.count }?.key ?? .f32

        var metadata: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string("llama")),
            ("general.type", .string("model")),
            ("general.name", .string(name ?? URL(fileURLWithPath: folder).standardizedFileURL.lastPathComponent)),
            ("llama.block_count", .uint32(UInt32(llama.numHiddenLayers))),
            ("llama.context_length", .uint32(UInt32(llama.maxPositionEmbeddings))),
            ("llama.embedding_length", .uint32(UInt32(llama.hiddenSize))),
            ("llama.feed_forward_length", .uint32(UInt32(llama.intermediateSize))),
            ("llama.attention.head_count", .uint32(UInt32(llama.numAttentionHeads))),
            ("llama.attention.head_count_kv", .uint32(UInt32(llama.numKeyValueHeads))),
            ("llama.rope.freq_base", .float32(Float(llama.ropeTheta))),
            ("llama.attention.layer_norm_rms_epsilon", .float32(Float(llama.rmsNormEps))),
            ("general.file_type", .uint32(fileType(mostCommon))),
            ("llama.vocab_size", .uint32(UInt32(llama.vocabSize))),
            ("llama.rope.dimension_count", .uint32(UInt32(llama.headDim))),
        ]
        // the tokenizer files beside the weights (the folder, or a .safetensors file's folder)
        let folder = model.companionFolder ?? folder
        let tokenizerPath = folder + "/tokenizer.json"
        if FileManager.default.fileExists(atPath: tokenizerPath) {
            let tokenizer = try JSONValue.read(contentsOf: tokenizerPath, error: CheckpointError.json)
            let configPath = folder + "/tokenizer_config.json"
            let tokenizerConfig = FileManager.default.fileExists(atPath: configPath) ? (try JSONValue.read(contentsOf: configPath, error: CheckpointError.json).objectValue ?? JSONObject()) : JSONObject()
            let template = (try? String(contentsOfFile: folder + "/chat_template.jinja", encoding: .utf8))
            metadata += try GGUFLlamaTokenizer.metadata(tokenizer: tokenizer, tokenizerConfig: tokenizerConfig, chatTemplate: template,
                                                        pre: preTokenizer, vocabularySize: llama.vocabSize,
                                                        bosTokenID: llama.bosTokenId, eosTokenID: llama.eosTokenIds.first, path: tokenizerPath)
        } else {
            // llama.cpp requires the key; "none" loads a model without a vocabulary (token ids in, logits out).
            metadata.append(("tokenizer.ggml.model", .string("none")))
        }
        metadata.append(("general.quantization_version", .uint32(2)))
        try GGUFWriter(path: output).write(metadata: metadata, tensors: entries, overwrite: overwrite)
    }
}
