import AmalgamCore
import AmalgamLab
import AmalgamSearch
import AmalgamTestSupport
import Testing

/// The digits figure's methods beyond M2N2 (GA without crossover, MAP-Elites, CMA-ES, brute-force slerp) on
/// tiny budgets: each does what its name says, and the same seed gives the same run.
@Suite struct DigitsBaselinesTests {
    static let experiment = Result { try DigitsExperiment(csvPath: digitsCSV) }

    @Test func gaWithoutCrossoverChildrenAreMutatedCopiesOfOneParent() throws {
        let experiment = try Self.experiment.get()
        let configuration = M2N2Configuration(variant: .gaNoCrossover, forwardPasses: 30, mutationStandardDeviation: 0.01, seed: 3)
        #expect(configuration.alpha == 0 && !configuration.attraction && configuration.crossover == .none)
        let store = try FlatGenomeStore(parameterCount: experiment.classifier.parameterCount, slotCount: 20,
                                        seeds: experiment.seeds(setting: .scratch, runSeed: 3))
        let search = try M2N2Search(configuration: configuration, store: store,
                                    scorer: MLPScorer(classifier: experiment.classifier, batch: experiment.train))
        try search.insertSeed(0)
        try search.insertSeed(1)
        var kept = 0
        for _ in 0..<30 {
            let before = store.slots
            let step = try search.step()
            #expect(step.parents.count == 1 && step.plan == nil)
            guard let slot = step.slot, let seed = step.mutationSeed else { continue }
            // The kept child is parent + N(0, 0.01²) noise of its recorded seed, nothing of another member.
            let copy = try FlatGenomeStore(parameterCount: store.parameterCount, slotCount: 1, seeds: [before[step.parents[0]]])
            try copy.makeCandidate(.seed(0), mutation: Mutation(standardDeviation: 0.01, seed: seed))
            #expect(store.slots[slot] == copy.candidate)
            #expect(store.slots[slot] != before[step.parents[0]])
            kept += 1
        }
        #expect(kept > 0)
    }

    @Test func mapElitesKeepsEachGenomeInTheCellOfItsOddAndEvenAccuracy() throws {
        let experiment = try Self.experiment.get()
        let grid = try DigitsMapElites(classifier: experiment.classifier, train: experiment.train,
                                       seeds: experiment.seeds(setting: .pretrained, runSeed: 0),
                                       mutationStandardDeviation: nil, seed: 5)
        try grid.insertSeeds()
        for _ in 0..<120 { try grid.step() }
        #expect(grid.passes == 120)
        let odd = experiment.train.filter { $0 % 2 == 1 }, even = experiment.train.filter { $0 % 2 == 0 }
        let cells = (0..<100).filter { grid.occupied[$0] }
        #expect(cells.count >= 3)  // the two seeds (about half of each parity) and merges between them
        for cell in cells {
            let p = grid.store.slots[cell]
            let a = Float(experiment.classifier.accuracy(parameters: p, batch: odd))
            let b = Float(experiment.classifier.accuracy(parameters: p, batch: even))
            #expect(cell == Int((a * 10).rounded(.down)) * 10 + Int((b * 10).rounded(.down)), "cell \(cell)")
            #expect(abs(grid.qualities[cell] - experiment.classifier.accuracy(parameters: p, batch: experiment.train)) < 1e-6)
        }
        #expect(grid.best.map { grid.qualities[$0] } == cells.map { grid.qualities[$0] }.max())
        #expect(DigitsMapElites.cell(odd: 1.0, even: 0.5) == nil && DigitsMapElites.cell(odd: 0.99, even: 0.05) == 90)
    }

    @Test func mapElitesAndCMAESAreDeterministicPerSeed() throws {
        let experiment = try Self.experiment.get()
        let a = try experiment.runMapElites(setting: .scratch, seed: 2, forwardPasses: 60, traceEvery: 20)
        let b = try experiment.runMapElites(setting: .scratch, seed: 2, forwardPasses: 60, traceEvery: 20)
        let c = try experiment.runMapElites(setting: .scratch, seed: 4, forwardPasses: 60, traceEvery: 20)
        #expect(a.trace == b.trace && a.trace?.map(\.pass) == [0, 20, 40, 60])
        #expect(a.trace != c.trace)
        let x = try experiment.runCMAES(seed: 2, forwardPasses: 60, traceEvery: 20)
        let y = try experiment.runCMAES(seed: 2, forwardPasses: 60, traceEvery: 20)
        #expect(x.best == y.best && x.result.trace == y.result.trace)
    }

    @Test func cmaesReportsTheBestCandidateItEvaluatedAt20PerGeneration() throws {
        let experiment = try Self.experiment.get()
        let run = try experiment.runCMAES(seed: 1, forwardPasses: 100, traceEvery: 20)
        #expect(run.result.trace?.map(\.pass) == [20, 40, 60, 80, 100])
        // The reported training accuracy is the returned point's, and it never gets worse.
        #expect(abs(experiment.classifier.accuracy(parameters: run.best, batch: experiment.train) - run.result.trainAccuracy) < 1e-9)
        #expect(abs(experiment.classifier.accuracy(parameters: run.best, batch: experiment.test) - run.result.testAccuracy) < 1e-9)
        let train = run.result.trace!.map(\.trainAccuracy)
        #expect(zip(train, train.dropFirst()).allSatisfy { $0 <= $1 })
        // σ₀ = 0.01 around an N(0, 0.01²) start: the best point stays near x₀ (not a random vector of scale 1).
        let x0 = experiment.seeds(setting: .scratch, runSeed: 1)[0]
        let distance = zip(run.best, x0).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
        #expect(distance > 0 && distance < 0.01 * 19_210.0.squareRoot() * 4)
        #expect(throws: SearchError.self) { try experiment.runCMAES(seed: 1, forwardPasses: 30) }
    }

    @Test func bruteForceSlerpPicksTheBestWeightOnTraining() throws {
        let experiment = try Self.experiment.get()
        let seeds = experiment.pretrainedSeeds()
        let steps = 21
        let result = try experiment.bruteForceSlerp(seeds: seeds, steps: steps)
        let store = try FlatGenomeStore(parameterCount: experiment.classifier.parameterCount, slotCount: 2, seeds: seeds)
        for i in 0..<2 { try store.makeCandidate(.seed(i), mutation: nil); try store.keepCandidate(inSlot: i) }
        let omega = try store.innerProducts(0, 1).angle
        var best = (train: -1.0, test: 0.0)
        var distinct = Set<Double>()
        for i in 0..<steps {
            let plan = CrossoverPlan(splitPoint: store.parameterCount, ratio: Double(i) / Double(steps - 1), omega: omega)
            try store.makeCandidate(.crossover(a: 0, b: 1, plan: plan), mutation: nil)
            let train = experiment.classifier.accuracy(parameters: store.candidate, batch: experiment.train)
            distinct.insert(train)
            if train > best.train { best = (train, experiment.classifier.accuracy(parameters: store.candidate, batch: experiment.test)) }
        }
        #expect(distinct.count > 2)  // the weights differ, so picking matters
        #expect(abs(result.trainAccuracy - best.train) < 1e-9)
        #expect(abs(result.testAccuracy - best.test) < 1e-9)
    }
}
