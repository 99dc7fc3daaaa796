import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamModels
import Foundation

/// DAM over Llama-family causal language models (llama, mistral, qwen3; tied or untied embeddings).
///
/// Every linear layer of the decoder (`q_proj`, `k_proj`, `v_proj`, `o_proj`, `gate_proj`, `up_proj`,
/// `down_proj`) and `lm_head` when it is not tied gets one coefficient per source model and INPUT column
/// (`[out, in]` weights, as PyTorch stores them): `W = Σᵢ sᵢ ⊙ Wᵢ` column-wise. The embedding and the
/// RMSNorm weights are the fixed mean of the sources (dam.md: fixed mixtures unless asked) unless
/// `trainEmbeddings` / `trainNorms`: then the embedding `[vocab, hidden]` gets one coefficient per source
/// and hidden dimension (`E = Σᵢ sᵢ ⊙ Eᵢ`, the same column-wise form) and every RMSNorm weight `[hidden]`
/// (input, post-attention, final; qwen3's q/k norms) one per element, as the released `DAMEmbeddingLayer`
/// and `DAMRMSNorm` do. Tied, the merged embedding is also the output head. Linear biases (qwen2) are refused.
///
/// The merged model is one f32 copy of the DAM tensors, rewritten in place by `merge(scales:)` from the
/// sources, which stay memory-mapped in their own dtype (f32, bf16 or f16). The coefficient gradient
/// `∂L/∂sᵢ[j] = Σ_o dW[o, j] · Wᵢ[o, j]` is taken, for a linear layer, from one `dW = dYᵀ·X` per layer (one
/// sgemm over the input X and output gradient dY that `LlamaTrainer`'s `linearObserver` hands over),
/// shared by all N sources: one scratch `dW` of the largest layer, never N copies. For the embedding and
/// the norms, `LlamaTrainer` trains its f32 copies of those tensors and accumulates their gradient (the
/// embedding's from the token lookup and, tied, from the output head); the same column sum reads only the
/// rows of the batch's tokens when the embedding is untied (every other row's gradient is zero).
public final class DAMLlamaFamily: DAMFamily {
    public typealias Batch = TokenBatch

    /// The source models (the teachers).
    public let sources: [LlamaModel]
    /// The merged model: its DAM tensors are `mergedWeights`, rewritten by `merge(scales:)` (rebuilt there
    /// when norms train: the engine holds norm weights as copies).
    public private(set) var merged: LlamaModel
    public let layers: [DAMLayer]
    /// What each DAM layer is: a linear layer, the embedding or an RMSNorm weight.
    public let kinds: [DAMLlamaTensorKind]
    /// Every tensor of the merged checkpoint, in the first source's order.
    public let tensorInfos: [TensorInfo]

    let trainer: LlamaTrainer
    let tensors: [String: Tensor]
    /// Per DAM layer: the merged f32 weight and every source's weight (any float dtype).
    let mergedWeights: [Tensor]
    let sourceWeights: [[Tensor]]
    /// The linear DAM layers by weight name (what the observer handles).
    let layerOfWeight: [String: Int]
    /// Per DAM layer: for the embedding and the norms, the trainer's f32 copy (values and gradient).
    let trainerTensors: [TrainableTensor?]
    let tied: Bool
    let modelConfig: ModelConfig
    let layout: DAMLayout
    /// ∂term/∂scales of the current `distill` call, in `layout`.
    private var gradient: [Float]
    /// Scratch for one linear layer's dW [out × in] (the largest linear layer's size).
    private let dW: UnsafeMutablePointer<Float>

