import AmalgamCore
import AmalgamLab
import AmalgamModels
import AmalgamSearch
import AmalgamTestSupport
import Foundation
import Testing

/// The digits data, the MLP classifier and a short M2N2 run on them.
@Suite struct DigitsTests {
    @Test func splitIsFirst1437ForTrainingAndLast360ForTest() throws {
        let (train, test) = try DigitsDataset(csvPath: digitsCSV).split()
        #expect(train.count == 1437 && test.count == 360)
        #expect(Array(train.augmented.prefix(8)) == [0, 0, 5, 13, 9, 1, 0, 0])  // not normalised
        #expect(train.labels.prefix(3) == [0, 1, 2])
        #expect(MLPClassifier.digits.parameterCount == 19_210)
    }

    @Test func gemmForwardMatchesPlainLoops() {
        let mlp = MLPClassifier(inputs: 3, hidden: 5, outputs: 4)
        var g = SeededGenerator(seed: 9)
        let p = (0..<mlp.parameterCount).map { _ in g.normal() }
        let features: [Float] = (0..<6).map { _ in Float(g.integer(below: 17)) }
        let batch = MLPBatch(features: features, inputs: 3, labels: [1, 2])
        let workspace = MLPWorkspace(classifier: mlp, count: 2)
        p.withUnsafeBufferPointer { mlp.forward(parameters: $0.baseAddress!, batch: batch, workspace: workspace) }
        for r in 0..<2 {
            var h = [Float](repeating: 0, count: 5)
            for j in 0..<5 {
                var z = p[15 + j]  // b1 follows W1 (3 × 5)
                for i in 0..<3 { z += features[r * 3 + i] * p[i * 5 + j] }
                h[j] = max(z, 0)
            }
            for c in 0..<4 {
                var l = p[20 + 20 + c]  // b2 follows W2 (5 × 4) at 20
                for j in 0..<5 { l += h[j] * p[20 + j * 4 + c] }
                #expect(abs(workspace.logits[r * 4 + c] - l) < 1e-4 * max(1, abs(l)))
            }
        }
    }

    @Test func fusedSparseScoringAgreesWithTheTwoGEMMs() throws {
        let (train, _) = try DigitsDataset(csvPath: digitsCSV).split()
        let mlp = MLPClassifier.digits
        let fused = MLPSparseScoring(classifier: mlp, batch: train)
        let workspace = MLPWorkspace(classifier: mlp, count: train.count)
        for seed in 0..<3 as Range<UInt64> {
            var g = SeededGenerator(seed: seed)
            let p = (0..<mlp.parameterCount).map { _ in 0.05 * g.normal() }
            var a = [Float](repeating: 0, count: train.count), b = a
            p.withUnsafeBufferPointer { pp in
                a.withUnsafeMutableBufferPointer { mlp.scoreCorrect(parameters: pp.baseAddress!, batch: train, workspace: workspace, into: $0) }
                b.withUnsafeMutableBufferPointer { fused.scoreCorrect(parameters: pp.baseAddress!, into: $0) }
            }
            // Sums in another order may flip an exact near-tie, nothing more.
            #expect(zip(a, b).filter { $0 != $1 }.count <= 2)
            #expect(a.reduce(0, +) > 50)
        }
    }

    /// The kernel's documented order, written as plain scalar loops: hidden unit u of row r is the fused
    /// multiply-add chain over the row's features in index order (bias last, as feature 64), ReLU; logit c
    /// starts at b2[c] and adds h_j · W2[j, c] for j = 0, 1, …, 255; first arg-max. The scores must be exactly
    /// these (so a reordering of the kernel's loops cannot change a run's result).
    @Test func fusedSparseScoringIsExactlyTheScalarChainsInItsDocumentedOrder() throws {
        let (train, _) = try DigitsDataset(csvPath: digitsCSV).split()
        try expectScalarChains(MLPClassifier.digits, train, seeds: 0..<2)
    }

