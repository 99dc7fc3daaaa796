import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import Foundation

/// The residual stream entering a layer of a Llama-family model (transformers' `hidden_states[layer]`),
/// read through the engine's public API only: the engine returns the final norm's output, not the residual
/// stream, so the probe runs a rebuilt model whose output *is* the residual.
///
/// The rebuilt model for layer ℓ has the base's first ℓ layers and one probe layer, and one extra hidden
/// dimension (C+1):
/// - the extra coordinate of the residual stays 0 through the base layers (zero input columns, zero output
///   rows); so that their RMS norms over C+1 values equal the base's over C values, `rms_norm_eps` becomes
///   ε·C/(C+1) and every norm weight is multiplied by √(C/(C+1)) (the two agree to rounding);
/// - the probe layer has zero weights and `down_proj.bias` = e_C, so it adds 1 to the extra coordinate;
/// - the final norm weight is 1 and lm_head the identity, so the logits are y = [x, 1] / s for one unknown
///   s per token, and x = y[0..<C] / y[C].
/// qwen3's q/k norms also see ε·C/(C+1) instead of ε (a relative change of the order of ε/(C·mean q²)).
/// Each layer costs one forward pass over ℓ+1 layers; the padded weights are held once in f32.
struct ResidualProbe {
    let base: ModelSource
    let llama: LlamaConfig
    private let shared: [String: Tensor]
    private let width: Int
    private let vocabulary: Int
    /// Base token id → the probe's id: the probe's vocabulary holds only the tokens of the prompts.
    private let probeId: [Int: Int]

    /// `tokens`: every token id the sequences given to `residuals` will hold.
    init(base: ModelSource, llama: LlamaConfig, tokens: Set<Int>) throws {
        self.base = base
        self.llama = llama
        let C = llama.hiddenSize
        let used = tokens.sorted()
        probeId = Dictionary(uniqueKeysWithValues: used.enumerated().map { ($1, $0) })
        let width = C + 1, vocabulary = max(used.count, C + 1)
        self.width = width
        self.vocabulary = vocabulary
        let shrink = Float((Double(C) / Double(C + 1)).squareRoot())
        var padded: [String: Tensor] = [:]
        func values(_ name: String) throws -> [Float] { try base.tensors.tensor(name).converted(to: .f32).floats() }
        /// [rows, C] → [rows, C+1] with a zero last column.
        func padColumns(_ name: String) throws -> Tensor {
            let v = try values(name)
            let rows = v.count / C
            var out = [Float](repeating: 0, count: rows * width)
            for r in 0..<rows { for j in 0..<C { out[r * width + j] = v[r * C + j] } }
            return Tensor(out, shape: [rows, width])
        }
        /// [C, cols] or [C] → [C+1, cols] or [C+1] with a zero last row.
        func padRows(_ name: String) throws -> Tensor {
            let v = try values(name)
            let cols = v.count / C
            return Tensor(v + [Float](repeating: 0, count: cols), shape: cols == 1 ? [width] : [width, cols])
        }
        // The embedding rows of the prompts' tokens only (the probe's lm_head is vocabulary × (C+1)).
        let table = try values("model.embed_tokens.weight")
        var embed = [Float](repeating: 0, count: vocabulary * width)
        for (i, t) in used.enumerated() {
            guard t >= 0, (t + 1) * C <= table.count else { throw ModelError.tokenOutOfRange(token: t, vocabSize: table.count / C) }
            for j in 0..<C { embed[i * width + j] = table[t * C + j] }
        }
        padded["model.embed_tokens.weight"] = Tensor(embed, shape: [vocabulary, width])
        for l in 0..<llama.numHiddenLayers {
            let p = "model.layers.\(l).", a = p + "self_attn.", m = p + "mlp."
            for n in ["input_layernorm.weight", "post_attention_layernorm.weight"] {
                padded[p + n] = Tensor(try values(p + n).map { $0 * shrink } + [0], shape: [width])
            }
            for n in [a + "q_proj.weight", a + "k_proj.weight", a + "v_proj.weight", m + "gate_proj.weight", m + "up_proj.weight"] {
                padded[n] = try padColumns(n)
            }
            for n in [a + "o_proj.weight", m + "down_proj.weight"] { padded[n] = try padRows(n) }
            for n in [a + "o_proj.bias", m + "down_proj.bias"] where base.tensors.info(n) != nil { padded[n] = try padRows(n) }
            for n in [a + "q_proj.bias", a + "k_proj.bias", a + "v_proj.bias", a + "q_norm.weight", a + "k_norm.weight",
                      m + "gate_proj.bias", m + "up_proj.bias"] where base.tensors.info(n) != nil {
                padded[n] = try base.tensors.tensor(n).converted(to: .f32)
            }
        }
        padded["model.norm.weight"] = Tensor([Float](repeating: 1, count: width), shape: [width])
        var head = [Float](repeating: 0, count: vocabulary * width)
        for j in 0..<width { head[j * width + j] = 1 }
        padded["lm_head.weight"] = Tensor(head, shape: [vocabulary, width])
        self.shared = padded
    }

