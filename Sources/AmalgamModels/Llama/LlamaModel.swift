import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// A Llama-family causal language model (llama incl. Llama 3 rope scaling, mistral with its sliding
/// window, qwen2 with q/k/v biases, qwen3 with q/k norms, tied embeddings as in SmolLM2), run in f32
/// over weights read in place in f32, bf16 or f16, or kept in a GGUF's block types (`WeightPrecision`).
public final class LlamaModel: LogitsModel, @unchecked Sendable {
    /// The typed configuration.
    public let config: LlamaConfig
    /// Token ids that end generation: `eos_token_id` of config.json and generation_config.json.
    public let eosTokenIds: [Int]
    /// The weights' checkpoint (kept open: the weights are views of its mapped files).
    public let source: TensorSource
    let weights: LlamaWeights
    let rope: RotaryEmbedding

    /// Loads from a config and any tensor source; throws naming the first missing or misshapen tensor.
    /// `precision` says how to hold the weight matrices; nil keeps plain tensors in place and
    /// dequantizes block-quantized ones to f32.
    public init(config raw: ModelConfig, weights source: TensorSource, extraEOSTokenIds: [Int] = [],
                precision: WeightPrecision? = nil) throws(ModelError) {
        let config: LlamaConfig
        do { config = try raw.llama() } catch { throw .checkpoint(error) }
        if let act = raw.raw["hidden_act"]?.stringValue, act != "silu" {
            throw .unsupportedConfig(path: raw.path, key: "hidden_act", reason: "'\(act)' is not supported; the engine runs SwiGLU (silu)")
        }
        if let factor = raw.raw["partial_rotary_factor"]?.doubleValue, factor != 1 {
            throw .unsupportedConfig(path: raw.path, key: "partial_rotary_factor", reason: "\(factor) is not supported; rotary embedding covers the whole head")
        }
        self.config = config
        self.source = source
        weights = try LlamaWeights(config: config, raw: raw, source: source, precision: precision)
        rope = try RotaryEmbedding(config, path: raw.path,
                                   section: raw.raw["rope_scaling"]?.objectValue != nil ? "rope_scaling" : "rope_parameters",
                                   topLevelOriginalMaxPositions: raw.raw["original_max_position_embeddings"]?.intValue)
        var eos = config.eosTokenIds
        for e in extraEOSTokenIds where !eos.contains(e) { eos.append(e) }
        eosTokenIds = eos
    }

    /// Loads an opened model: its config, its weights (held as `precision` says; nil: a GGUF's
    /// dequantized to f32 as read) and the EOS ids of its generation_config.json.
    public convenience init(source: ModelSource, precision: WeightPrecision? = nil) throws(ModelError) {
        try self.init(config: source.config, weights: source.tensors, extraEOSTokenIds: source.generationEOSTokenIds,
                      precision: precision)
    }

    /// Loads a model folder, `.safetensors` or `.gguf` file as `ModelSource` opens it.
    public convenience init(folder path: String, precision: WeightPrecision? = nil) throws(ModelError) {
        let source: ModelSource
        do { source = try ModelSource.open(path) } catch { throw .checkpoint(error) }
        try self.init(source: source, precision: precision)
    }

    /// Vocabulary size.
    public var outputCount: Int { config.vocabSize }

    /// Logits [batch.tokenCount × V] for every token of every sequence, packed in batch order.
    public func logits(_ batch: TokenBatch) throws(ModelError) -> Matrix {
        let hidden = try run(batch)
        let out = FloatBuffer(batch.tokenCount * config.vocabSize)
        projectToVocabulary(out.pointer, hidden.pointer, rows: batch.tokenCount)
        return Matrix(rows: batch.tokenCount, cols: config.vocabSize, values: out.array())
    }

    /// The decoder over a batch of whole sequences (positions from 0): final-norm hidden states [N × C].
    func run(_ batch: TokenBatch) throws(ModelError) -> FloatBuffer {
        var positions: [Int] = []
        positions.reserveCapacity(batch.tokenCount)
        var segments: [Attention.Segment] = []
        for (i, s) in batch.sequences.enumerated() {
            positions.append(contentsOf: 0..<s.count)
            segments.append(.init(queryRow: batch.offsets[i], keyRow: batch.offsets[i], position: 0, count: s.count))
        }
        return try forward(tokens: batch.packed, positions: positions, segments: segments, cache: nil)
    }

    /// lm_head: logits[rows × V] = hidden[rows × C] · Wᵀ.
    func projectToVocabulary(_ logits: UnsafeMutablePointer<Float>, _ hidden: UnsafePointer<Float>, rows: Int) {
        let scratch = FloatBuffer(MatMul.scratchCount(for: weights.lmHead))
        MatMul.forward(logits, hidden, rows: rows, weight: weights.lmHead, bias: nil, scratch: scratch.pointer)
    }