    /// The same for other output counts (the second layer is padded to 16 lanes: 1, 8, 9, 10, 12 and 16 real
    /// ones), on a smaller hidden layer and the first 150 training images.
    @Test(arguments: [1, 8, 9, 10, 12, 16])
    func fusedSparseScoringIsExactlyTheScalarChainsForOutputs(_ outputs: Int) throws {
        let (train, _) = try DigitsDataset(csvPath: digitsCSV).split()
        let width = train.inputs + 1
        let features = (0..<150).flatMap { r in train.augmented[r * width ..< r * width + train.inputs] }
        let batch = MLPBatch(features: Array(features), inputs: train.inputs, labels: Array(train.labels.prefix(150)))
        try expectScalarChains(MLPClassifier(inputs: train.inputs, hidden: 32, outputs: outputs), batch, seeds: 3..<5)
    }

    private func expectScalarChains(_ mlp: MLPClassifier, _ train: MLPBatch, seeds: Range<UInt64>) throws {
        let fused = MLPSparseScoring(classifier: mlp, batch: train)
        let (h, o, width) = (mlp.hidden, mlp.outputs, mlp.inputs + 1)
        let second = width * h  // [W2; b2] follows [W1; b1]
        for seed in seeds {
            var g = SeededGenerator(seed: seed)
            let p = (0..<mlp.parameterCount).map { _ in 0.05 * g.normal() }
            var expected = [Float](repeating: 0, count: train.count)
            var hidden = [Float](repeating: 0, count: h)
            for r in 0..<train.count {
                let x = train.augmented[r * width ..< (r + 1) * width]
                for u in 0..<h {
                    var acc: Float = 0
                    for (c, v) in x.enumerated() where v != 0 { acc = acc.addingProduct(v, p[c * h + u]) }
                    hidden[u] = max(acc, 0)
                }
                var logits = (0..<o).map { p[second + h * o + $0] }
                for j in 0..<h { for c in 0..<o { logits[c] = logits[c].addingProduct(hidden[j], p[second + j * o + c]) } }
                let guess = logits.indices.max { logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 > $1) }!
                expected[r] = guess == Int(train.labels[r]) ? 1 : 0
            }
            var got = [Float](repeating: -1, count: train.count)
            p.withUnsafeBufferPointer { pp in got.withUnsafeMutableBufferPointer { fused.scoreCorrect(parameters: pp.baseAddress!, into: $0) } }
            #expect(got == expected, "seed \(seed): \(zip(got, expected).filter { $0 != $1 }.count) examples differ")
        }
    }

    @Test func gradientMatchesFiniteDifferences() {
        let mlp = MLPClassifier(inputs: 3, hidden: 4, outputs: 3)
        var g = SeededGenerator(seed: 4)
        let p = (0..<mlp.parameterCount).map { _ in 0.5 * g.normal() }
        let batch = MLPBatch(features: (0..<15).map { _ in g.normal() }, inputs: 3, labels: [0, 1, 2, 1, 0])
        let analytic = mlp.lossAndGradient(parameters: p, batch: batch).gradient
        for i in 0..<mlp.parameterCount {
            var plus = p, minus = p
            plus[i] += 1e-3
            minus[i] -= 1e-3
            let numeric = (mlp.lossAndGradient(parameters: plus, batch: batch).loss
                - mlp.lossAndGradient(parameters: minus, batch: batch).loss) / 2e-3
            #expect(abs(numeric - Double(analytic[i])) < 2e-3 + 0.02 * abs(numeric), "parameter \(i)")
        }
    }

    @Test func pretrainedSeedsEachKnowHalfTheDigits() throws {
        let experiment = try DigitsExperiment(csvPath: digitsCSV)
        let seeds = experiment.pretrainedSeeds()
        let low = experiment.test.filter { $0 < 5 }, high = experiment.test.filter { $0 >= 5 }
        #expect(experiment.classifier.accuracy(parameters: seeds[0], batch: low) > 0.7)
        #expect(experiment.classifier.accuracy(parameters: seeds[0], batch: high) < 0.1)
        #expect(experiment.classifier.accuracy(parameters: seeds[1], batch: high) > 0.7)
    }

    @Test func aShortRunFromPretrainedSeedsBeatsBothSeeds() throws {
        let experiment = try DigitsExperiment(csvPath: digitsCSV)
        let seeds = experiment.pretrainedSeeds()
        let seedBest = seeds.map { experiment.classifier.accuracy(parameters: $0, batch: experiment.test) }.max()!
        let result = try experiment.run(setting: .pretrained, variant: .m2n2, seed: 0, forwardPasses: 150)
        #expect(result.testAccuracy > seedBest + 0.1)
        #expect(result.trainAccuracy > 0.6)
    }
}
