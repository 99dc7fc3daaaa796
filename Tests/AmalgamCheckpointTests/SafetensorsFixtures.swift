import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation

/// An unsigned integer written as JSON number text (bit patterns up to 2^64 - 1).
func unsigned(_ value: JSONValue) -> UInt64 {
    guard case let .number(text) = value, let v = UInt64(text) else { fatalError("not an unsigned integer: \(value)") }
    return v
}

/// Each element of a tensor as its raw little-endian bit pattern.
func elementBits(_ tensor: Tensor) -> [UInt64] {
    tensor.withUnsafeBytes { raw in
        let size = tensor.dtype.byteSize
        return (0..<tensor.elementCount).map { i in
            (0..<size).reduce(UInt64(0)) { $0 | UInt64(raw[i * size + $1]) << (8 * $1) }
        }
    }
}

/// A tensor we own holding the given element bit patterns.
func tensor(dtype: DType, shape: [Int], bits: [UInt64]) -> Tensor {
    let t = Tensor(zeros: dtype, shape: shape)
    let p = t.storage.mutableBase!
    for (i, b) in bits.enumerated() {
        for k in 0..<dtype.byteSize { p.storeBytes(of: UInt8(truncatingIfNeeded: b >> (8 * k)), toByteOffset: i * dtype.byteSize + k, as: UInt8.self) }
    }
    return t
}

/// Every regular file of a folder, by name.
func folderFiles(_ path: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: path).sorted()
}