    /// The family of `sources` (at least two), which must share one architecture and every tensor's shape.
    /// The merged model takes its configuration from the first. `trainEmbeddings` / `trainNorms` give the
    /// embedding / every RMSNorm weight coefficients too (default: their fixed mean).
    public init(sources models: [(config: ModelConfig, weights: TensorSource)],
                trainEmbeddings: Bool = false, trainNorms: Bool = false) throws(DAMError) {
        guard models.count >= 2 else { throw .invalidConfiguration(key: "models", reason: "DAM needs at least two source models") }
        var sources: [LlamaModel] = []
        for m in models {
            do { sources.append(try LlamaModel(config: m.config, weights: m.weights)) } catch {
                throw .source(path: m.weights.path, reason: "\(error)")
            }
        }
        self.sources = sources
        let first = models[0].weights, config = sources[0].config
        for (i, m) in models.enumerated().dropFirst() {
            let c = sources[i].config
            func sizes(_ c: LlamaConfig) -> [Int] {
                [c.hiddenSize, c.intermediateSize, c.numHiddenLayers, c.numAttentionHeads, c.numKeyValueHeads, c.headDim, c.vocabSize]
            }
            guard sizes(c) == sizes(config), c.tieWordEmbeddings == config.tieWordEmbeddings else { throw .sourceMismatch(what: "\(m.weights.path) has another shape (sizes, heads, layers, vocabulary or tying) than \(first.path)") }
            for info in first.tensorInfos {
                guard let other = m.weights.info(info.name) else { throw .sourceMismatch(what: "\(m.weights.path) has no tensor `\(info.name)`") }
                guard other.shape == info.shape else {
                    throw .sourceMismatch(what: "`\(info.name)` is \(other.shape) in \(m.weights.path), \(info.shape) in \(first.path)")
                }
            }
        }
        if let bias = first.tensorNames.first(where: { $0.hasSuffix("_proj.bias") }) {
            throw .source(path: first.path, reason: "has linear biases (`\(bias)`): DAM on Llama-family models with biases (qwen2) is not supported yet")
        }

        // layers in checkpoint order: [embedding], per decoder layer [input norm] q k v o [q/k norms]
        // [post-attention norm] gate up down, then [final norm], lm_head when untied
        var layers: [DAMLayer] = [], kinds: [DAMLlamaTensorKind] = []
        func add(_ name: String, _ kind: DAMLlamaTensorKind) throws(DAMError) {
            let rank = kind == .norm ? 1 : 2
            guard let info = first.info(name + ".weight"), info.shape.count == rank else {
                throw .source(path: first.path, reason: "no \(rank)-D tensor `\(name).weight`")
            }
            layers.append(DAMLayer(name: name, inputs: info.shape[rank - 1], hasBias: false))
            kinds.append(kind)
        }
        if trainEmbeddings { try add("model.embed_tokens", .embedding) }
        for i in 0..<config.numHiddenLayers {
            let p = "model.layers.\(i)."
            if trainNorms { try add(p + "input_layernorm", .norm) }
            for name in ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"] { try add(p + name, .linear) }
            if trainNorms {
                for name in ["self_attn.q_norm", "self_attn.k_norm"] where first.info(p + name + ".weight") != nil { try add(p + name, .norm) }
                try add(p + "post_attention_layernorm", .norm)
            }
            for name in ["mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"] { try add(p + name, .linear) }
        }
        if trainNorms { try add("model.norm", .norm) }
        if !config.tieWordEmbeddings {
            guard first.info("lm_head.weight") != nil else { throw .source(path: first.path, reason: "no `lm_head.weight` and tie_word_embeddings is false") }
            try add("lm_head", .linear)
        }
        self.layers = layers
        self.kinds = kinds
        tied = config.tieWordEmbeddings
        modelConfig = models[0].config
        layout = DAMLayout(layers: layers, sourceCount: models.count)
        var layerOfWeight: [String: Int] = [:], layerOfTensor: [String: Int] = [:]
        for (l, layer) in layers.enumerated() {
            layerOfTensor[layer.name + ".weight"] = l
            if kinds[l] == .linear { layerOfWeight[layer.name + ".weight"] = l }
        }
        self.layerOfWeight = layerOfWeight

        // the merged checkpoint: DAM layers as zeroed f32 (filled by merge), the rest the sources' mean
        var tensors: [String: Tensor] = [:], infos: [TensorInfo] = []
        var sourceWeights = [[Tensor]](repeating: [], count: layers.count)
        var mergedWeights = [Tensor?](repeating: nil, count: layers.count)
        for info in first.tensorInfos {
            let merged: Tensor
            do {
                if let l = layerOfTensor[info.name] {
                    merged = Tensor(zeros: .f32, shape: info.shape)
                    mergedWeights[l] = merged
                    sourceWeights[l] = try models.map { m throws(CheckpointError) in try m.weights.tensor(info.name) }
                } else if info.dtype.isFloatingPoint {
                    var sum = [Double](repeating: 0, count: info.elementCount)
                    for m in models {
                        for (j, v) in try m.weights.tensor(info.name).floats().enumerated() { sum[j] += Double(v) }
                    }
                    merged = Tensor(sum.map { Float($0 / Double(models.count)) }, shape: info.shape)
                } else {
                    merged = try first.tensor(info.name)
                }
            } catch { throw .source(path: first.path, reason: "\(error)") }
            tensors[info.name] = merged
            infos.append(TensorInfo(name: info.name, dtype: merged.dtype, shape: info.shape))
        }
        self.tensors = tensors
        tensorInfos = infos
        self.sourceWeights = sourceWeights
        let mergedList = mergedWeights.map { $0! }
        self.mergedWeights = mergedList
        for (l, ws) in sourceWeights.enumerated() {
            for w in ws where ![.f32, .bf16, .f16].contains(w.dtype) {
                throw .source(path: first.path, reason: "`\(layers[l].name).weight` is \(w.dtype); DAM reads f32, bf16 or f16 weights")
            }
        }
        // the embedding and norms with coefficients train in the trainer (its f32 copies): their gradient
        let trained = Set(layers.indices.filter { kinds[$0] != .linear }.map { layers[$0].name + ".weight" })
        do {
            merged = try LlamaModel(config: models[0].config, weights: InMemoryCheckpoint(path: first.path + " (DAM merge)", infos: infos, tensors: tensors))
            trainer = try LlamaTrainer(model: merged, trainable: trained.isEmpty ? .none : .names(trained))
        } catch { throw .source(path: first.path, reason: "\(error)") }
        let byName = Dictionary(uniqueKeysWithValues: trainer.parameters.map { ($0.name, $0) })
        trainerTensors = layers.indices.map { kinds[$0] == .linear ? nil : byName[layers[$0].name + ".weight"] }
        for l in layers.indices where kinds[l] != .linear && trainerTensors[l] == nil {
            throw .source(path: first.path, reason: "the trainer holds no `\(layers[l].name).weight` to train")
        }
        gradient = [Float](repeating: 0, count: layout.count)
        dW = .allocate(capacity: mergedList.indices.filter { kinds[$0] == .linear }.map { mergedList[$0].elementCount }.max() ?? 1)
        trainer.linearObserver = { [unowned self] in self.observe($0) }
    }