    /// The decoder over token rows. With a cache, all rows belong to one sequence continuing at
    /// `cache.count`; their keys and values are appended to it. Returns final-norm hidden states [N × C].
    func forward(tokens: [Int], positions: [Int], segments: [Attention.Segment], cache: KVCache?) throws(ModelError) -> FloatBuffer {
        let N = tokens.count
        let C = config.hiddenSize, I = config.intermediateSize, V = config.vocabSize
        let Hq = config.numAttentionHeads, Hkv = config.numKeyValueHeads, D = config.headDim
        let eps = Float(config.rmsNormEps)
        for t in tokens where t < 0 || t >= V { throw .tokenOutOfRange(token: t, vocabSize: V) }
        if let cache, cache.count + N > cache.capacity { throw .contextTooLong(length: cache.count + N, limit: cache.capacity) }

        let x = FloatBuffer(N * C)              // residual stream [N × C]
        let xn = FloatBuffer(N * C)             // normed input of a block [N × C]
        let q = FloatBuffer(N * Hq * D)         // [N × Hq·D]
        let k = FloatBuffer(N * Hkv * D)        // [N × Hkv·D]
        let v = FloatBuffer(N * Hkv * D)        // [N × Hkv·D]
        let att = FloatBuffer(N * Hq * D)       // attention output before o_proj [N × Hq·D]
        let proj = FloatBuffer(N * C)           // a block's output before the residual [N × C]
        let gate = FloatBuffer(N * I)           // [N × I], then silu(gate)·up
        let up = FloatBuffer(N * I)             // [N × I]
        let cos = FloatBuffer(N * D / 2), sin = FloatBuffer(N * D / 2)
        let scratchCount = weights.layers.map { l in
            [l.q, l.k, l.v, l.o, l.gate, l.up, l.down].map(MatMul.scratchCount(for:)).max()!
        }.max() ?? 0
        let scratch = FloatBuffer(scratchCount)

        for (n, t) in tokens.enumerated() { weights.embed.decodeRows(t..<(t + 1), into: x.pointer + n * C) }
        rope.tables(positions, cos: cos.pointer, sin: sin.pointer)

        func linear(_ out: FloatBuffer, _ inp: FloatBuffer, _ w: WeightMatrix, _ b: FloatBuffer?) {
            MatMul.forward(out.pointer, inp.pointer, rows: N, weight: w, bias: b?.pointer, scratch: scratch.pointer)
        }

        /// Products sharing one input (q/k/v, gate/up).
        func group(_ inp: FloatBuffer, _ items: [(FloatBuffer, WeightMatrix, FloatBuffer?)]) {
            let products = items.map { MatMul.Product(out: $0.0.pointer, weight: $0.1, bias: $0.2?.pointer) }
            MatMul.forwardGroup(products, inp.pointer, rows: N, scratch: scratch.pointer)
        }

        for (index, layer) in weights.layers.enumerated() {
            // attention block: x += o_proj(attention(rope(q), rope(k), v)) over rmsnorm(x)
            Layers.rmsnormForward(xn.pointer, nil, x.pointer, layer.inputNorm, rows: N, cols: C, eps: eps)
            group(xn, [(q, layer.q, layer.qBias), (k, layer.k, layer.kBias), (v, layer.v, layer.vBias)])
            if let qNorm = layer.qNorm, let kNorm = layer.kNorm {
                Layers.rmsnormForward(q.pointer, nil, q.pointer, qNorm, rows: N * Hq, cols: D, eps: eps)
                Layers.rmsnormForward(k.pointer, nil, k.pointer, kNorm, rows: N * Hkv, cols: D, eps: eps)
            }
            Layers.ropeForward(q.pointer, rows: N, heads: Hq, headDim: D, cos: cos.pointer, sin: sin.pointer)
            Layers.ropeForward(k.pointer, rows: N, heads: Hkv, headDim: D, cos: cos.pointer, sin: sin.pointer)
            if let cache {
                let keys = cache.keys[index].pointer, values = cache.values[index].pointer
                (keys + cache.count * Hkv * D).update(from: k.pointer, count: N * Hkv * D)
                (values + cache.count * Hkv * D).update(from: v.pointer, count: N * Hkv * D)
                Attention.forward(att.pointer, q: q.pointer, k: keys, v: values, segments: segments,
                                  heads: Hq, kvHeads: Hkv, headDim: D, window: layer.window)
            } else {
                Attention.forward(att.pointer, q: q.pointer, k: k.pointer, v: v.pointer, segments: segments,
                                  heads: Hq, kvHeads: Hkv, headDim: D, window: layer.window)
            }
            linear(proj, att, layer.o, layer.oBias)
            Layers.residualForward(x.pointer, proj.pointer, count: N * C)

            // MLP block: x += down(silu(gate(h)) · up(h)), h = rmsnorm(x)
            Layers.rmsnormForward(xn.pointer, nil, x.pointer, layer.postNorm, rows: N, cols: C, eps: eps)
            group(xn, [(gate, layer.gate, layer.gateBias), (up, layer.up, layer.upBias)])
            Layers.swigluForward(gate.pointer, gate.pointer, up.pointer, count: N * I)
            linear(proj, gate, layer.down, layer.downBias)
            Layers.residualForward(x.pointer, proj.pointer, count: N * C)
        }
        cache?.count += N
        Layers.rmsnormForward(xn.pointer, nil, x.pointer, weights.norm, rows: N, cols: C, eps: eps)
        return xn
    }
}

extension LlamaModel {
    /// The dtype of the projection weights (the first layer's q_proj; u8 when it is block-quantized).
    public var weightDType: DType { weights.layers.first?.q.tensor.dtype ?? weights.embed.tensor.dtype }
    /// The GGUF block type of the projection weights (the first layer's q_proj) when they are kept quantized.
    public var weightBlockType: GGMLType? { weights.layers.first?.q.blockType }
    /// Bytes per weight element as stored.
    public var weightBytesPerElement: Int { weightDType.byteSize }
}
