import AmalgamCheckpoint
import AmalgamCore

/// A weight matrix W [rows × cols] as `nn.Linear` stores it (out × in), read in place from the checkpoint
/// (a view of the mapped file): in f32, bf16 or f16, or in a GGUF block type (Q8_0, Q4_K, …) that the
/// quantized kernels compute on directly. The engine never needs a converted copy of a whole model.
public struct WeightMatrix: @unchecked Sendable {
    /// The tensor as the checkpoint holds it (for a quantized weight: its raw blocks as u8 [rows × row bytes]).
    public let tensor: Tensor
    /// Output features.
    public let rows: Int
    /// Input features.
    public let cols: Int
    /// The GGUF block type of a weight kept quantized; nil for f32, bf16 and f16.
    public let blockType: GGMLType?
    /// For a quantized weight whose rows are stored in another order (a GGUF's q and k), the stored row
    /// of each row.
    let storedRows: [Int]?

    /// Wraps a 2-D floating-point tensor; throws naming the tensor if its dtype or shape is wrong.
    public init(_ tensor: Tensor, name: String, path: String, rows: Int, cols: Int) throws(ModelError) {
        guard [.f32, .bf16, .f16].contains(tensor.dtype) else {
            throw .unsupportedDType(path: path, tensor: name, dtype: tensor.dtype)
        }
        guard tensor.shape == [rows, cols] else {
            throw .shapeMismatch(path: path, tensor: name, expected: [rows, cols], actual: tensor.shape)
        }
        self.tensor = tensor
        self.rows = rows
        self.cols = cols
        blockType = nil
        storedRows = nil
    }

    /// Wraps a block-quantized GGUF tensor in place; throws naming the tensor if its shape is wrong.
    /// The caller checks `QuantizedDot.supports(q.type)`.
    public init(quantized q: QuantizedTensor, name: String, path: String, rows: Int, cols: Int) throws(ModelError) {
        guard q.shape == [rows, cols], cols % q.type.blockLayout.elements == 0 else {
            throw .shapeMismatch(path: path, tensor: name, expected: [rows, cols], actual: q.shape)
        }
        precondition(QuantizedDot.supports(q.type), "no quantized kernel for \(q.type.name)")
        tensor = Tensor(dtype: .u8, shape: [rows, q.rowByteCount], storage: q.storage)
        self.rows = rows
        self.cols = cols
        blockType = q.type
        storedRows = q.storedRows
    }

    /// Bytes of one stored row.
    @inline(__always)
    var rowByteCount: Int { blockType.map { $0.byteCount(elements: cols) } ?? cols * tensor.dtype.byteSize }

    /// The first byte of row `r`.
    @inline(__always)
    func rowBytes(_ r: Int) -> UnsafeRawPointer { tensor.storage.base! + (storedRows?[r] ?? r) * rowByteCount }

    /// Rows `range` decoded to f32 into `out` [range.count × cols] (a quantized weight is dequantized
    /// row by row, as gguf-py dequantizes it).
    func decodeRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        if let blockType {
            for (i, r) in range.enumerated() {
                blockType.dequantize(UnsafeRawBufferPointer(start: rowBytes(r), count: rowByteCount),
                                     into: UnsafeMutableBufferPointer(start: out + i * cols, count: cols))
            }
            return
        }
        let n = range.count * cols
        Convert.toFloat32(UnsafeRawBufferPointer(start: rowBytes(range.lowerBound), count: n * tensor.dtype.byteSize),
                          from: tensor.dtype, into: UnsafeMutableBufferPointer(start: out, count: n))
    }
}

/// A vector of f32 parameters (norm weights, biases), decoded once: they are tiny.
func loadVector(_ source: TensorSource, _ name: String, count: Int) throws(ModelError) -> [Float] {
    let tensor = try loadTensor(source, name)
    guard tensor.shape == [count] else {
        throw .shapeMismatch(path: source.path, tensor: name, expected: [count], actual: tensor.shape)
    }
    guard tensor.dtype.isFloatingPoint else { throw .unsupportedDType(path: source.path, tensor: name, dtype: tensor.dtype) }
    return tensor.floats()
}

/// A tensor that must exist.
func loadTensor(_ source: TensorSource, _ name: String) throws(ModelError) -> Tensor {
    guard source.info(name) != nil else { throw .missingTensor(path: source.path, tensor: name) }
    do { return try source.tensor(name) } catch { throw .checkpoint(error) }
}

/// How the engine holds a model's weight matrices.
public enum WeightPrecision: String, Sendable, CaseIterable {
    /// As stored, read in place: f32, bf16 and f16 as they are, a GGUF's Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
    /// Q4_K, Q5_K and Q6_K tensors kept quantized (activations quantized as llama.cpp does). A GGUF's
    /// Q2_K and Q3_K tensors, which have no kernel yet, are dequantized to f32.
    case native
    /// Converted once to bf16 in memory (quantized tensors dequantized first).
    case bf16
    /// Converted once to f32 in memory (quantized tensors dequantized).
    case f32
}

/// A weight matrix that must exist with the given shape, held as `precision` asks; nil precision is the
/// engine's historical choice: plain tensors in place, block-quantized ones dequantized to f32.
func loadMatrix(_ source: TensorSource, _ name: String, rows: Int, cols: Int,
                precision: WeightPrecision?) throws(ModelError) -> WeightMatrix {
    if precision == .native, let quantized = source as? QuantizedTensorSource {
        guard source.info(name) != nil else { throw .missingTensor(path: source.path, tensor: name) }
        let q: QuantizedTensor?
        do { q = try quantized.quantizedTensor(name) } catch { throw .checkpoint(error) }
        if let q, QuantizedDot.supports(q.type) {
            return try WeightMatrix(quantized: q, name: name, path: source.path, rows: rows, cols: cols)
        }
    }
    let tensor = try loadTensor(source, name)
    switch precision {
    case .bf16 where tensor.dtype != .bf16:
        return try WeightMatrix(tensor.converted(to: .bf16), name: name, path: source.path, rows: rows, cols: cols)
    case .f32 where tensor.dtype != .f32:
        return try WeightMatrix(tensor.converted(to: .f32), name: name, path: source.path, rows: rows, cols: cols)
    default:
        return try WeightMatrix(tensor, name: name, path: source.path, rows: rows, cols: cols)
    }
}
