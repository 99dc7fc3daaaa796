import AmalgamCore
import AmalgamLab
import AmalgamSearch
import ArgumentParser
import Foundation

/// `amalgam experiment cmaes-digits`: CMA-ES recipe search (mergekit-evolve's genome) on the digits pair.
struct CMAESDigits: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cmaes-digits",
        abstract: "CMA-ES merge-recipe search (mergekit-evolve's genome) on the digits specialists: union test accuracy and each half."
    )

    @Option(help: "Runs (CMA-ES seeds 1, 2, …) per method and budget.")
    var runs = 5

    @Option(parsing: .upToNextOption, help: "Budgets in forward passes over the union training set (M2N2's pre-trained setting: 10000).")
    var budgets: [Int] = [10_000, 1_000]

    @Option(name: .customLong("method"), help: "Only this method (repeatable): task_arithmetic, ties, dare_ties, slerp (linear without a base).")
    var methods: [String] = []

    @Option(help: "The models: `pair` (DigitsPair: a base and two specialists fine-tuned from it) or `m2n2-seeds` (M2N2's pre-trained seeds, no base).")
    var models = "pair"

    @Option(help: "Seed of the DigitsPair (with --models pair).")
    var pairSeed: UInt64 = 0

    @Option(help: "How the DigitsPair is trained (with --models pair): original (base 300 steps, specialists 100) or divergent (base 10, specialists 300 at lr 1e-2).")
    var pairRecipe = "original"

    @Option(help: "The digits CSV (64 features and a label per line).")
    var data = "fixtures/digits/digits.csv"

    @Option(help: "Write the models and each method's best recipe (run 1, largest budget) here, for `amalgam merge`.")
    var recipes: String?

    @Option(help: "Also write the table and every run as JSON to this file.")
    var json: String?

    func validate() throws {
        guard ["pair", "m2n2-seeds"].contains(models) else { throw ValidationError("--models must be pair or m2n2-seeds, not `\(models)`") }
        guard DigitsPair.Recipe.named[pairRecipe] != nil else { throw ValidationError("--pair-recipe must be original or divergent, not `\(pairRecipe)`") }
        guard runs > 0 else { throw ValidationError("--runs must be at least 1") }
        guard !budgets.isEmpty, budgets.allSatisfy({ $0 > 0 }) else { throw ValidationError("--budgets must be positive") }
    }

    func run() throws {
        let experiment = models == "pair" ? try DigitsRecipeExperiment.pair(csvPath: data, seed: pairSeed, recipe: DigitsPair.Recipe.named[pairRecipe]!)
            : try DigitsRecipeExperiment.m2n2Seeds(csvPath: data)
        let chosen = methods.isEmpty ? experiment.methods : methods
        for m in chosen where !experiment.methods.contains(m) {
            throw ValidationError("`\(m)` cannot be searched on \(experiment.source); available: \(experiment.methods.joined(separator: ", "))")
        }
        print("CMA-ES recipe search on digits (\(experiment.source)); fitness: union training accuracy;")
        print("genome: mergekit-evolve's, one group per layer (W1/b1, W2/b2) × model; σ₀ = 1/6, IPOP restarts within the budget.")
        print("A pass is one forward pass of one merged candidate over the 1437 training images.\n")
        print("method           budget  runs  test union (%)   test 0-4 (%)   test 5-9 (%)   train (%)       passes  restarts  s/run")
        func pct(_ xs: [Double]) -> String {
            let s = xs.map { $0 * 100 }.meanAndStandardDeviation
            return String(format: "%5.1f ± %4.1f", s.mean, s.std)
        }
        var inputs: [(String, [Float])] = [("specialist 0-4", experiment.low), ("specialist 5-9", experiment.high)]
        if let base = experiment.base { inputs.insert(("base", base), at: 0) }
        var rows: [JSONValue] = []
        for (name, model) in inputs {
            let a = experiment.accuracies(model)
            print(name.padding(toLength: 16, withPad: " ", startingAt: 0) + "       -     -  "
                  + [a.test, a.low, a.high, a.train].map { String(format: "%5.1f         ", $0 * 100) }.joined(separator: "  "))
            rows.append(.object(JSONObject([("method", .string(name)), ("test_accuracy", .double(a.test)),
                                            ("test_0_4", .double(a.low)), ("test_5_9", .double(a.high)), ("train_accuracy", .double(a.train))])))
        }
        let start = Date()
        var bestRecipes: [(String, MergeRecipe)] = []
        for method in chosen {
            for budget in budgets.sorted(by: >) {
                var results: [DigitsRecipeExperiment.RunResult] = []
                for seed in 1...UInt64(runs) {
                    let r = try experiment.run(method: method, seed: seed, budget: budget)
                    printError(String(format: "\(method) budget \(budget) seed \(seed): test %.3f (0-4 %.3f, 5-9 %.3f), train %.3f, %d passes, %.1f s",
                                      r.testAccuracy, r.testLowAccuracy, r.testHighAccuracy, r.trainAccuracy, r.passes, r.seconds))
                    results.append(r)
                }
                if budget == budgets.max(), let first = results.first { bestRecipes.append((method, first.recipe)) }
                print(method.padding(toLength: 16, withPad: " ", startingAt: 0) + String(format: "%7d  %4d  ", budget, runs)
                      + [pct(results.map(\.testAccuracy)), pct(results.map(\.testLowAccuracy)), pct(results.map(\.testHighAccuracy)),
                         pct(results.map(\.trainAccuracy))].joined(separator: "   ")
                      + String(format: "  %7.0f  %8.1f  %5.1f", results.map { Double($0.passes) }.meanAndStandardDeviation.mean,
                               results.map { Double($0.restarts) }.meanAndStandardDeviation.mean,
                               results.map(\.seconds).meanAndStandardDeviation.mean))
                rows.append(.object(JSONObject([
                    ("method", .string(method)), ("budget", .int(budget)), ("runs", .int(runs)),
                    ("test_accuracies", .array(results.map { .double($0.testAccuracy) })),
                    ("test_0_4", .array(results.map { .double($0.testLowAccuracy) })),
                    ("test_5_9", .array(results.map { .double($0.testHighAccuracy) })),
                    ("train_accuracies", .array(results.map { .double($0.trainAccuracy) })),
                    ("passes", .array(results.map { .int($0.passes) })), ("restarts", .array(results.map { .int($0.restarts) })),
                    ("seconds", .array(results.map { .double($0.seconds) })),
                    ("best_recipe_seed_1", .string(results[0].recipe.yaml)),
                ])))
            }
        }
        print(String(format: "\nwall time %.0f s", Date().timeIntervalSince(start)))
        if let recipes {
            try experiment.writeModels(to: recipes)
            for (method, recipe) in bestRecipes { try writeFileAtomically(recipe.yaml, to: recipes + "/\(method).yml") }
            print("models and best recipes in \(recipes); e.g. amalgam merge \(recipes)/\(bestRecipes.first?.0 ?? "ties").yml OUT")
        }
        if let json {
            let doc = JSONValue.object(JSONObject([
                ("experiment", .string("cmaes-digits")), ("source", .string(experiment.source)),
                ("wall_seconds", .double(Date().timeIntervalSince(start))), ("rows", .array(rows)),
            ]))
            try writeFileAtomically(doc.pythonText(sortKeys: false) + "\n", to: json)
        }
    }
}
