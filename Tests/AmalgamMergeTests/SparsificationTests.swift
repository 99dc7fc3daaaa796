import AmalgamCore
import AmalgamMerge
import Testing

/// The sparsifiers' defining properties, for the random ones (DARE, DELLA) whose draws cannot match
/// PyTorch's generator, and the selection rule of the deterministic ones.
@Suite struct SparsificationTests {
    /// A task vector with distinct magnitudes.
    static func vector(_ n: Int, seed: UInt64 = 7) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<n).map { _ in Float(g.normal()) }
    }

    @Test func dareKeepsAboutDensityAndRestoresTheL1Norm() {
        let n = 200_000, density = 0.3
        let original = Self.vector(n)
        var delta = original
        Sparsification.random(&delta, density: density, rescale: true, seed: 42)
        let kept = delta.filter { $0 != 0 }.count
        // Binomial(n, p): standard deviation sqrt(n p (1 − p)) ≈ 205; allow 5 of them.
        let sd = (Double(n) * density * (1 - density)).squareRoot()
        #expect(abs(Double(kept) - Double(n) * density) < 5 * sd)
        let l1Before = original.reduce(0.0) { $0 + Double(abs($1)) }
        let l1After = delta.reduce(0.0) { $0 + Double(abs($1)) }
        #expect(abs(l1After - l1Before) / l1Before < 1e-5)
        // Kept elements are the originals times one common factor.
        let ratios = zip(delta, original).filter { $0.0 != 0 }.map { $0.0 / $0.1 }
        #expect(ratios.allSatisfy { abs($0 - ratios[0]) <= 1e-6 * ratios[0] })
    }

    @Test func dareWithoutRescaleKeepsValues() {
        let original = Self.vector(1000)
        var delta = original
        Sparsification.random(&delta, density: 0.5, rescale: false, seed: 3)
        #expect(zip(delta, original).allSatisfy { $0.0 == 0 || $0.0 == $0.1 })
    }

    @Test func sameSeedSameMaskOtherSeedOtherMask() {
        let original = Self.vector(150_000)   // three random chunks
        var a = original, b = original, c = original
        Sparsification.random(&a, density: 0.5, rescale: true, seed: 11)
        Sparsification.random(&b, density: 0.5, rescale: true, seed: 11)
        Sparsification.random(&c, density: 0.5, rescale: true, seed: 12)
        #expect(a == b)
        #expect(a != c)
    }

    @Test func maskIsFixedChunkByChunk() {
        // Each chunk draws from its own stream, so the mask of a long vector begins with the mask of a
        // short one: the split cannot depend on thread count.
        let n = Sparsification.randomChunk * 2 + 17
        let long = Sparsification.bernoulliMask(count: n, seed: 5, probability: 0.5)
        let short = Sparsification.bernoulliMask(count: Sparsification.randomChunk, seed: 5, probability: 0.5)
        #expect(Array(long[0..<short.count]) == short)
        var g = SeededGenerator(seed: SeedDerivation.seed(5, stream: 2))
        let third = (0..<17).map { _ in g.bernoulli(0.5) }
        #expect(Array(long[(2 * Sparsification.randomChunk)...]) == third)
    }

    @Test func dellaKeepProbabilityRisesLinearlyWithRank() {
        // Rows of 11 with magnitudes 1…11: rank r keeps with p = (d − ε) + 2ε·r/10.
        let rows = 20_000, length = 11, density = 0.5, epsilon = 0.3
        var delta = [Float](repeating: 0, count: rows * length)
        for r in 0..<rows { for j in 0..<length { delta[r * length + j] = Float((j * 7) % length + 1) * (j % 2 == 0 ? 1 : -1) } }
        let probabilities = Sparsification.dellaProbabilities(delta, shape: [rows, length], density: density, epsilon: epsilon)
        #expect(abs(probabilities[0 * 1 + 0] - (density - epsilon)) < 1e-12)   // |δ| = 1, lowest rank
        let top = (0..<length).first { abs(delta[$0]) == Float(length) }!
        #expect(abs(probabilities[top] - (density + epsilon)) < 1e-12)
        var masked = delta
        Sparsification.dellaMagprune(&masked, shape: [rows, length], density: density, epsilon: epsilon, rescale: false, seed: 9)
        // Kept fraction per magnitude against the line, within 5 binomial standard deviations.
        for magnitude in 1...length {
            let positions = (0..<length).filter { abs(delta[$0]) == Float(magnitude) }
            var kept = 0
            for r in 0..<rows { for j in positions where masked[r * length + j] != 0 { kept += 1 } }
            let p = (density - epsilon) + 2 * epsilon * Double(magnitude - 1) / Double(length - 1)
            let trials = Double(rows * positions.count)
            #expect(abs(Double(kept) / trials - p) < 5 * (p * (1 - p) / trials).squareRoot(), "magnitude \(magnitude)")
        }
    }

    @Test func dellaRescaleRestoresL1PerTensor() {
        let original = Self.vector(64 * 32)
        var delta = original
        Sparsification.dellaMagprune(&delta, shape: [64, 32], density: 0.4, epsilon: 0.2, rescale: true, seed: 1)
        let before = original.reduce(0.0) { $0 + Double(abs($1)) }
        let after = delta.reduce(0.0) { $0 + Double(abs($1)) }
        #expect(abs(after - before) / before < 1e-5)
        #expect(!Sparsification.dellaAccepts(density: 0.9, epsilon: 0.1))
        #expect(!Sparsification.dellaAccepts(density: 0.1, epsilon: 0.1))
        #expect(Sparsification.dellaAccepts(density: 0.5, epsilon: 0.1))
    }

    @Test func dareTiesMergeIsReproducibleBySeed() throws {
        let method = try #require(MergeMethods.named("dare_ties"))
        let base = [Float](repeating: 0, count: 4096)
        let inputs = [input("base", base), input("a", Self.vector(4096, seed: 1), ["weight": .number(1), "density": .number(0.5)]),
                      input("b", Self.vector(4096, seed: 2), ["weight": .number(0.5), "density": .number(0.5)])]
        let one = try method.merge(inputs, context: context(base: 0, seed: 100)).values
        let two = try method.merge(inputs, context: context(base: 0, seed: 100)).values
        let other = try method.merge(inputs, context: context(base: 0, seed: 101)).values
        #expect(one == two)
        #expect(one != other)
    }

    @Test func magnitudeKeepsTheTopKAndBreaksTiesByLowestIndex() {
        var delta: [Float] = [0.5, -3, 2, -2, 2, 1, -2, 0]
        // k = 4: |−3| then three of the four 2s; the lowest indices (2, 3, 4) win over 6.
        Sparsification.magnitude(&delta, density: 0.5, rescale: false)
        #expect(delta == [0, -3, 2, -2, 2, 0, 0, 0])
        var tiny: [Float] = [1, 2, 3]
        Sparsification.magnitude(&tiny, density: 0.1, rescale: false)   // at least one survives
        #expect(tiny == [0, 0, 3])
    }

    @Test func magnitudeSelectionMatchesAFullSort() {
        var g = SeededGenerator(seed: 99)
        // Few distinct magnitudes, so ties at the threshold are common.
        let values = (0..<5000).map { _ in Float(Int(g.nextDouble() * 40) - 20) / 4 }
        for density in [0.01, 0.1, 0.37, 0.5, 0.93] {
            var ours = values
            Sparsification.magnitude(&ours, density: density, rescale: false)
            let k = max(1, Int(density * Double(values.count)))
            let order = values.indices.sorted { abs(values[$0]) > abs(values[$1]) || (abs(values[$0]) == abs(values[$1]) && $0 < $1) }
            var expected = [Float](repeating: 0, count: values.count)
            for i in order.prefix(k) { expected[i] = values[i] }
            #expect(ours == expected, "density \(density)")
        }
    }

    @Test func breadcrumbsDropsOutliersAndSmallest() {
        var delta: [Float] = (1...10).map(Float.init)
        // density 0.5 keeps 5, gamma 0.2 drops the top 2: ranks [3, 8) ascending = values 4…8.
        Sparsification.magnitudeOutliers(&delta, density: 0.5, gamma: 0.2, rescale: false)
        #expect(delta == [0, 0, 0, 4, 5, 6, 7, 8, 0, 0])
    }
}

