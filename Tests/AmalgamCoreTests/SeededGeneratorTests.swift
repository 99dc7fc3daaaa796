import AmalgamCore
import Testing

/// The seeded generator: reproducible, with the right moments.
@Suite struct SeededGeneratorTests {
    @Test func sameSeedSameStream() {
        var a = SeededGenerator(seed: 3), b = SeededGenerator(seed: 3), c = SeededGenerator(seed: 4)
        let x = (0..<5).map { _ in a.next() }
        #expect(x == (0..<5).map { _ in b.next() })
        #expect(x != (0..<5).map { _ in c.next() })
        #expect(SeededGenerator(state: a.state) == a)
    }

    @Test func normalHasMeanZeroAndUnitVariance() {
        var g = SeededGenerator(seed: 1)
        let n = 200_000
        var sum = 0.0, squares = 0.0, beyondThree = 0
        for _ in 0..<n {
            let x = Double(g.normal())
            sum += x; squares += x * x
            if abs(x) > 3 { beyondThree += 1 }
        }
        #expect(abs(sum / Double(n)) < 0.01)
        #expect(abs(squares / Double(n) - 1) < 0.02)
        #expect(abs(Double(beyondThree) / Double(n) - 0.0027) < 0.0008)  // the tail is sampled too
    }

    @Test func categoricalFollowsTheWeights() {
        var g = SeededGenerator(seed: 2)
        var counts = [0, 0, 0, 0]
        for _ in 0..<40_000 { counts[g.categorical([1, 0, 3, 0])] += 1 }
        #expect(counts[1] == 0 && counts[3] == 0)
        #expect(abs(Double(counts[2]) / 40_000 - 0.75) < 0.01)
    }

    @Test func addNormalsIsOneNormalPerValueInOrder() {
        var a = SeededGenerator(seed: 11, stream: 3), b = a
        var values = (0..<100_000).map { Float($0 % 7) - 3 }  // enough draws to reach the wedge and the tail
        var expected = values
        for i in expected.indices { expected[i] += 0.25 * a.normal() }
        values.withUnsafeMutableBufferPointer { b.addNormals(scale: 0.25, to: $0) }
        #expect(values == expected)
        #expect(a.next() == b.next())
    }
}
