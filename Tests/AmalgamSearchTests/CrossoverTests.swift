import AmalgamSearch
import Foundation
import Testing

/// Split-point slerp on tiny vectors against hand-computed values.
@Suite struct CrossoverTests {
    func child(_ a: [Float], _ b: [Float], split: Int, ratio: Double) throws -> [Float] {
        let store = try FlatGenomeStore(parameterCount: a.count, slotCount: 2, seeds: [a, b])
        try store.makeCandidate(.seed(0), mutation: nil); try store.keepCandidate(inSlot: 0)
        try store.makeCandidate(.seed(1), mutation: nil); try store.keepCandidate(inSlot: 1)
        let omega = try store.innerProducts(0, 1).angle
        try store.makeCandidate(.crossover(a: 0, b: 1, plan: CrossoverPlan(splitPoint: split, ratio: ratio, omega: omega)),
                                mutation: nil)
        return store.candidate
    }

    @Test func orthogonalParentsSplitAtOne() throws {
        // ω = π/2, sin ω = 1. Index 0 takes t = w = ¼: (sin 3π/8, sin π/8); the rest t = ¾: (sin π/8, sin 3π/8).
        let c = try child([1, 0, 1, 0], [0, 1, 0, -1], split: 1, ratio: 0.25)
        let big: Float = 0.92387953, small: Float = 0.38268343
        let expected: [Float] = [big, big, small, -big]
        for i in 0..<4 { #expect(abs(c[i] - expected[i]) < 1e-6) }
    }

    @Test func plainSlerpIsSplitAtTheEnd() throws {
        // A·B = 20, |A|² = |B|² = 30: cos ω = 2/3.
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [4, 3, 2, 1]
        let c = try child(a, b, split: 4, ratio: 0.3)
        let omega = acos(2.0 / 3.0)
        let ca = sin(0.7 * omega) / sin(omega), cb = sin(0.3 * omega) / sin(omega)
        for i in 0..<4 { #expect(abs(Double(c[i]) - (ca * Double(a[i]) + cb * Double(b[i]))) < 1e-5) }
    }

    @Test func parallelParentsFallBackToLerp() throws {
        // ω = 0: the head gets ¾A + ¼B, the tail ¼A + ¾B.
        let c = try child([1, 2], [2, 4], split: 1, ratio: 0.25)
        #expect(abs(c[0] - 1.25) < 1e-6)
        #expect(abs(c[1] - 3.5) < 1e-6)
    }

    @Test func splitAtZeroGivesEveryParameterTheOtherWeight() throws {
        let c = try child([1, 0], [0, 1], split: 0, ratio: 0.0)  // all t = 1: the child is B
        #expect(abs(c[0]) < 1e-6 && abs(c[1] - 1) < 1e-6)
    }

    @Test func mutationNoiseDependsOnlyOnSeedAndIndex() throws {
        let n = Mutation.blockSize * 2 + 17
        let store = try FlatGenomeStore(parameterCount: n, slotCount: 1, seeds: [[Float](repeating: 0, count: n)])
        try store.makeCandidate(.seed(0), mutation: Mutation(standardDeviation: 0.01, seed: 7))
        let first = store.candidate
        try store.makeCandidate(.seed(0), mutation: Mutation(standardDeviation: 0.01, seed: 7))
        #expect(store.candidate == first)
        let mean = first.reduce(0, +) / Float(n)
        let variance = first.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(n)
        #expect(abs(mean) < 0.001)
        #expect(abs(variance.squareRoot() - 0.01) < 0.001)
    }
}
