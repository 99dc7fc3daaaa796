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
/// RMSNorm weights are the fixed mean of the sources (dam.md: fixed mixtures unless asked; training them
/// is not offered yet). Linear biases (qwen2) are refused.
///
/// The merged model is one f32 copy of the linear weights, rewritten in place by `merge(scales:)` from the
/// sources, which stay memory-mapped in their own dtype (f32, bf16 or f16). The coefficient gradient
/// `∂L/∂sᵢ[j] = Σ_o dW[o, j] · Wᵢ[o, j]` is taken from one `dW = dYᵀ·X` per layer (one sgemm over the
/// input X and output gradient dY that `LlamaTrainer`'s `linearObserver` hands over), shared by all N
/// sources: one scratch `dW` of the largest layer, never N copies.
public final class DAMLlamaFamily: DAMFamily {
    public typealias Batch = TokenBatch

    /// The source models (the teachers).
    public let sources: [LlamaModel]
    /// The merged model: its linear weights are `mergedWeights`, rewritten by `merge(scales:)`.
    public let merged: LlamaModel
    public let layers: [DAMLayer]
    /// Every tensor of the merged checkpoint, in the first source's order.
    public let tensorInfos: [TensorInfo]

    let trainer: LlamaTrainer
    let tensors: [String: Tensor]
    /// Per DAM layer: the merged f32 weight and every source's weight (any float dtype).
    let mergedWeights: [Tensor]
    let sourceWeights: [[Tensor]]
    let layerOfWeight: [String: Int]
    let layout: DAMLayout
    /// ∂term/∂scales of the current `distill` call, in `layout`.
    private var gradient: [Float]
    /// Scratch for one layer's dW [out × in] (the largest layer's size).
    private let dW: UnsafeMutablePointer<Float>

    /// The family of `sources` (at least two), which must share one architecture and every tensor's shape.
    /// The merged model takes its configuration from the first.
    public init(sources models: [(config: ModelConfig, weights: TensorSource)]) throws(DAMError) {
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

        var layers: [DAMLayer] = []
        for i in 0..<config.numHiddenLayers {
            for name in ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"] {
                let full = "model.layers.\(i).\(name)"
                guard let info = first.info(full + ".weight"), info.shape.count == 2 else {
                    throw .source(path: first.path, reason: "no 2-D tensor `\(full).weight`")
                }
                layers.append(DAMLayer(name: full, inputs: info.shape[1], hasBias: false))
            }
        }
        if !config.tieWordEmbeddings {
            guard let info = first.info("lm_head.weight") else { throw .source(path: first.path, reason: "no `lm_head.weight` and tie_word_embeddings is false") }
            layers.append(DAMLayer(name: "lm_head", inputs: info.shape[1], hasBias: false))
        }
        self.layers = layers
        layout = DAMLayout(layers: layers, sourceCount: models.count)
        var layerOfWeight: [String: Int] = [:]
        for (l, layer) in layers.enumerated() { layerOfWeight[layer.name + ".weight"] = l }
        self.layerOfWeight = layerOfWeight

        // the merged checkpoint: DAM layers as zeroed f32 (filled by merge), the rest the sources' mean
        var tensors: [String: Tensor] = [:], infos: [TensorInfo] = []
        var sourceWeights = [[Tensor]](repeating: [], count: layers.count)
        var mergedWeights = [Tensor?](repeating: nil, count: layers.count)
        for info in first.tensorInfos {
            let merged: Tensor
            do {
                if let l = layerOfWeight[info.name] {
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
        do {
            merged = try LlamaModel(config: models[0].config, weights: InMemoryCheckpoint(path: first.path + " (DAM merge)", infos: infos, tensors: tensors))
            trainer = try LlamaTrainer(model: merged, trainable: .none)
        } catch { throw .source(path: first.path, reason: "\(error)") }
        gradient = [Float](repeating: 0, count: layout.count)
        dW = .allocate(capacity: mergedList.map { $0.elementCount }.max() ?? 1)
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
            let out = mergedWeights[l], rows = out.shape[0], cols = layer.inputs
            let dst = SendablePointer(out.storage.mutableBase!.assumingMemoryBound(to: Float.self))
            let rowScales = (0..<sourceCount).map { k in Array(scales[layout.weightRange(layer: l, model: k)]) }
            let weights = sourceWeights[l].map(SourceWeight.init)
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

    /// The observer: for a DAM layer, dW = dYᵀ·X once, then every source's `Σ_o dW[o, j]·Wᵢ[o, j]`.
    private func observe(_ a: LinearActivations) {
        guard let l = layerOfWeight[a.name] else { return }
        let rows = a.outFeatures, cols = a.inFeatures
        dW.update(repeating: 0, count: rows * cols)
        MatMul.backwardWeight(dW, a.outputGradient, a.input, rows: a.rows, outFeatures: rows, inFeatures: cols)
        let dw = SendableConstPointer(UnsafePointer(dW))
        gradient.withUnsafeMutableBufferPointer { g in
            for k in 0..<sourceCount {
                let w = SourceWeight(sourceWeights[l][k])
                let out = SendablePointer(g.baseAddress! + layout.weightRange(layer: l, model: k).lowerBound)
                // column blocks: each column's sum runs over rows in order, whatever the split
                parallelChunks(cols, minimumChunk: max(8, 65_536 / max(rows, 1))) { range in
                    var scratch = [Float](repeating: 0, count: range.count)
                    var acc = [Float](repeating: 0, count: range.count)
                    scratch.withUnsafeMutableBufferPointer { s in
                        acc.withUnsafeMutableBufferPointer { a in
                            for o in 0..<rows {
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

/// A source weight `[rows × cols]` read by row segments: f32 in place, bf16/f16 decoded into a scratch.
private struct SourceWeight: @unchecked Sendable {
    let base: UnsafeRawPointer
    let dtype: DType
    let cols: Int

    init(_ t: Tensor) {
        base = t.storage.base!
        dtype = t.dtype
        cols = t.shape[1]
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
