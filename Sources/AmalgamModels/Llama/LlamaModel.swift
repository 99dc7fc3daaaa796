import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// A decoder-only causal language model, run in f32 over weights read in place in f32, bf16 or f16, or
/// kept in a GGUF's block types (`WeightPrecision`): the Llama family (llama incl. Llama 3 rope scaling,
/// mistral with its sliding window, qwen2 with q/k/v biases, qwen3 with q/k norms, tied embeddings as in
/// SmolLM2) and the families `DecoderFamily` describes (gemma2, gemma3_text and gemma3's text model,
/// olmo2, granite, phi3, gpt2, mixtral, qwen2_moe, qwen3_moe), all through one forward pass.
public final class LlamaModel: LogitsModel, @unchecked Sendable {
    /// The typed configuration.
    public let config: LlamaConfig
    /// Token ids that end generation: `eos_token_id` of config.json and generation_config.json.
    public let eosTokenIds: [Int]
    /// The weights' checkpoint (kept open: the weights are views of its mapped files).
    public let source: TensorSource
    /// What sets this family apart from Llama (all Llama values for the Llama family).
    public let family: DecoderFamily
    let weights: LlamaWeights
    /// The distinct rotary tables, and which one each layer uses (Gemma 3 has two).
    let ropes: [RotaryEmbedding]
    let ropeIndex: [Int]
    /// The first layer's rotary embedding (the Llama family has one for all layers).
    var rope: RotaryEmbedding { ropes[ropeIndex.first ?? 0] }