    /// The residual stream entering `layer` for every token of each sequence: one [tokens × C] array each.
    func residuals(entering layer: Int, sequences: [[Int]]) throws -> [[Float]] {
        guard !sequences.isEmpty else { return [] }
        let C = llama.hiddenSize, D = llama.headDim
        let qDim = llama.numAttentionHeads * D, kvDim = llama.numKeyValueHeads * D, I = llama.intermediateSize
        var tensors: [String: Tensor] = [:]
        for (name, t) in shared {
            if let l = TensorName(name).layer, l >= layer { continue }
            tensors[name] = t
        }
        let p = "model.layers.\(layer).", a = p + "self_attn.", m = p + "mlp."
        tensors[p + "input_layernorm.weight"] = Tensor([Float](repeating: 1, count: width), shape: [width])
        tensors[p + "post_attention_layernorm.weight"] = Tensor([Float](repeating: 1, count: width), shape: [width])
        tensors[a + "q_proj.weight"] = Tensor(zeros: .f32, shape: [qDim, width])
        tensors[a + "k_proj.weight"] = Tensor(zeros: .f32, shape: [kvDim, width])
        tensors[a + "v_proj.weight"] = Tensor(zeros: .f32, shape: [kvDim, width])
        tensors[a + "o_proj.weight"] = Tensor(zeros: .f32, shape: [width, qDim])
        if llama.modelType == "qwen3" {
            tensors[a + "q_norm.weight"] = Tensor([Float](repeating: 1, count: D), shape: [D])
            tensors[a + "k_norm.weight"] = Tensor([Float](repeating: 1, count: D), shape: [D])
        }
        tensors[m + "gate_proj.weight"] = Tensor(zeros: .f32, shape: [I, width])
        tensors[m + "up_proj.weight"] = Tensor(zeros: .f32, shape: [I, width])
        tensors[m + "down_proj.weight"] = Tensor(zeros: .f32, shape: [width, I])
        var marker = [Float](repeating: 0, count: width)
        marker[C] = 1
        tensors[m + "down_proj.bias"] = Tensor(marker, shape: [width])

        var raw = base.config.raw
        raw["hidden_size"] = .int(width)
        raw["head_dim"] = .int(D)
        raw["num_hidden_layers"] = .int(layer + 1)
        raw["vocab_size"] = .int(vocabulary)
        raw["tie_word_embeddings"] = .bool(false)
        raw["rms_norm_eps"] = .double(llama.rmsNormEps * Double(C) / Double(width))
        if let types = raw["layer_types"]?.arrayValue, types.count > layer {
            raw["layer_types"] = .array(Array(types[0...layer]))
        }
        let model = try LlamaModel(config: ModelConfig(raw: raw, path: base.path + " (residual probe, layer \(layer))"),
                                   weights: MemoryTensors(path: base.path, tensors: tensors), precision: nil)
        var remapped: [[Int]] = []
        for s in sequences {
            var ids: [Int] = []
            for t in s {
                guard let p = probeId[t] else { throw ModelError.tokenOutOfRange(token: t, vocabSize: probeId.count) }
                ids.append(p)
            }
            remapped.append(ids)
        }
        let logits = try model.logits(TokenBatch(remapped))
        var out: [[Float]] = []
        var row = 0
        for s in sequences {
            var x = [Float](repeating: 0, count: s.count * C)
            for t in 0..<s.count {
                let y = logits[row: row]
                let base = y.startIndex
                let scale = 1 / Double(y[base + C])
                for j in 0..<C { x[t * C + j] = Float(Double(y[base + j]) * scale) }
                row += 1
            }
            out.append(x)
        }
        return out
    }
}

/// Tensors held in memory under their Hugging Face names.
struct MemoryTensors: TensorSource {
    let path: String
    let tensors: [String: Tensor]
    let tensorInfos: [TensorInfo]

    init(path: String, tensors: [String: Tensor]) {
        self.path = path
        self.tensors = tensors
        tensorInfos = tensors.keys.sorted().map { TensorInfo(name: $0, dtype: tensors[$0]!.dtype, shape: tensors[$0]!.shape) }
    }

    func info(_ name: String) -> TensorInfo? { tensors[name].map { TensorInfo(name: name, dtype: $0.dtype, shape: $0.shape) } }

    func tensor(_ name: String) throws(CheckpointError) -> Tensor {
        guard let t = tensors[name] else { throw .tensorNotFound(path: path, tensor: name) }
        return t
    }
}
