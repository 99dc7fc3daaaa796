import AmalgamCore
import AmalgamModels
import AmalgamSearch
import Testing

/// The base and specialists every merging method on digits starts from.
@Suite struct DigitsPairTests {
    static let pair = DigitsPair.make(dataset: try! DigitsDataset(csvPath: digitsCSV), seed: 0)

    @Test func baseKnowsEveryDigitAndEachSpecialistForgetsTheOtherHalf() {
        let pair = Self.pair
        let base = pair.testAccuracies(of: pair.base)
        #expect(base.union >= 0.95, "base test accuracy \(base)")
        for (k, specialist) in pair.specialists.enumerated() {
            let a = pair.testAccuracies(of: specialist)
            #expect(a.halves[k] >= 0.95, "specialist \(k) on its own half: \(a)")
            #expect(a.halves[1 - k] < 0.2, "specialist \(k) should have forgotten the other half: \(a)")
        }
    }

    @Test func halvesSplitTheReferenceSplitByLabel() {
        let pair = Self.pair
        #expect(pair.train.count == 1437 && pair.test.count == 360)
        #expect(pair.trainHalves.map(\.count).reduce(0, +) == 1437)
        #expect(pair.testHalves.map(\.count).reduce(0, +) == 360)
        #expect(pair.trainHalves[0].labels.allSatisfy { $0 < 5 } && pair.trainHalves[1].labels.allSatisfy { $0 >= 5 })
    }

    @Test func sameSeedSameBytes() {
        let again = DigitsPair.make(dataset: try! DigitsDataset(csvPath: digitsCSV), seed: 0)
        #expect(again.base == Self.pair.base && again.specialists == Self.pair.specialists)
    }
}
