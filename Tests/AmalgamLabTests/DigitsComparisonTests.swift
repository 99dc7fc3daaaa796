import AmalgamCore
import AmalgamLab
import AmalgamModels
import AmalgamSearch
import AmalgamTestSupport
import Foundation
import Testing

/// The digits comparison (`amalgam experiment dam-digits` / `digits-comparison`) on a tiny budget: every
/// method present, the searches on one budget, the same numbers from the same seed, the JSON's keys.
@Suite struct DigitsComparisonTests {
    static let dataset = try! DigitsDataset(csvPath: digitsCSV)

    /// A few steps of everything: a pair from 3 + 5 Adam steps, 2 × 2 grids, 12 passes per search.
    static var tinySettings: DAMDigitsExperiment.Settings {
        var dam = DAMDigitsExperiment.defaultDAM
        dam.batchSize = 32
        var s = DAMDigitsExperiment.Settings(dam: dam)
        s.recipe = DigitsPair.Recipe(baseSteps: 3, baseLearningRate: 3e-3, specialistSteps: 5, specialistLearningRate: 1e-2)
        s.lambdaGrid = [0.5, 1]
        s.densityGrid = [0.5, 1]
        s.cmaesMethods = ["ties", "task_arithmetic"]
        s.equalBudget = 12
        return s
    }

    @Test func anEqualBudgetSetsEverySearch() {
        let s = Self.tinySettings
        #expect(s.m2n2Passes == 10 && s.cmaesPasses == 12)
        #expect(s.dam.steps == DAMDigitsExperiment.damSteps(passes: 12, batchSize: 32))
        #expect(DAMDigitsExperiment.damSteps(passes: 1000, batchSize: 64) == 5613)  // 1000 × 1437 / (2 sources × 2 models × 64)
    }

    @Test func everyMethodRunsWithinTheBudgetAndTheSameSeedGivesTheSameNumbers() throws {
        let experiment = DAMDigitsExperiment(dataset: Self.dataset, settings: Self.tinySettings)
        let first = try experiment.run(1)
        #expect(first.map(\.method) == [
            "base", "specialist 0-4", "specialist 5-9", "average", "task arithmetic (λ 1)", "task arithmetic (tuned)",
            "TIES (density 1, λ 1)", "TIES (tuned)", "M2N2", "CMA-ES ties", "CMA-ES task_arithmetic", "DAM",
            "DAM (released settings)",
        ])
        for r in first {
            #expect(r.test.halves.count == 2 && r.train.halves.count == 2)
            for a in [r.test.union, r.train.union] + r.test.halves + r.train.halves { #expect(a >= 0 && a <= 1, "\(r.method)") }
            #expect(r.cpuSeconds >= 0 && r.seconds >= 0)
        }
        let byName = Dictionary(uniqueKeysWithValues: first.map { ($0.method, $0) })
        #expect(byName["TIES (tuned)"]!.forwardPasses == 4 && byName["task arithmetic (tuned)"]!.forwardPasses == 2)
        #expect(byName["M2N2"]!.forwardPasses == 12)  // 10 children + the 2 seeds scored
        for m in ["CMA-ES ties", "CMA-ES task_arithmetic"] {
            #expect(byName[m]!.forwardPasses > 0 && byName[m]!.forwardPasses <= 12, "\(m): \(byName[m]!.forwardPasses)")
        }
        let dam = byName["DAM"]!
        #expect(dam.forwardPasses <= 12 && dam.forwardPasses > 11.9, "\(dam.forwardPasses)")
        #expect(dam.backwardPasses == dam.forwardPasses / 2)
        #expect(byName["DAM (released settings)"]!.forwardPasses == dam.forwardPasses)

        let again = try experiment.run(1)
        #expect(again.map(\.test) == first.map(\.test))
        #expect(again.map(\.train) == first.map(\.train))
        #expect(again.map(\.detail) == first.map(\.detail))
    }
}