    /// Loads from a config and any tensor source; throws naming the first missing or misshapen tensor.
    /// `precision` says how to hold the weight matrices; nil keeps plain tensors in place and
    /// dequantizes block-quantized ones to f32.
    public init(config raw: ModelConfig, weights source: TensorSource, extraEOSTokenIds: [Int] = [],
                precision: WeightPrecision? = nil) throws(ModelError) {
        let config: LlamaConfig, text: ModelConfig
        do {
            text = try raw.textDecoder()
            config = try raw.decoder()
        } catch { throw .checkpoint(error) }
        let family = try DecoderFamily(config: config, text: text, outer: raw)
        self.config = config
        self.family = family
        self.source = source
        weights = try LlamaWeights(config: config, raw: text, family: family, source: source, precision: precision)
        (ropes, ropeIndex) = try DecoderFamily.rotaryEmbeddings(config: config, text: text, family: family,
                                                                windows: weights.layers.map(\.window))
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

    /// lm_head: logits[rows × V] = hidden[rows × C] · Wᵀ, divided by the logit divisor (Granite) and
    /// soft-capped (Gemma) when the family says so.
    func projectToVocabulary(_ logits: UnsafeMutablePointer<Float>, _ hidden: UnsafePointer<Float>, rows: Int) {
        let scratch = FloatBuffer(MatMul.scratchCount(for: weights.lmHead))
        MatMul.forward(logits, hidden, rows: rows, weight: weights.lmHead, bias: nil, scratch: scratch.pointer)
        let count = rows * config.vocabSize
        if family.logitDivisor != 1 {
            let d = family.logitDivisor
            for i in 0..<count { logits[i] /= d }
        }
        if let cap = family.finalSoftCap { Layers.softCapForward(logits, count: count, cap: cap) }
    }

    /// The decoder over token rows. With a cache, all rows belong to one sequence continuing at
    /// `cache.count`; their keys and values are appended to it. Returns final-norm hidden states [N × C].
    /// Every family runs this one pass; `family` says which norms, activation, scales and caps apply.
    func forward(tokens: [Int], positions: [Int], segments: [Attention.Segment], cache: KVCache?) throws(ModelError) -> FloatBuffer {
        let N = tokens.count
        let C = config.hiddenSize, I = config.intermediateSize, V = config.vocabSize
        let Hq = config.numAttentionHeads, Hkv = config.numKeyValueHeads, D = config.headDim
        let R = family.rotaryDim
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
        let gate = FloatBuffer(N * I)           // [N × I], then act(gate)·up
        let up = FloatBuffer(N * I)             // [N × I]
        // cos and sin [N × R/2] of each distinct rotary table
        let tables = ropes.map { _ in (cos: FloatBuffer(N * R / 2), sin: FloatBuffer(N * R / 2)) }
        var matrices: [WeightMatrix] = []
        for l in weights.layers {
            matrices += [l.q, l.k, l.v, l.o]
            matrices += [l.gate, l.up, l.down].compactMap { $0 }
            if let moe = l.moe {
                matrices.append(moe.router)
                var mlps: [SwiGLUWeights] = moe.experts
                if let shared = moe.shared { mlps.append(shared) }
                for e in mlps { matrices += [e.gate, e.up, e.down] }
            }
        }
        let scratchCount = matrices.map(MatMul.scratchCount(for:)).max() ?? 0
        let scratch = FloatBuffer(scratchCount)

        for (n, t) in tokens.enumerated() { weights.embed.decodeRows(t..<(t + 1), into: x.pointer + n * C) }
        if family.embeddingScale != 1 { Layers.scaleForward(x.pointer, count: N * C, by: family.embeddingScale) }
        if let table = weights.positions {  // learned absolute positions (GPT-2)
            let row = FloatBuffer(C)
            for (n, p) in positions.enumerated() {
                guard p < table.rows else { throw .positionOutOfRange(position: p, limit: table.rows) }
                table.decodeRows(p..<(p + 1), into: row.pointer)
                Layers.residualForward(x.pointer + n * C, row.pointer, count: C)
            }
        }
        for (rope, table) in zip(ropes, tables) { rope.tables(positions, cos: table.cos.pointer, sin: table.sin.pointer) }

        func linear(_ out: FloatBuffer, _ inp: FloatBuffer, _ w: WeightMatrix, _ b: FloatBuffer?) {
            MatMul.forward(out.pointer, inp.pointer, rows: N, weight: w, bias: b?.pointer, scratch: scratch.pointer)
        }

        /// Products sharing one input (q/k/v, gate/up).
        func group(_ inp: FloatBuffer, _ items: [(FloatBuffer, WeightMatrix, FloatBuffer?)]) {
            let products = items.map { MatMul.Product(out: $0.0.pointer, weight: $0.1, bias: $0.2?.pointer) }
            MatMul.forwardGroup(products, inp.pointer, rows: N, scratch: scratch.pointer)
        }

        /// out = norm(inp) over rows of C: RMSNorm, or LayerNorm with its bias (GPT-2).
        func normalize(_ out: FloatBuffer, _ inp: FloatBuffer, _ weight: [Float], _ bias: [Float]?) {
            switch family.normKind {
            case .rms: Layers.rmsnormForward(out.pointer, nil, inp.pointer, weight, rows: N, cols: C, eps: eps)
            case .layer: Layers.layerNormForward(out.pointer, inp.pointer, weight, bias, rows: N, cols: C, eps: eps)
            }
        }

        /// A block's input: the residual stream, normed when the family norms before the block.
        func blockInput(_ norm: [Float]?, _ bias: [Float]?) -> FloatBuffer {
            guard let norm else { return x }
            normalize(xn, x, norm, bias)
            return xn
        }

        /// x += s · norm(proj): the block's output, normed when the family norms after the block.
        func addBlockOutput(_ norm: [Float]?) {
            if let norm { Layers.rmsnormForward(proj.pointer, nil, proj.pointer, norm, rows: N, cols: C, eps: eps) }
            if family.residualScale != 1 { Layers.scaleForward(proj.pointer, count: N * C, by: family.residualScale) }
            Layers.residualForward(x.pointer, proj.pointer, count: N * C)
        }

        for (index, layer) in weights.layers.enumerated() {
            // attention block: x += o_proj(attention(rope(q), rope(k), v)) over the (normed) stream
            let attentionInput = blockInput(layer.inputNorm, layer.inputNormBias)
            group(attentionInput, [(q, layer.q, layer.qBias), (k, layer.k, layer.kBias), (v, layer.v, layer.vBias)])
            if let qNorm = layer.qNorm, let kNorm = layer.kNorm {
                let perHead = family.qkNorm == .perHead
                Layers.rmsnormForward(q.pointer, nil, q.pointer, qNorm, rows: perHead ? N * Hq : N, cols: perHead ? D : Hq * D, eps: eps)
                Layers.rmsnormForward(k.pointer, nil, k.pointer, kNorm, rows: perHead ? N * Hkv : N, cols: perHead ? D : Hkv * D, eps: eps)
            }
            let table = tables[ropeIndex[index]]
            if !family.rotary {
                // positions were added to the embeddings
            } else if R == D {
                Layers.ropeForward(q.pointer, rows: N, heads: Hq, headDim: D, cos: table.cos.pointer, sin: table.sin.pointer)
                Layers.ropeForward(k.pointer, rows: N, heads: Hkv, headDim: D, cos: table.cos.pointer, sin: table.sin.pointer)
            } else {
                Layers.partialRopeForward(q.pointer, rows: N, heads: Hq, headDim: D, rotaryDim: R, cos: table.cos.pointer, sin: table.sin.pointer)
                Layers.partialRopeForward(k.pointer, rows: N, heads: Hkv, headDim: D, rotaryDim: R, cos: table.cos.pointer, sin: table.sin.pointer)
            }
            let attentionScale = family.layerAttentionScales?[index] ?? family.attentionScale
            if let cache {
                let keys = cache.keys[index].pointer, values = cache.values[index].pointer
                (keys + cache.count * Hkv * D).update(from: k.pointer, count: N * Hkv * D)
                (values + cache.count * Hkv * D).update(from: v.pointer, count: N * Hkv * D)
                Attention.forward(att.pointer, q: q.pointer, k: keys, v: values, segments: segments,
                                  heads: Hq, kvHeads: Hkv, headDim: D, window: layer.window,
                                  scale: attentionScale, softCap: family.attentionSoftCap)
            } else {
                Attention.forward(att.pointer, q: q.pointer, k: k.pointer, v: v.pointer, segments: segments,
                                  heads: Hq, kvHeads: Hkv, headDim: D, window: layer.window,
                                  scale: attentionScale, softCap: family.attentionSoftCap)
            }
            linear(proj, att, layer.o, layer.oBias)
            addBlockOutput(layer.attentionOutputNorm)

            // MLP block: x += down(act(gate(h)) · up(h)) over the (normed) stream
            let mlpInput = blockInput(layer.postNorm, layer.postNormBias)
            if let moe = layer.moe {
                sparseMLP(moe, input: mlpInput, output: proj, rows: N, scratch: scratch)
            } else if let gateWeight = layer.gate, let downWeight = layer.down, let upWeight = layer.up {
                group(mlpInput, [(gate, gateWeight, layer.gateBias), (up, upWeight, layer.upBias)])
                switch family.activation {
                case .silu: Layers.swigluForward(gate.pointer, gate.pointer, up.pointer, count: N * I)
                case .geluTanh: Layers.gegluTanhForward(gate.pointer, gate.pointer, up.pointer, count: N * I)
                }
                linear(proj, gate, downWeight, layer.downBias)
            } else if let gateWeight = layer.gate, let downWeight = layer.down {  // a plain MLP: down(act(fc(h)))
                linear(gate, mlpInput, gateWeight, layer.gateBias)
                switch family.activation {
                case .silu: Layers.siluForward(gate.pointer, count: N * I)
                case .geluTanh: Layers.geluTanhForward(gate.pointer, count: N * I)
                }
                linear(proj, gate, downWeight, layer.downBias)
            }
            addBlockOutput(layer.mlpOutputNorm)
        }
        cache?.count += N
        normalize(xn, x, weights.norm, weights.normBias)
        return xn
    }
}

extension LlamaModel {
    /// A sparse MoE MLP over `rows` token rows: out[rows × C] = Σ over each token's top-k experts of
    /// w · down(silu(gate x) · up x), w the router's softmax probabilities of the chosen experts (divided by
    /// their sum when renormalised), plus sigmoid(g · x) · shared(x) for Qwen2-MoE's shared expert.
    func sparseMLP(_ moe: MoEWeights, input: FloatBuffer, output: FloatBuffer, rows N: Int, scratch: FloatBuffer) {
        let C = config.hiddenSize, E = moe.experts.count
        let logits = FloatBuffer(N * E)
        MatMul.forward(logits.pointer, input.pointer, rows: N, weight: moe.router, bias: nil, scratch: scratch.pointer)
        // each expert's tokens and their weights
        var routed = [[(row: Int, weight: Float)]](repeating: [], count: E)
        for n in 0..<N {
            let l = logits.pointer + n * E
            var m = -Float.infinity
            for e in 0..<E { m = max(m, l[e]) }
            var p = [Float](repeating: 0, count: E)
            var sum: Float = 0
            for e in 0..<E { p[e] = Foundation.exp(l[e] - m); sum += p[e] }
            for e in 0..<E { p[e] /= sum }
            // the k largest, the lower index first on ties
            let chosen = (0..<E).sorted { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }.prefix(moe.topK)
            let total = moe.renormalize ? chosen.reduce(Float(0)) { $0 + p[$1] } : 1
            for e in chosen { routed[e].append((n, p[e] / total)) }
        }
        for i in 0..<(N * C) { output.pointer[i] = 0 }
        func run(_ w: SwiGLUWeights, _ x: FloatBuffer, rows: Int) -> FloatBuffer {
            let width = w.gate.rows
            let g = FloatBuffer(rows * width), u = FloatBuffer(rows * width), y = FloatBuffer(rows * C)
            MatMul.forward(g.pointer, x.pointer, rows: rows, weight: w.gate, bias: nil, scratch: scratch.pointer)
            MatMul.forward(u.pointer, x.pointer, rows: rows, weight: w.up, bias: nil, scratch: scratch.pointer)
            Layers.swigluForward(g.pointer, g.pointer, u.pointer, count: rows * width)
            MatMul.forward(y.pointer, g.pointer, rows: rows, weight: w.down, bias: nil, scratch: scratch.pointer)
            return y
        }
        for (e, tokens) in routed.enumerated() where !tokens.isEmpty {
            let x = FloatBuffer(tokens.count * C)
            for (j, t) in tokens.enumerated() { (x.pointer + j * C).update(from: input.pointer + t.row * C, count: C) }
            let y = run(moe.experts[e], x, rows: tokens.count)
            for (j, t) in tokens.enumerated() {
                let o = output.pointer + t.row * C, r = y.pointer + j * C
                for c in 0..<C { o[c] += t.weight * r[c] }
            }
        }
        if let shared = moe.shared, let g = moe.sharedGate {
            let y = run(shared, input, rows: N)
            for n in 0..<N {
                let x = input.pointer + n * C
                var z: Float = 0
                for c in 0..<C { z += g[c] * x[c] }
                let s = 1 / (1 + Foundation.exp(-z))
                let o = output.pointer + n * C, r = y.pointer + n * C
                for c in 0..<C { o[c] += s * r[c] }
            }
        }
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
