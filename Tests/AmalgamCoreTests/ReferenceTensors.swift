import AmalgamCore
import AmalgamTestSupport
import Foundation

/// A minimal safetensors reader for the Core tests (the real reader lives in AmalgamCheckpoint, which
/// Core must not depend on): name -> (dtype, shape, raw bytes).
func referenceTensors(_ relativePath: String) throws -> [String: (dtype: DType, shape: [Int], bytes: [UInt8])] {
    let file = try fixtureBytes(relativePath)
    let n = file[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    let header = try JSONValue.parse(Array(file[8..<(8 + n)]))
    var result: [String: (dtype: DType, shape: [Int], bytes: [UInt8])] = [:]
    for (name, entry) in header.objectValue! where name != "__metadata__" {
        let dtype = DType(rawValue: entry["dtype"]!.stringValue!)!
        let shape = entry["shape"]!.arrayValue!.map { $0.intValue! }
        let offsets = entry["data_offsets"]!.arrayValue!.map { $0.intValue! }
        result[name] = (dtype, shape, Array(file[(8 + n + offsets[0])..<(8 + n + offsets[1])]))
    }
    return result
}

/// Little-endian unsigned words of a byte array.
func words<W: FixedWidthInteger & UnsignedInteger>(_ bytes: [UInt8], as _: W.Type) -> [W] {
    let size = MemoryLayout<W>.size
    return stride(from: 0, to: bytes.count, by: size).map { start in
        (0..<size).reduce(W(0)) { $0 | W(bytes[start + $1]) << (8 * $1) }
    }
}
