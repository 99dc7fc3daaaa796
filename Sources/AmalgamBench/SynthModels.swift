import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// Writes a random Llama-shaped base model and fine-tunes (base + noise) in bf16, for merge benchmarks.
enum SynthModels {
    static func run(_ args: [String]) throws {
        let a = try BenchArguments(args, options: ["out", "hidden", "intermediate", "layers", "vocab", "heads", "kv-heads", "fine-tunes"])
        let out = a.string("out", "bench-models")
        let hidden = try a.int("hidden", 1024), inter = try a.int("intermediate", 2816), layers = try a.int("layers", 16)
        let vocab = try a.int("vocab", 32000), heads = try a.int("heads", 16), kvHeads = try a.int("kv-heads", 4)
        let fineTunes = try a.int("fine-tunes", 3)
        let headDim = hidden / heads
        var infos: [TensorInfo] = [TensorInfo(name: "model.embed_tokens.weight", dtype: .bf16, shape: [vocab, hidden])]
        for l in 0..<layers {
            let p = "model.layers.\(l)."
            infos += [
                TensorInfo(name: p + "self_attn.q_proj.weight", dtype: .bf16, shape: [heads * headDim, hidden]),
                TensorInfo(name: p + "self_attn.k_proj.weight", dtype: .bf16, shape: [kvHeads * headDim, hidden]),
                TensorInfo(name: p + "self_attn.v_proj.weight", dtype: .bf16, shape: [kvHeads * headDim, hidden]),
                TensorInfo(name: p + "self_attn.o_proj.weight", dtype: .bf16, shape: [hidden, heads * headDim]),
                TensorInfo(name: p + "mlp.gate_proj.weight", dtype: .bf16, shape: [inter, hidden]),
                TensorInfo(name: p + "mlp.up_proj.weight", dtype: .bf16, shape: [inter, hidden]),
                TensorInfo(name: p + "mlp.down_proj.weight", dtype: .bf16, shape: [hidden, inter]),
                TensorInfo(name: p + "input_layernorm.weight", dtype: .bf16, shape: [hidden]),
                TensorInfo(name: p + "post_attention_layernorm.weight", dtype: .bf16, shape: [hidden]),
            ]
        }
        infos += [TensorInfo(name: "model.norm.weight", dtype: .bf16, shape: [hidden]),
                  TensorInfo(name: "lm_head.weight", dtype: .bf16, shape: [vocab, hidden])]
        let config = """
        {
          "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": \(hidden),
          "intermediate_size": \(inter), "num_hidden_layers": \(layers), "num_attention_heads": \(heads),
          "num_key_value_heads": \(kvHeads), "vocab_size": \(vocab), "rms_norm_eps": 1e-05,
          "max_position_embeddings": 4096, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
          "hidden_act": "silu", "rope_theta": 10000.0, "bos_token_id": 1, "eos_token_id": 2
        }

        """
        let bytes = infos.reduce(0) { $0 + $1.byteCount }
        print("writing \(fineTunes + 1) models of \(String(format: "%.2f", Double(bytes) / 1e9)) GB each into \(out)/")
        for m in 0...fineTunes {
            let name = m == 0 ? "base" : "ft\(m)"
            let dir = out + "/" + name
            if FileManager.default.fileExists(atPath: dir + "/config.json") { continue }
            let output = try AtomicOutput(path: dir, overwrite: true)
            try output.makeWorkingDirectory()
            let writer = try CheckpointWriter(directory: output.workingPath, tensors: infos, maxShardSize: 2_000_000_000)
            for (i, info) in infos.enumerated() {
                var values = [Float](repeating: 0, count: info.elementCount)
                fillBase(&values, seed: UInt64(i + 1), isNorm: info.shape.count == 1)
                if m > 0 { addNoise(&values, seed: UInt64(1000 * m + i), scale: 0.002 * Float(m), keep: 0.3 + 0.2 * Float(m)) }
                try writer.write(info.name, tensor: Tensor(values, shape: info.shape))
            }
            try writer.finish()
            try writeFileAtomically(config, to: output.workingPath + "/config.json")
            try output.commit()
            print("  \(dir)")
        }
    }

    /// xorshift64* uniform in [-1, 1).
    private static func uniform(_ s: inout UInt64) -> Float {
        s ^= s >> 12; s ^= s << 25; s ^= s >> 27
        return Float((s &* 2_685_821_657_736_338_717) >> 40) / Float(1 << 23) - 1
    }

    private static func fillBase(_ v: inout [Float], seed: UInt64, isNorm: Bool) {
        var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        for i in v.indices { v[i] = isNorm ? 1 + 0.1 * uniform(&s) : 0.02 * uniform(&s) }
    }

    private static func addNoise(_ v: inout [Float], seed: UInt64, scale: Float, keep: Float) {
        var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        for i in v.indices {
            let u = uniform(&s)
            if abs(u) < keep { v[i] += scale * uniform(&s) }
        }
    }
}
