import AmalgamModels

extension DigitsRecipeExperiment {
    /// The digits pair to search over: M2N2's two pre-trained seeds (10 Adam steps on digits 0–4 and
    /// 5–9 from N(0, 0.01²), no common base), so only slerp and linear apply.
    public static func pair(csvPath: String) throws(SearchError) -> DigitsRecipeExperiment {
        let m2n2 = try DigitsExperiment(csvPath: csvPath)
        let seeds = m2n2.pretrainedSeeds()
        return try DigitsRecipeExperiment(classifier: m2n2.classifier, base: nil, low: seeds[0], high: seeds[1],
                                          train: m2n2.train, test: m2n2.test,
                                          source: "M2N2's pre-trained seeds, no base")
    }
}
