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

struct ParallelTeamTests {
    /// Region after region (the hot-loop pattern), a team of three threads runs each chunk of `parallelChunks`'s
    /// split exactly once; a region started from inside a region, or from two threads at once, still does.
    @Test func regionsRunEveryChunkOnceWithParallelChunksRanges() {
        let team = ParallelTeam(threads: 3)
        let lock = Lock()
        for count in [0, 1, 5, 40, 240, 241, 19_210] {
            for minimumChunk in [1, 2, 8] {
                nonisolated(unsafe) var expected: [Range<Int>] = [], got: [Range<Int>] = []
                parallelChunks(count, minimumChunk: minimumChunk) { range in lock.withLock { expected.append(range) } }
                for _ in 0..<50 {
                    got = []
                    team.chunks(count, minimumChunk: minimumChunk) { range in lock.withLock { got.append(range) } }
                    #expect(got.sorted { $0.lowerBound < $1.lowerBound } == expected.sorted { $0.lowerBound < $1.lowerBound },
                            "count \(count), minimum chunk \(minimumChunk)")
                }
            }
        }
        // Nested and concurrent regions fall back to Dispatch and still cover everything once.
        let visits = UnsafeMutableBufferPointer<Int>.allocate(capacity: 64 * 64)
        defer { visits.deallocate() }
        visits.initialize(repeating: 0)
        let p = SendablePointer(visits.baseAddress!)
        parallelChunks(2, minimumChunk: 1) { outer in
            for _ in outer {
                team.chunks(64, minimumChunk: 1) { range in
                    for i in range {
                        team.chunks(64, minimumChunk: 1) { inner in
                            lock.withLock { for j in inner { p.base[i * 64 + j] += 1 } }
                        }
                    }
                }
            }
        }
        #expect(visits.allSatisfy { $0 == 2 })
    }
}
