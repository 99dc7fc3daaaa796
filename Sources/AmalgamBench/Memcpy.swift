import Foundation

/// memcpy bandwidth (bytes read + written per second), the ceiling for streaming merges and conversions.
enum MemcpyBench {
    static func run(_ args: [String]) throws {
        print(String(format: args.contains("--quiet") ? "%.1f" : "memcpy: %.1f GB/s (read + written)", measure()))
    }

    /// Best of five copies of 512 MiB, in GB/s counting bytes read plus bytes written.
    static func measure(bytes: Int = 512 << 20) -> Double {
        let src = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        let dst = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { src.deallocate(); dst.deallocate() }
        memset(src, 1, bytes)
        memset(dst, 0, bytes)
        var best = Double.infinity
        for _ in 0..<5 { best = min(best, wallSeconds { _ = memcpy(dst, src, bytes) }) }
        return 2 * Double(bytes) / best / 1e9
    }
}
