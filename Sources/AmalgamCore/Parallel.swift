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
    let chunks = parallelChunkCount(count, minimumChunk: minimumChunk)
    if chunks == 1 { body(0..<count); return }
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
        body(parallelChunkRange(c, of: chunks, count: count))
    }
}

/// How many chunks `parallelChunks` splits `0..<count` into: four per core, none smaller than `minimumChunk`.
/// (`ParallelTeam` uses the same split, so both give the same bytes.)
public func parallelChunkCount(_ count: Int, minimumChunk: Int) -> Int {
    max(1, min(ProcessInfo.activeProcessorCountCached * 4, count / max(minimumChunk, 1)))
}

/// Chunk `index` of `chunks` contiguous chunks of `0..<count`.
@inline(__always)
public func parallelChunkRange(_ index: Int, of chunks: Int, count: Int) -> Range<Int> {
    count * index / chunks ..< count * (index + 1) / chunks
}

import Foundation

extension ProcessInfo {
    /// Cores to use: `AMALGAM_THREADS` if set, else all active ones.
    public static let activeProcessorCountCached: Int = {
        if let s = ProcessInfo.processInfo.environment["AMALGAM_THREADS"], let n = Int(s), n > 0 { return n }
        return ProcessInfo.processInfo.activeProcessorCount
    }()
}
