/// Scratch f32 memory for one forward pass (activations), 64-byte aligned, freed with the buffer.
final class FloatBuffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(_ count: Int) {
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64).bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// A buffer holding a copy of `values`.
    convenience init(_ values: [Float]) {
        self.init(values.count)
        pointer.update(from: values, count: values.count)
    }

    deinit { pointer.deallocate() }

    /// The values as an array (a copy).
    func array(_ n: Int? = nil) -> [Float] { Array(UnsafeBufferPointer(start: pointer, count: n ?? count)) }
}
