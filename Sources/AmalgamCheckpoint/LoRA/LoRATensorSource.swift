import AmalgamCore
import CAmalgamBLAS

/// A base model's tensors with a LoRA adapter applied as each is read: a tensor the adapter does not touch
/// is the base's own (a view of its file, as before); a touched one is computed in f32 — replaced by the
/// adapter's whole tensor if it saves one, then W + s·B·A — and rounded to the base's dtype where PEFT's
/// `merge_and_unload` rounds (once for linear layers; weight and update first for embeddings). Nothing is held beyond the tensor asked for.
public struct LoRATensorSource: TensorSource {
    public let base: any TensorSource
    public let adapter: LoRAAdapter
    public let tensorInfos: [TensorInfo]
    /// The base lacked `lm_head.weight` (tied to the embedding) and the adapter brings its own, so the
    /// output is untied, as PEFT unties it.
    public let untiesEmbeddings: Bool
    private let byName: [String: TensorInfo]

    public var path: String { base.path + "+" + adapter.path }

    /// Checks every adapter tensor against the base's shapes; `baseName` names the base in messages.
    public init(base: any TensorSource, adapter: LoRAAdapter, baseName: String) throws(LoRAError) {
        self.base = base
        self.adapter = adapter
        var infos = base.tensorInfos
        var untie = false
        for (name, key) in adapter.replacements.sorted(by: { $0.key < $1.key }) {
            let replacement = adapter.tensors.info(key)!
            if let own = base.info(name) {
                guard own.shape == replacement.shape else {
                    throw .shapeMismatch(path: adapter.weightsPath, tensor: key, reason: "is \(replacement.shape) but '\(name)' of the base is \(own.shape)")
                }
            } else if name == "lm_head.weight", let embedding = base.info("model.embed_tokens.weight"), embedding.shape == replacement.shape {
                infos.append(TensorInfo(name: name, dtype: embedding.dtype, shape: embedding.shape))
                untie = true
            } else {
                throw .moduleNotInBase(path: adapter.weightsPath, module: String(name.dropLast(name.hasSuffix(".bias") ? 5 : 7)), base: baseName)
            }
        }
        let known = Dictionary(infos.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for (name, update) in adapter.updates.sorted(by: { $0.key < $1.key }) {
            guard let own = known[name] else { throw .moduleNotInBase(path: adapter.weightsPath, module: update.module, base: baseName) }
            guard own.shape.count == 2 else {
                throw .shapeMismatch(path: adapter.weightsPath, tensor: update.a, reason: "'\(name)' of the base has shape \(own.shape), not a matrix")
            }
            let a = adapter.tensors.info(update.a)!.shape, b = adapter.tensors.info(update.b)!.shape
            // The update B·A is [b0, a1]; stored transposed for embeddings and fan_in_fan_out weights.
            let transposed = update.isEmbedding || adapter.fanInFanOut
            let expected = transposed ? [a[1], b[0]] : [b[0], a[1]]
            guard expected == own.shape else {
                throw .shapeMismatch(path: adapter.weightsPath, tensor: update.a,
                                     reason: "A \(a) and B \(b) make a \(transposed ? "transposed " : "")update of \(expected), but '\(name)' of the base is \(own.shape)")
            }
            guard own.dtype.isFloatingPoint else {
                throw .shapeMismatch(path: adapter.weightsPath, tensor: update.a, reason: "'\(name)' of the base is \(own.dtype), not a float tensor")
            }
        }
        for (name, key) in adapter.biasUpdates {
            let b = adapter.tensors.info(key)!
            guard let own = known[name] else { throw .moduleNotInBase(path: adapter.weightsPath, module: name, base: baseName) }
            guard own.shape == b.shape else { throw .shapeMismatch(path: adapter.weightsPath, tensor: key, reason: "is \(b.shape) but '\(name)' of the base is \(own.shape)") }
        }
        tensorInfos = infos
        byName = known
        untiesEmbeddings = untie
    }

    public func info(_ name: String) -> TensorInfo? { byName[name] }

    public func tensor(_ name: String) throws(CheckpointError) -> Tensor {
        let update = adapter.updates[name]
        let biasKey = adapter.biasUpdates[name]
        let replacementKey = adapter.replacements[name]
        if update == nil && biasKey == nil && replacementKey == nil { return try base.tensor(name) }
        guard let info = byName[name] else { throw .tensorNotFound(path: path, tensor: name) }
        var values: [Float]
        if let replacementKey { values = try adapter.tensors.tensor(replacementKey).floats() } else { values = try base.tensor(name).floats() }
        if let update {
            if update.isEmbedding && info.dtype != .f32 {
                // PEFT's embedding merge rounds the weight and the f32 update to the base dtype before adding
                // them (two roundings; its linear merge rounds once), checked bit for bit against mergekit.
                values = Self.rounded(values, to: info.dtype)
                var delta = [Float](repeating: 0, count: values.count)
                try add(update, to: &delta, shape: info.shape)
                delta = Self.rounded(delta, to: info.dtype)
                for i in values.indices { values[i] += delta[i] }
            } else {
                try add(update, to: &values, shape: info.shape)
            }
        }
        if let biasKey, let scale = adapter.updates[String(name.dropLast(5)) + ".weight"]?.scale {
            let delta = try adapter.tensors.tensor(biasKey).floats()
            for i in values.indices { values[i] += Float(scale) * delta[i] }
        }
        return Tensor(values, shape: info.shape).converted(to: info.dtype)
    }

    public func release(_ name: String) { base.release(name) }

    private static func rounded(_ values: [Float], to dtype: DType) -> [Float] {
        Tensor(values, shape: [values.count]).converted(to: dtype).floats()
    }

    /// values[out, in] += s·B·A (or its transpose for embeddings and fan_in_fan_out), in f32.
    private func add(_ update: LoRAAdapter.Update, to values: inout [Float], shape: [Int]) throws(CheckpointError) {
        let a = try adapter.tensors.tensor(update.a).floats()   // [r, n]
        let b = try adapter.tensors.tensor(update.b).floats()   // [m, r]
        let r = update.rank
        let m = b.count / r, n = a.count / r
        let transposed = update.isEmbedding || adapter.fanInFanOut
        values.withUnsafeMutableBufferPointer { w in
            if transposed {
                // W[n, m] += s·Aᵀ·Bᵀ
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, Int32(n), Int32(m), Int32(r), Float(update.scale),
                            a, Int32(n), b, Int32(r), 1, w.baseAddress, Int32(m))
            } else {
                // W[m, n] += s·B·A
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(r), Float(update.scale),
                            b, Int32(r), a, Int32(n), 1, w.baseAddress, Int32(n))
            }
        }
    }
}