    deinit { dW.deallocate() }

    public var sourceCount: Int { sources.count }
    public var classCount: Int { merged.config.vocabSize }

    /// Rows of logits computed at once by the merged model's loss (bounds memory at rows × vocabulary).
    public var logitsChunkRows: Int {
        get { trainer.logitsChunkRows }
        set { trainer.logitsChunkRows = newValue }
    }

    public func merge(scales: [Float]) throws(DAMError) {
        guard scales.count == layout.count else {
            throw .invalidConfiguration(key: "scales", reason: "\(scales.count) values, the layout has \(layout.count)")
        }
        for (l, layer) in layers.enumerated() {
            let out = mergedWeights[l], cols = layer.inputs, rows = out.elementCount / cols
            let dst = SendablePointer(out.storage.mutableBase!.assumingMemoryBound(to: Float.self))
            let rowScales = (0..<sourceCount).map { k in Array(scales[layout.weightRange(layer: l, model: k)]) }
            let weights = sourceWeights[l].map { SourceWeight($0, columns: cols) }
            parallelChunks(rows, minimumChunk: max(1, 32_768 / max(cols, 1))) { range in
                var row = [Float](repeating: 0, count: cols)
                for o in range {
                    let d = dst.base + o * cols
                    d.update(repeating: 0, count: cols)
                    for (k, w) in weights.enumerated() {
                        let src = row.withUnsafeMutableBufferPointer { w.row(o, columns: 0..<cols, scratch: $0.baseAddress!) }
                        rowScales[k].withUnsafeBufferPointer { s in
                            for j in 0..<cols { d[j] += s[j] * src[j] }
                        }
                    }
                }
            }
            // the trainer computes with its own copy of the embedding and norms
            trainerTensors[l]?.value.update(from: dst.base, count: rows * cols)
        }
        if kinds.contains(.norm) {
            // the engine copies norm weights when it loads a model: rebuild the merged model over the tensors
            do { merged = try LlamaModel(config: modelConfig, weights: merged.source) } catch {
                throw .source(path: merged.source.path, reason: "\(error)")
            }
        }
    }

    public func distill(source: Int, batch: TokenBatch, temperature: Float, topK: Int?,
                        scaleGradient: inout [Float]) throws(DAMError) -> Double {
        let teacher: Matrix
        do { teacher = try sources[source].logits(batch) } catch { throw .source(path: sources[source].source.path, reason: "\(error)") }
        for i in gradient.indices { gradient[i] = 0 }
        let total: LossTotal
        do {
            total = try trainer.accumulateGradients(batch, objective: .distillation(teacher: teacher, temperature: temperature, topK: topK, counted: nil),
                                                    gradientScale: 1 / Float(max(batch.tokenCount, 1)))
        } catch { throw .source(path: merged.source.path, reason: "\(error)") }
        // the embedding and norms: Σ over rows of their gradient ⊙ each source's tensor, then zero it
        for (l, t) in trainerTensors.enumerated() {
            guard let t else { continue }
            let cols = layers[l].inputs
            var rows: [Int]? = nil
            if kinds[l] == .embedding && !tied { rows = Array(Set(batch.packed)).sorted() }   // only these rows are non-zero
            addColumnProducts(layer: l, rowGradient: UnsafePointer(t.gradient), rows: rows, rowCount: t.count / cols)
            if let rows {
                for r in rows { (t.gradient + r * cols).update(repeating: 0, count: cols) }
            } else {
                t.zeroGradient()
            }
        }
        for i in scaleGradient.indices { scaleGradient[i] += gradient[i] }
        return total.mean
    }

