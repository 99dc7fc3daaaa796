import AmalgamCore
import Testing

struct ParallelTests {
    /// Every index is visited exactly once, in contiguous chunks whose bounds depend only on the count.
    @Test(arguments: [0, 1, 65_535, 65_536 * 9 + 7])
    func chunksCoverTheRangeOnce(count: Int) {
        let visits = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(count, 1))
        defer { visits.deallocate() }
        visits.initialize(repeating: 0)
        let lock = Lock()
        nonisolated(unsafe) var ranges: [Range<Int>] = []
        let p = SendablePointer(visits.baseAddress!)
        parallelChunks(count) { range in
            for i in range { p.base[i] &+= 1 }
            lock.withLock { ranges.append(range) }
        }
        #expect(visits.prefix(count).allSatisfy { $0 == 1 })
        let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
        #expect(zip(sorted, sorted.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        nonisolated(unsafe) var again: [Range<Int>] = []
        parallelChunks(count) { range in lock.withLock { again.append(range) } }
        #expect(again.sorted { $0.lowerBound < $1.lowerBound } == sorted)
    }
}
