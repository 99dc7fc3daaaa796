import AmalgamCheckpoint
import AmalgamCore
import AmalgamLab
import AmalgamMerge
import AmalgamModels
import AmalgamSearch
import AmalgamTestSupport
import Foundation
import Testing

/// mergekit-evolve's genome and the recipes it gives, checked against mergekit 0.1.5's own
/// `ModelGenome.genotype_merge_config` and against `amalgam merge` run on the written YAML.
@Suite struct MergeGenomeTests {
    struct GenomeCase {
        var genome: MergeGenome
        var genotype: [Double]
        var initial: Bool
        var mergekitYAML: String
    }

    static func cases() throws -> [GenomeCase] {
        let path = fixturesDirectory + "/evolve/genome_cases.json"
        let root = try JSONValue.parse(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
        let entries = root["cases"]?.arrayValue ?? []
        return try entries.map { c in
            let d = try #require(c["definition"])
            let filterValues = d["filters"]?.arrayValue ?? []
            let genome = try MergeGenome(
                models: (d["models"]?.arrayValue ?? []).compactMap { $0.stringValue }, mergeMethod: try #require(d["merge_method"]?.stringValue),
                baseModel: d["base_model"]?.stringValue, layerCount: try #require(c["num_layers"]?.intValue),
                layerGranularity: d["layer_granularity"]?.intValue ?? 0, normalize: d["normalize"]?.boolValue,
                allowNegativeWeights: d["allow_negative_weights"]?.boolValue ?? false,
                filters: filterValues.compactMap { $0.stringValue })
            let genotypeValues = c["genotype"]?.arrayValue ?? []
            return GenomeCase(genome: genome, genotype: genotypeValues.compactMap { $0.doubleValue },
                              initial: c["initial"]?.boolValue ?? false, mergekitYAML: try #require(c["yaml"]?.stringValue))
        }
    }

    @Test func recipesAreTheConfigsMergekitEvolveWrites() throws {
        let cases = try Self.cases()
        #expect(cases.count >= 12)
        for (i, c) in cases.enumerated() {
            #expect(c.genotype.count == c.genome.dimension, "case \(i)")
            let ourYAML = try c.genome.recipe(c.genotype).yaml
            let ours = try MergeConfig(yaml: ourYAML, path: "ours-\(i).yml")
            // mergekit-evolve writes int8_mask and normalize for every method; mergekit ignores those the method
            // does not read, `amalgam merge` rejects them, and our recipes leave them out: drop them here.
            let declared = Set(MergeMethods.named(c.genome.mergeMethod)?.globalParameters.map { $0.name } ?? [])
            let theirText = c.mergekitYAML.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
                !["int8_mask", "normalize"].contains { !declared.contains($0) && line.hasPrefix("  \($0): ") }
            }.joined(separator: "\n").replacingOccurrences(of: "parameters:\nslices:", with: "slices:")
            let theirs = try MergeConfig(yaml: theirText, path: "mergekit-\(i).yml")
            #expect(ours.mergeMethod == theirs.mergeMethod && ours.baseModel == theirs.baseModel && ours.dtype == theirs.dtype)
            #expect(ours.parameters == theirs.parameters, "case \(i): top-level parameters")
            if c.genome.mergeMethod == "slerp" {
                // t = softmax of the top two: compared to 1e-12 (torch's exp may differ from libm's in the last bit).
                let (a, b) = (try #require(ours.slices), try #require(theirs.slices))
                let sameSources = a.map { $0.sources } == b.map { $0.sources } && a.map { $0.baseModel } == b.map { $0.baseModel }
                #expect(sameSources, "case \(i)")
                for (sa, sb) in zip(a, b) {
                    let ta = sa.parameters?["t"]?.resolve(tensorName: "x", t: 0, kind: .number)?.doubleValue
                    let tb = sb.parameters?["t"]?.resolve(tensorName: "x", t: 0, kind: .number)?.doubleValue
                    let (x, y) = (try #require(ta), try #require(tb))
                    #expect(abs(x - y) < 1e-12, "case \(i): t \(x) vs \(y)")
                }
            } else {
                #expect(ours.slices == theirs.slices, "case \(i) (\(c.genome.mergeMethod)):\n\(ourYAML)\nmergekit:\n\(c.mergekitYAML)")
            }
        }
    }

    @Test func initialGenotypeIsMergekitEvolvesStart() throws {
        for c in try Self.cases() where c.initial {
            #expect(c.genome.initialGenotype() == c.genotype, "\(c.genome.mergeMethod)")
        }
        let ties = try MergeGenome(models: ["a", "b", "c"], mergeMethod: "ties", baseModel: "base", layerCount: 4, layerGranularity: 2)
        #expect(ties.dimension == 2 * 3 * 1 * 2)
        #expect(ties.initialGenotype() == [Double](repeating: 0, count: 6).flatMap { _ in [Double(Float(1) / 3), 1] })
        #expect(throws: SearchError.self) { try MergeGenome(models: ["a"], mergeMethod: "ties", layerCount: 2) }
        #expect(throws: SearchError.self) { try MergeGenome(models: ["a", "b"], mergeMethod: "della", baseModel: "c", layerCount: 2) }
        #expect(throws: SearchError.self) { try MergeGenome(models: ["a", "b"], mergeMethod: "linear", layerCount: 3, layerGranularity: 2) }
    }

    /// Small random digits models: a base and two perturbations of it.
    static func experiment() throws -> DigitsRecipeExperiment {
        let (train, test) = try DigitsDataset(csvPath: digitsCSV).split()
        let classifier = MLPClassifier.digits
        var g = SeededGenerator(seed: 5)
        let base = (0..<classifier.parameterCount).map { _ in 0.05 * g.normal() }
        let low = base.map { $0 + 0.02 * g.normal() }, high = base.map { $0 + 0.02 * g.normal() }
        return try DigitsRecipeExperiment(classifier: classifier, base: base, low: low, high: high, train: train,
                                          test: test, source: "random test models")
    }

    /// The best recipe of a short search, written as YAML and run by `amalgam merge`'s planner and executor
    /// on the models written to disk, gives the very tensors the search scored in memory.
    @Test(arguments: ["task_arithmetic", "ties", "dare_ties", "slerp"])
    func bestRecipeThroughAmalgamMergeIsTheModelTheSearchScored(_ method: String) throws {
        let experiment = try Self.experiment()
        let result = try experiment.run(method: method, seed: 1, budget: 40)
        #expect(result.passes <= 40 && result.passes >= 10)
        let dir = NSTemporaryDirectory() + "amalgam-recipe-\(method)-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try experiment.writeModels(to: dir)
        try writeFileAtomically(result.recipe.yaml, to: dir + "/recipe.yml")
        let plan = try MergePlan(config: try MergeConfig(contentsOf: dir + "/recipe.yml"), seed: 0)
        try MergeExecutor(plan: plan).run(MergeOptions(outputPath: dir + "/merged"))
        let merged = try ModelFolder(path: dir + "/merged")
        let inMemory = try experiment.inMemoryModels().merge(result.recipe)
        let diskNames = Set(merged.weights.tensorInfos.map { $0.name }), memoryNames = Set(inMemory.map { $0.name })
        #expect(diskNames == memoryNames)
        for t in inMemory {
            let disk = try merged.weights.tensor(t.name)
            #expect(disk.shape == t.shape, "\(t.name)")
            #expect(disk.floats() == t.values, "\(method): \(t.name) differs between amalgam merge and the in-memory merge")
        }
        // The score the search recorded is that model's.
        let model = experiment.flat(inMemory)
        #expect(abs(experiment.accuracies(model).train - result.trainAccuracy) < 1e-12)
    }

    @Test func sameSeedSameSearchAndItsStateSurvivesEncoding() throws {
        let experiment = try Self.experiment()
        let a = try experiment.run(method: "ties", seed: 3, budget: 60)
        let b = try experiment.run(method: "ties", seed: 3, budget: 60)
        #expect(a.recipe == b.recipe && a.trainAccuracy == b.trainAccuracy && a.passes == b.passes)

        var configuration = RecipeSearchConfiguration(genome: try experiment.genome(method: "linear"),
                                                      fitness: WeightedFitness(["score": 2]), budget: 50)
        configuration.cmaes.seed = 9
        let evaluate: ([MergeRecipe]) throws(SearchError) -> [[String: Double]] = { recipes in
            recipes.map { r in ["score": r.slices[0].sources[0].parameter("weight", tensor: "w") ?? 0] }
        }
        var whole = try RecipeSearch(configuration: configuration)
        try whole.run(evaluate: evaluate)
        var first = try RecipeSearch(configuration: configuration)
        for _ in 0..<2 { try first.step(evaluate: evaluate) }
        var resumed = try JSONDecoder().decode(RecipeSearch.self, from: try JSONEncoder().encode(first))
        try resumed.run(evaluate: evaluate)
        #expect(resumed.evaluated == whole.evaluated)
        #expect(whole.evaluations <= 50 && whole.evaluations > 40)
        // Fitness is the weighted metric: twice the first model's first-layer weight.
        let best = try #require(whole.best)
        #expect(best.fitness == 2 * (best.metrics["score"] ?? .nan))
    }
}
