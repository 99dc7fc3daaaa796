import AmalgamCheckpoint
import AmalgamCore

/// A weight matrix W [rows × cols] as `nn.Linear` stores it (out × in), in f32, bf16 or f16, read in
/// place from the checkpoint (a view of the mapped file): the engine never converts a whole model.
public struct WeightMatrix: @unchecked Sendable {
    /// The tensor as the checkpoint holds it.
    public let tensor: Tensor
    /// Output features.
    public let rows: Int
    /// Input features.
    public let cols: Int

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
    }

    /// The first byte of row `r`.
    @inline(__always)
    func rowBytes(_ r: Int) -> UnsafeRawPointer { tensor.storage.base! + r * cols * tensor.dtype.byteSize }

    /// Rows `range` decoded to f32 into `out` [range.count × cols].
    func decodeRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
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

/// A weight matrix that must exist with the given shape.
func loadMatrix(_ source: TensorSource, _ name: String, rows: Int, cols: Int) throws(ModelError) -> WeightMatrix {
    try WeightMatrix(loadTensor(source, name), name: name, path: source.path, rows: rows, cols: cols)
}
