import AmalgamCore

/// A Llama GGUF file seen as a Hugging Face checkpoint: HF tensor names, q/k rows in HF order, quantized
/// tensors dequantized to f32 when read. A merge can take it wherever it takes a safetensors folder.
public final class GGUFLlamaSource: TensorSource, @unchecked Sendable {
    public let file: GGUFFile
    public let tensorInfos: [TensorInfo]
    public let heads: Int
    public let kvHeads: Int
    private let ggufNameOf: [String: String]
    private let infoOf: [String: TensorInfo]

    public var path: String { file.path }

    /// Wraps an opened file; fails when it is not a Llama GGUF, has a tensor the mapping does not know or one
    /// stored in a type Amalgam cannot decode.
    public init(file: GGUFFile) throws(CheckpointError) {
        self.file = file
        let arch = file["general.architecture"]?.stringValue ?? ""
        guard arch == "llama" else {
            throw .gguf(.unsupportedModel(path: file.path, reason: "architecture '\(arch)' is not supported; Amalgam converts Llama GGUF files (general.architecture = llama)"))
        }
        guard let h = file["llama.attention.head_count"]?.intValue, h > 0 else {
            throw .gguf(.missingKey(path: file.path, key: "llama.attention.head_count"))
        }
        heads = h
        kvHeads = file["llama.attention.head_count_kv"]?.intValue ?? h
        var infos: [TensorInfo] = []
        var names: [String: String] = [:]
        for e in file.tensors {
            guard let hf = GGUFLlamaNames.hfName(e.name) else {
                throw .gguf(.unsupportedModel(path: file.path, reason: "tensor '\(e.name)' has no Hugging Face Llama counterpart; this GGUF is not a plain Llama"))
            }
            // Refused at open, before any output is started: a type Amalgam cannot decode (the IQ and TQ types).
            guard e.type.canDequantize else { throw .gguf(.cannotDequantize(path: file.path, tensor: e.name, type: e.type.name)) }
            names[hf] = e.name
            infos.append(TensorInfo(name: hf, dtype: e.type.plainDType ?? .f32, shape: e.shape))
        }
        tensorInfos = infos
        ggufNameOf = names
        infoOf = Dictionary(uniqueKeysWithValues: infos.map { ($0.name, $0) })
    }

    /// Opens `path` as a Llama GGUF.
    public convenience init(path: String) throws(CheckpointError) {
        try self.init(file: GGUFFile(path: path))
    }

    public func info(_ name: String) -> TensorInfo? { infoOf[name] }

    /// The Hugging Face `config.json` of this model (for an output folder built from it).
    public func huggingFaceConfig(dtype: DType) throws(CheckpointError) -> ModelConfig {
        try GGUFLlamaConvert.huggingFaceConfig(file, dtype: dtype, tied: info("lm_head.weight") == nil)
    }

    /// The tensor under its HF name; q/k come back un-permuted in f32, others as `GGUFFile` gives them.
    public func tensor(_ name: String) throws(CheckpointError) -> Tensor {
        guard let g = ggufNameOf[name] else { throw .tensorNotFound(path: path, tensor: name) }
        let t = try file.tensor(g)
        guard let h = GGUFLlamaNames.permutedHeads(hfName: name, heads: heads, kvHeads: kvHeads) else { return t }
        let out = t.dtype == .f32 && !t.storage.isMapped ? t : t.converted(to: .f32).copyIfMapped()
        let buffer = UnsafeMutableBufferPointer(start: out.storage.mutableBase!.assumingMemoryBound(to: Float.self), count: out.elementCount)
        GGUFLlamaNames.permuteRows(buffer, rows: out.shape[0], heads: h, toHF: true)
        return out
    }

    public func release(_ name: String) { ggufNameOf[name].map { file.release($0) } }
}

extension Tensor {
    /// An owned copy when the bytes are a mapped view (which must not be written).
    func copyIfMapped() -> Tensor {
        guard storage.isMapped else { return self }
        let out = Tensor(zeros: dtype, shape: shape)
        out.storage.mutableBase!.copyMemory(from: bytes.baseAddress!, byteCount: byteCount)
        return out
    }
}