    public func mergedLogits(batch: TokenBatch) throws(DAMError) -> [Float] {
        do { return try merged.logits(batch).values } catch { throw .source(path: merged.source.path, reason: "\(error)") }
    }

    /// Every tensor of the merged model (after `merge(scales:)`), in the first source's order: the DAM
    /// layers in f32, the rest the sources' mean (f32) or, for non-float tensors, the first source's.
    public func mergedTensors() -> [(name: String, tensor: Tensor)] {
        tensorInfos.map { (name: $0.name, tensor: tensors[$0.name]!) }
    }

    /// The observer: for a linear DAM layer, dW = dYᵀ·X once, then every source's `Σ_o dW[o, j]·Wᵢ[o, j]`.
    private func observe(_ a: LinearActivations) {
        guard let l = layerOfWeight[a.name] else { return }
        let rows = a.outFeatures, cols = a.inFeatures
        dW.update(repeating: 0, count: rows * cols)
        MatMul.backwardWeight(dW, a.outputGradient, a.input, rows: a.rows, outFeatures: rows, inFeatures: cols)
        addColumnProducts(layer: l, rowGradient: UnsafePointer(dW), rows: nil, rowCount: rows)
    }

    /// Adds every source k's `Σ_o G[o, j]·W_k[o, j]` to `gradient` (layer `layer`, model k), G the layer's
    /// gradient `[rowCount × inputs]`, over the rows `rows` (ascending) or all of them.
    private func addColumnProducts(layer l: Int, rowGradient: UnsafePointer<Float>, rows: [Int]?, rowCount: Int) {
        let cols = layers[l].inputs
        let dw = SendableConstPointer(rowGradient)
        let rowList = rows ?? Array(0..<rowCount)
        gradient.withUnsafeMutableBufferPointer { g in
            for k in 0..<sourceCount {
                let w = SourceWeight(sourceWeights[l][k], columns: cols)
                let out = SendablePointer(g.baseAddress! + layout.weightRange(layer: l, model: k).lowerBound)
                // column blocks: each column's sum runs over rows in order, whatever the split
                parallelChunks(cols, minimumChunk: max(8, 65_536 / max(rowList.count, 1))) { range in
                    var scratch = [Float](repeating: 0, count: range.count)
                    var acc = [Float](repeating: 0, count: range.count)
                    scratch.withUnsafeMutableBufferPointer { s in
                        acc.withUnsafeMutableBufferPointer { a in
                            for o in rowList {
                                let src = w.row(o, columns: range, scratch: s.baseAddress!)
                                let d = dw.base + o * cols + range.lowerBound
                                for j in 0..<range.count { a[j] += d[j] * src[j] }
                            }
                        }
                    }
                    for j in 0..<range.count { out.base[range.lowerBound + j] += acc[j] }
                }
            }
        }
    }
}

/// What a DAM tensor of the Llama family is.
public enum DAMLlamaTensorKind: String, Sendable, Codable {
    /// A linear layer's `[out, in]` weight: one coefficient per input column.
    case linear
    /// The token embedding `[vocab, hidden]`: one coefficient per hidden dimension.
    case embedding
    /// An RMSNorm weight `[hidden]`: one coefficient per element.
    case norm
}

/// A source tensor read as `[rows × cols]` by row segments (a norm weight is one row): f32 in place,
/// bf16/f16 decoded into a scratch.
private struct SourceWeight: @unchecked Sendable {
    let base: UnsafeRawPointer
    let dtype: DType
    let cols: Int

    init(_ t: Tensor, columns: Int) {
        base = t.storage.base!
        dtype = t.dtype
        cols = columns
    }

    /// Columns `columns` of row `r` as f32 (valid until the next call with the same scratch).
    func row(_ r: Int, columns: Range<Int>, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        let start = r * cols + columns.lowerBound
        if dtype == .f32 { return (base.assumingMemoryBound(to: Float.self) + start) }
        Convert.toFloat32(UnsafeRawBufferPointer(start: base + start * dtype.byteSize, count: columns.count * dtype.byteSize),
                          from: dtype, into: UnsafeMutableBufferPointer(start: scratch, count: columns.count))
        return UnsafePointer(scratch)
    }
}
