import AmalgamCore

/// A named f32 parameter being trained: its values and the gradient that backward passes accumulate
/// into, both owned (64-byte aligned) and freed with the object. Optimizers update `value` in place.
public final class TrainableTensor: @unchecked Sendable {
    /// The checkpoint's name for it (e.g. `model.layers.3.mlp.up_proj.weight`).
    public let name: String
    /// Its shape as the checkpoint stores it.
    public let shape: [Int]
    /// Number of elements.
    public let count: Int
    /// The values [count].
    public let value: UnsafeMutablePointer<Float>
    /// The values as an f32 tensor sharing their memory (what the engine's kernels read).
    public let storage: Tensor
    /// ∂L/∂value [count], accumulated with `+=` by backward passes.
    public let gradient: UnsafeMutablePointer<Float>

    /// A tensor holding a copy of `values`, gradient zero.
    public init(name: String, shape: [Int], values: [Float]) {
        precondition(values.count == Tensor.elementCount(shape), "\(name): \(values.count) values for shape \(shape)")
        self.name = name
        self.shape = shape
        count = values.count
        storage = Tensor(zeros: .f32, shape: shape)
        value = storage.storage.mutableBase!.assumingMemoryBound(to: Float.self)
        gradient = Self.allocate(count)
        value.update(from: values, count: count)
        gradient.update(repeating: 0, count: count)
    }

    deinit { gradient.deallocate() }

    private static func allocate(_ n: Int) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer.allocate(byteCount: max(n, 1) * 4, alignment: 64).bindMemory(to: Float.self, capacity: max(n, 1))
    }

    /// The values (a copy).
    public var values: [Float] { Array(UnsafeBufferPointer(start: value, count: count)) }
    /// The gradient (a copy).
    public var gradients: [Float] { Array(UnsafeBufferPointer(start: gradient, count: count)) }

    /// Sets the gradient to zero before a new accumulation.
    public func zeroGradient() { gradient.update(repeating: 0, count: count) }

    /// The values as a tensor of `dtype` (rounded once to nearest even).
    public func tensor(as dtype: DType = .f32) -> Tensor {
        Tensor(values, shape: shape).converted(to: dtype)
    }

    /// Zero values and gradient.
    public convenience init(zeros name: String, shape: [Int]) {
        self.init(name: name, shape: shape, values: [Float](repeating: 0, count: Tensor.elementCount(shape)))
    }
}
