import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamModels
import AmalgamSearch

extension DigitsRecipeExperiment {
    /// The shared digits testbed (`DigitsPair`): a base trained on every digit and two specialists
    /// fine-tuned from it on digits 0–4 and 5–9, made from `seed` with `recipe`.
    public static func pair(csvPath: String, seed: UInt64 = 0,
                            recipe: DigitsPair.Recipe = .original) throws(SearchError) -> DigitsRecipeExperiment {
        let dataset: DigitsDataset
        do { dataset = try DigitsDataset(csvPath: csvPath) } catch { throw .badData(path: csvPath, reason: error.description) }
        return try DigitsRecipeExperiment(pair: DigitsPair.make(dataset: dataset, seed: seed, recipe: recipe))
    }

    /// The experiment on a `DigitsPair`'s base and specialists.
    public init(pair: DigitsPair) throws(SearchError) {
        try self.init(classifier: pair.classifier, base: pair.base, low: pair.specialists[0], high: pair.specialists[1],
                      train: pair.train, test: pair.test, source: "DigitsPair seed \(pair.seed): \(pair.recipe.summary)")
    }

    /// M2N2's two pre-trained seeds (10 Adam steps from N(0, 0.01²) on digits 0–4 and 5–9, no common
    /// base): only slerp and linear apply.
    public static func m2n2Seeds(csvPath: String) throws(SearchError) -> DigitsRecipeExperiment {
        let m2n2 = try DigitsExperiment(csvPath: csvPath)
        let seeds = m2n2.pretrainedSeeds()
        return try DigitsRecipeExperiment(classifier: m2n2.classifier, base: nil, low: seeds[0], high: seeds[1],
                                          train: m2n2.train, test: m2n2.test, source: "M2N2's pre-trained seeds, no base")
    }
}
