import Dispatch

/// A pointer that may cross into a parallel kernel. Only kernels that write disjoint ranges use it.
public struct SendablePointer<T>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<T>
    public init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}

/// A read-only pointer that may cross into a parallel kernel.
public struct SendableConstPointer<T>: @unchecked Sendable {
    public let base: UnsafePointer<T>
    public init(_ base: UnsafePointer<T>) { self.base = base }
}

/// Splits `0..<count` into contiguous chunks and runs them on all cores. The split depends only on
/// `count` and `chunks`, never on timing, so results are the same at any thread count as long as each
/// chunk's work is independent.
public func parallelChunks(_ count: Int, minimumChunk: Int = 1 << 16, _ body: @Sendable (Range<Int>) -> Void) {
    let threads = ProcessInfo.activeProcessorCountCached
    let chunks = max(1, min(threads * 4, count / max(minimumChunk, 1)))
    if chunks == 1 { body(0..<count); return }
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
        let lo = count * c / chunks
        let hi = count * (c + 1) / chunks
        body(lo..<hi)
    }
}

import Foundation

extension ProcessInfo {
    /// Cores to use: `AMALGAM_THREADS` if set, else all active ones.
    public static let activeProcessorCountCached: Int = {
        if let s = ProcessInfo.processInfo.environment["AMALGAM_THREADS"], let n = Int(s), n > 0 { return n }
        return ProcessInfo.processInfo.activeProcessorCount
    }()
}