/// The seeded generator and seed derivation.
@Suite struct RandomTests {
    @Test func generatorIsDeterministicAndUniform() {
        var a = SeededGenerator(seed: 1), b = SeededGenerator(seed: 1)
        #expect((0..<10).map { _ in a.next() } == (0..<10).map { _ in b.next() })
        var g = SeededGenerator(seed: 2)
        let n = 100_000
        let mean = (0..<n).reduce(0.0) { s, _ in s + g.nextDouble() } / Double(n)
        #expect(abs(mean - 0.5) < 0.005)
        var normals = SeededGenerator(seed: 3)
        let xs = (0..<n).map { _ in Double(normals.normal()) }
        let m = xs.reduce(0, +) / Double(n)
        let v = xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(n)
        #expect(abs(m) < 0.02 && abs(v - 1) < 0.02)
        var f = SeededGenerator(seed: 4)
        #expect((0..<1000).allSatisfy { _ in let x = f.nextFloat(); return x >= 0 && x < 1 })
    }

    @Test func tensorSeedsAreStableAndDistinct() {
        // FNV-1a 64 reference values.
        #expect(SeedDerivation.fnv1a64("") == 0xCBF2_9CE4_8422_2325)
        #expect(SeedDerivation.fnv1a64("a") == 0xAF63_DC4C_8601_EC8C)
        let a = SeedDerivation.seed(run: 1, tensor: "model.layers.0.mlp.up_proj.weight")
        #expect(a == SeedDerivation.seed(run: 1, tensor: "model.layers.0.mlp.up_proj.weight"))
        #expect(a != SeedDerivation.seed(run: 1, tensor: "model.layers.1.mlp.up_proj.weight"))
        #expect(a != SeedDerivation.seed(run: 2, tensor: "model.layers.0.mlp.up_proj.weight"))
    }
}
