import AmalgamCore
import Foundation

/// Conversion of Llama checkpoints between GGUF files and Hugging Face folders, both ways.
public enum GGUFLlamaConvert {
    /// The Hugging Face `config.json` for a Llama GGUF, from its `llama.*` metadata.
    public static func huggingFaceConfig(_ file: GGUFFile, dtype: DType, tied: Bool) throws(CheckpointError) -> ModelConfig {
        func int(_ key: String) throws(CheckpointError) -> Int {
            guard let v = file[key] else { throw .gguf(.missingKey(path: file.path, key: key)) }
            guard let i = v.intValue, i > 0 else { throw .gguf(.badKey(path: file.path, key: key, reason: "must be a positive integer, is \(v.summary)")) }
            return i
        }
        let hidden = try int("llama.embedding_length"), heads = try int("llama.attention.head_count")
        let vocab = file["llama.vocab_size"]?.intValue ?? file["tokenizer.ggml.tokens"]?.arrayValue?.count
            ?? file.entry("token_embd.weight")?.ne.last
        guard let vocab else { throw .gguf(.missingKey(path: file.path, key: "llama.vocab_size")) }
        var c = JSONObject()
        c["architectures"] = .array([.string("LlamaForCausalLM")])
        c["attention_bias"] = .bool(file.entry("blk.0.attn_q.bias") != nil)
        c["attention_dropout"] = .double(0)
        if let b = file["tokenizer.ggml.bos_token_id"]?.intValue { c["bos_token_id"] = .int(b) }
        if let e = file["tokenizer.ggml.eos_token_id"]?.intValue { c["eos_token_id"] = .int(e) }
        c["head_dim"] = .int(file["llama.rope.dimension_count"]?.intValue ?? hidden / heads)
        c["hidden_act"] = .string("silu")
        c["hidden_size"] = .int(hidden)
        c["initializer_range"] = .double(0.02)
        c["intermediate_size"] = .int(try int("llama.feed_forward_length"))
        c["max_position_embeddings"] = .int(file["llama.context_length"]?.intValue ?? 2048)
        c["mlp_bias"] = .bool(false)
        c["model_type"] = .string("llama")
        c["num_attention_heads"] = .int(heads)
        c["num_hidden_layers"] = .int(try int("llama.block_count"))
        c["num_key_value_heads"] = .int(file["llama.attention.head_count_kv"]?.intValue ?? heads)
        if let p = file["tokenizer.ggml.padding_token_id"]?.intValue { c["pad_token_id"] = .int(p) }
        c["pretraining_tp"] = .int(1)
        // The f32 metadata value widened to double, as transformers' GGUF loader reports it.
        c["rms_norm_eps"] = .double(file["llama.attention.layer_norm_rms_epsilon"]?.doubleValue ?? 1e-5)
        c["rope_scaling"] = .null
        c["rope_theta"] = .double(file["llama.rope.freq_base"]?.doubleValue ?? 10000)
        c["tie_word_embeddings"] = .bool(tied)
        c["dtype"] = .string(dtype.torchName)
        c["use_cache"] = .bool(true)
        c["vocab_size"] = .int(vocab)
        return ModelConfig(raw: c, path: "config.json")
    }

    /// Converts a Llama GGUF into a Hugging Face folder (`config.json`, safetensors weights in `dtype`,
    /// `tokenizer.json`, `tokenizer_config.json`), written under a temporary name and renamed when complete.
    public static func toHuggingFace(gguf path: String, output: String, dtype: DType, overwrite: Bool = false,
                                     progress: (String) -> Void = { _ in }) throws(CheckpointError) {
        guard dtype.isFloatingPoint else {
            throw .invalidConfig(path: output, key: "dtype", reason: "\(dtype.rawValue) is not a float type; use bf16, f16 or f32")
        }
        // opened as every command opens a GGUF: tensors dequantized to f32 as read, tokenizer from metadata
        let model = try ModelSource.open(path)
        guard let file = model.gguf else {
            throw .gguf(.unsupportedModel(path: path, reason: "is not a .gguf file; `amalgam convert` turns a GGUF into a folder or a folder into a GGUF"))
        }
        let source = model.tensors
        let tied = source.info("lm_head.weight") == nil
        let config = try huggingFaceConfig(file, dtype: dtype, tied: tied)

        let out: AtomicOutput
        do {
            out = try AtomicOutput(path: output, overwrite: overwrite)
            try out.makeWorkingDirectory()
        } catch { throw .file(error) }
        do throws(CheckpointError) {
            // Tensors in the order of a transformers state dict: embeddings, layers in order, norm, head.
            let infos = source.tensorInfos.map { TensorInfo(name: $0.name, dtype: dtype, shape: $0.shape) }
                .sorted { stateDictOrder($0.name) < stateDictOrder($1.name) }
            let writer = try CheckpointWriter(directory: out.workingPath, tensors: infos)
            for info in infos {
                progress(info.name)
                let t = try source.tensor(info.name)
                try writer.write(info.name, tensor: t)
                source.release(info.name)
            }
            try writer.finish()
            try write(config.jsonText(), to: out.workingPath + "/config.json")
            try model.writeCompanions(into: out.workingPath)
            do { try out.commit() } catch { throw CheckpointError.file(error) }
        } catch {
            out.abandon()
            throw error
        }
    }

    /// Sort key putting HF Llama names in `state_dict` order (layers numerically).
    static func stateDictOrder(_ name: String) -> (Int, Int, String) {
        if name == "model.embed_tokens.weight" { return (0, 0, name) }
        if let layer = TensorName(name).layer { return (1, layer, name) }
        if name == "model.norm.weight" { return (2, 0, name) }
        return (3, 0, name)
    }

    static func write(_ text: String, to path: String) throws(CheckpointError) {
        do { try writeFileAtomically(text, to: path) } catch { throw .file(error) }
    }
}
