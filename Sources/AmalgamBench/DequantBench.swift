import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// `amalgam-bench dequant [MiB]`: GGUF dequantization speed per type, in GB/s of f32 output, beside
/// memcpy of the same output size measured in the same run, and the peak resident memory.
enum DequantBench {
    /// Where each type keeps its f16 scales, so random blocks get sane ones (no NaN, no denormals).
    static let scaleOffsets: [GGMLType: [Int]] = [
        .q4_0: [0], .q4_1: [0, 2], .q5_0: [0], .q5_1: [0, 2], .q8_0: [0],
        .q2_K: [80, 82], .q3_K: [108], .q4_K: [0, 2], .q5_K: [0, 2], .q6_K: [208],
    ]

    static func run(_ arguments: [String]) {
        let mib = arguments.first.flatMap(Int.init) ?? 256
        let count = mib << 20 / 4 / 256 * 256
        let types: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]
        print("dequantize \(count) values (\(mib) MiB of f32 output), best of 5, \(ProcessInfo.activeProcessorCountCached) threads")
        let out = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        out.initialize(repeating: 0)
        defer { out.deallocate() }
        let source = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        var rng = SystemRandomNumberGenerator()
        for i in 0..<count { source[i] = Float.random(in: -1...1, using: &rng) }
        defer { source.deallocate() }

        let bytes = Double(count * 4)
        let copy1 = best { out.baseAddress!.update(from: source.baseAddress!, count: count) }
        let src = SendableConstPointer(UnsafePointer(source.baseAddress!)), dst = SendablePointer(out.baseAddress!)
        let copyN = best {
            parallelChunks(count, minimumChunk: 1 << 18) { r in (dst.base + r.lowerBound).update(from: src.base + r.lowerBound, count: r.count) }
        }
        print(String(format: "%-6@ %8.1f GB/s (1 thread), %.1f GB/s (parallel chunks)", "memcpy", bytes / copy1 / 1e9, bytes / copyN / 1e9))
        for type in types {
            let data = blocks(of: type, count: count, from: UnsafeBufferPointer(source))
            let t = data.withUnsafeBytes { raw in best { type.dequantize(raw, into: out) } }
            print(String(format: "%-6@ %8.1f GB/s of f32  (%.2f× memcpy, %.1f GB/s read)", type.name, bytes / t / 1e9,
                         copyN / t, Double(data.count) / t / 1e9))
        }
        print(String(format: "peak RSS %.1f MB", peakMemoryMB()))
    }

    /// Blocks of `type` for `count` values: encoded from `source` where Amalgam can encode the type,
    /// else random bytes with sane f16 scales.
    static func blocks(of type: GGMLType, count: Int, from source: UnsafeBufferPointer<Float>) -> [UInt8] {
        if type.canQuantize { return type.quantize(UnsafeBufferPointer(rebasing: source[0..<count])) }
        let (per, size) = type.blockLayout
        var rng = SystemRandomNumberGenerator()
        var data = [UInt8](repeating: 0, count: count / per * size)
        data.withUnsafeMutableBytes { raw in
            let words = raw.count / 8
            let p = raw.baseAddress!
            for i in 0..<words { p.storeBytes(of: rng.next() as UInt64, toByteOffset: i * 8, as: UInt64.self) }
            let scale = Float16(0.01).bitPattern
            for b in 0..<(count / per) {
                for o in scaleOffsets[type] ?? [] { p.storeBytes(of: scale, toByteOffset: b * size + o, as: UInt16.self) }
            }
        }
        return data
    }

    /// The fastest of five runs, in seconds.
    static func best(_ body: () -> Void) -> Double {
        var fastest = Double.infinity
        for _ in 0..<5 { fastest = min(fastest, wallSeconds(body)) }
        return fastest
    }
}
