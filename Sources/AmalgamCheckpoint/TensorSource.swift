import AmalgamCore

/// What a checkpoint says about one tensor before reading it.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]

    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    public var elementCount: Int { Tensor.elementCount(shape) }
    public var byteCount: Int { elementCount * dtype.byteSize }
}

/// Anything that hands out named tensors lazily: a safetensors file, a sharded folder, a GGUF file.
public protocol TensorSource: Sendable {
    /// The file or folder, for messages.
    var path: String { get }
    /// Every tensor, in the checkpoint's own order.
    var tensorInfos: [TensorInfo] { get }
    /// Info for one tensor, or nil if absent.
    func info(_ name: String) -> TensorInfo?
    /// The tensor's values; a view of the mapped file where the format allows it.
    func tensor(_ name: String) throws(CheckpointError) -> Tensor
    /// Hints that a tensor's bytes are no longer needed (lets streaming stay in bounded memory).
    func release(_ name: String)
}

extension TensorSource {
    public var tensorNames: [String] { tensorInfos.map(\.name) }
    public func release(_ name: String) {}
}
