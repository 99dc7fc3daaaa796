import AmalgamCore

/// A weight matrix kept in its GGUF block type: a view of the mapped file, for an engine that computes
/// on the blocks directly instead of a dequantized f32 copy.
public struct QuantizedTensor: Sendable {
    /// The block type (`Q4_1`, `Q6_K`, …).
    public let type: GGMLType
    /// [rows, cols] in PyTorch order (each row is `cols / block size` whole blocks).
    public let shape: [Int]
    /// The stored blocks, row after row.
    public let storage: TensorStorage
    /// For each Hugging Face row, the stored row that holds it: llama.cpp interleaves the rows of q and k
    /// within each head for its rope (`GGUFLlamaNames.permuteRows`). Nil when the rows are in order.
    public let storedRows: [Int]?

    /// Wraps stored blocks; `storage` must hold `shape[0]` rows of `shape[1]` values of `type`.
    public init(type: GGMLType, shape: [Int], storage: TensorStorage, storedRows: [Int]? = nil) {
        precondition(shape.count == 2 && storage.count == shape[0] * type.byteCount(elements: shape[1]), "\(type.name) storage does not match \(shape)")
        self.type = type
        self.shape = shape
        self.storage = storage
        self.storedRows = storedRows
    }

    /// Bytes of one stored row.
    public var rowByteCount: Int { type.byteCount(elements: shape[1]) }
}

/// A tensor source that can hand out block-quantized tensors without dequantizing them.
public protocol QuantizedTensorSource: TensorSource {
    /// The tensor in its block type, or nil when it is stored in a plain type (read it with `tensor`).
    func quantizedTensor(_ name: String) throws(CheckpointError) -> QuantizedTensor?
}

extension GGUFLlamaSource: QuantizedTensorSource {
    public func quantizedTensor(_ name: String) throws(CheckpointError) -> QuantizedTensor? {
        guard let g = GGUFLlamaNames.ggufName(name), let e = file.entry(g) else { throw .tensorNotFound(path: path, tensor: name) }
        guard e.type.plainDType == nil, e.shape.count == 2 else { return nil }
        guard e.type.canDequantize else { throw .gguf(.cannotDequantize(path: path, tensor: g, type: e.type.name)) }
        let storage = file.storage(e)
        var stored: [Int]? = nil
        if let h = GGUFLlamaNames.permutedHeads(hfName: name, heads: heads, kvHeads: kvHeads), e.shape[0] % (2 * h) == 0 {
            let rows = e.shape[0], headRows = rows / h, half = headRows / 2
            var order = [Int](repeating: 0, count: rows)
            for head in 0..<h {
                for i in 0..<half {
                    for j in 0..<2 { order[head * headRows + j * half + i] = head * headRows + 2 * i + j }
                }
            }
            stored = order
        }
        return QuantizedTensor(type: e.type, shape: e.shape, storage: storage, storedRows: stored)
    }
}
