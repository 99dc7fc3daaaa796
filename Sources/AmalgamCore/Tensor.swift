import Foundation

/// The bytes behind a tensor: memory we own, or a range of a mapped file.
public final class TensorStorage: @unchecked Sendable {
    /// Start of the bytes.
    public let base: UnsafeRawPointer?
    /// Number of bytes.
    public let count: Int
    private let owned: UnsafeMutableRawPointer?
    private let file: MappedFile?

    /// Fresh zeroed memory of `count` bytes, 64-byte aligned.
    public init(zeroedByteCount count: Int) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1))
        owned = p
        base = UnsafeRawPointer(p)
        self.count = count
        file = nil
    }

    /// A zero-copy view of `[offset, offset + count)` of a mapped file.
    public init(file: MappedFile, offset: Int, count: Int) {
        let bytes = file.bytes(offset: offset, count: count)
        base = bytes.baseAddress
        self.count = count
        owned = nil
        self.file = file
    }

    deinit { owned?.deallocate() }

    /// Whether the bytes belong to a mapped file.
    public var isMapped: Bool { file != nil }

    /// Tells the kernel the bytes `range` (relative to `base`) are not needed for now; for mapped storage
    /// the pages are dropped from this process and come back from the page cache when read again, so a
    /// streaming pass over a large tensor holds only the pages in use. Owned storage is left alone.
    ///
    /// The range is widened to whole fault-around windows (`faultAroundBytes` of address space,
    /// clipped to the file): a read fault maps the cached pages of its whole window, so a reader at the
    /// start of one range maps the end of the range before it. Were that range already released, those
    /// pages would stay mapped for good (measured: ≈ 1 MB per merged tensor, 130 MB by the end of a
    /// 147-tensor TIES merge). With every release widened, the last of two neighbouring readers to
    /// finish drops their shared window.
    public func releasePages(_ range: Range<Int>) {
        guard let file, let base, let start = file.base, !range.isEmpty else { return }
        let window = Self.faultAroundBytes
        let offset = start.distance(to: base)
        let lower = max(0, (Int(bitPattern: base + range.lowerBound) & ~(window - 1)) - Int(bitPattern: start))
        let upper = min(file.count, ((Int(bitPattern: base + range.upperBound) + window - 1) & ~(window - 1)) - Int(bitPattern: start))
        precondition(lower <= offset + range.lowerBound && upper >= offset + range.upperBound)
        file.doneReading(offset: lower, count: upper - lower)
    }

    /// Linux's default `fault_around_bytes`: a read fault on a file mapping maps the cached pages of the
    /// aligned window of this many bytes around it.
    public static let faultAroundBytes = 64 << 10

    /// Writable bytes; only owned storage may be written.
    public var mutableBase: UnsafeMutableRawPointer? { owned }
}

/// A dense, contiguous, row-major tensor of any `DType`.
public struct Tensor: Sendable {
    public let dtype: DType
    public let shape: [Int]
    public let storage: TensorStorage

    /// Wraps existing storage; its size must be `shape × dtype size`.
    public init(dtype: DType, shape: [Int], storage: TensorStorage) {
        precondition(storage.count == Tensor.elementCount(shape) * dtype.byteSize, "storage size does not match shape")
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
    }

    /// A zero-filled tensor we own.
    public init(zeros dtype: DType, shape: [Int]) {
        self.init(dtype: dtype, shape: shape,
                  storage: TensorStorage(zeroedByteCount: Tensor.elementCount(shape) * dtype.byteSize))
    }

    /// An f32 tensor holding `values`.
    public init(_ values: [Float], shape: [Int]) {
        precondition(values.count == Tensor.elementCount(shape), "\(values.count) values for shape \(shape)")
        self.init(zeros: .f32, shape: shape)
        values.withUnsafeBytes { source in
            if let from = source.baseAddress, source.count > 0 { storage.mutableBase!.copyMemory(from: from, byteCount: source.count) }
        }
    }

    /// Number of elements of a shape (1 for a scalar).
    public static func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    public var elementCount: Int { Tensor.elementCount(shape) }
    public var byteCount: Int { storage.count }
    public var rank: Int { shape.count }

    /// Strides in elements of the contiguous row-major layout.
    public var strides: [Int] {
        var result = [Int](repeating: 1, count: shape.count)
        var step = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            result[axis] = step
            step *= shape[axis]
        }
        return result
    }

    /// The raw bytes. Valid only while this tensor's storage is alive: Swift may free a temporary
    /// tensor right after this property is read, so use `withUnsafeBytes` for a tensor nothing else holds.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage.base, count: storage.count) }

    /// Calls `body` with the raw bytes, keeping the storage alive until it returns.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        defer { withExtendedLifetime(storage) {} }
        return try body(bytes)
    }

    /// A copy of the raw bytes.
    public var byteArray: [UInt8] { withUnsafeBytes { Array($0) } }

    /// The values as f32 (a copy; integer types are converted by value).
    public func floats() -> [Float] {
        [Float](unsafeUninitializedCapacity: elementCount) { buffer, initialized in
            Convert.toFloat32(bytes, from: dtype, into: buffer)
            initialized = elementCount
        }
    }

    /// The same values stored as `target`: float targets round once to nearest even, integer targets
    /// truncate toward zero.
    public func converted(to target: DType) -> Tensor {
        if target == dtype { return self }
        let out = Tensor(zeros: target, shape: shape)
        let outBytes = UnsafeMutableRawBufferPointer(start: out.storage.mutableBase, count: out.byteCount)
        if dtype == .f32 {
            Convert.fromFloat32(bytes.bindMemory(to: Float.self), to: target, into: outBytes)
        } else if target == .f32 {
            Convert.toFloat32(bytes, from: dtype, into: outBytes.bindMemory(to: Float.self))
        } else if dtype == .f64 {
            Convert.fromFloat64(bytes.bindMemory(to: Double.self), to: target, into: outBytes)
        } else {
            // Through f64 in chunks: exact for every source (but i64 beyond 2⁵³), so the only rounding
            // is the final one, and no full-size temporary is allocated.
            let n = elementCount
            withUnsafeTemporaryAllocation(of: Double.self, capacity: Convert.chunk) { tmp in
                var start = 0
                while start < n {
                    let m = min(Convert.chunk, n - start)
                    let part = UnsafeMutableBufferPointer(rebasing: tmp[0..<m])
                    Convert.toFloat64(UnsafeRawBufferPointer(rebasing: bytes[(start * dtype.byteSize)...]), from: dtype, into: part)
                    Convert.fromFloat64(UnsafeBufferPointer(part), to: target,
                                        into: UnsafeMutableRawBufferPointer(rebasing: outBytes[(start * target.byteSize)...]))
                    start += m
                }
            }
        }
        return out
    }

    /// Same bytes, another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(dtype: dtype, shape: newShape, storage: storage)
    }
}
