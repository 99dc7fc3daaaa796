import AmalgamCore
import AmalgamLab
import AmalgamModels
import AmalgamSearch
import ArgumentParser
import Foundation

/// `amalgam experiment dam-digits` (alias `digits-comparison`): DAM against averaging, task arithmetic,
/// TIES, M2N2 and CMA-ES recipe search on the digits pair, the searches on one budget of forward passes.
struct DAMDigits: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dam-digits",
        abstract: "DAM (Differentiable Adaptive Merging) on two digits specialists (0-4, 5-9) fine-tuned from one base, beside averaging, task arithmetic, TIES, M2N2 and CMA-ES recipe search on equal budgets.",
        aliases: ["digits-comparison"]
    )

    @Option(help: "Runs (seeds 0, 1, …): each trains its own base and specialists.")
    var runs = 5

    @Option(help: "How the pair is trained: divergent (base 10 steps, specialists 300 at lr 1e-2) or original (base 300, specialists 100); the four options below override single numbers.")
    var pair = "divergent"

    @Option(help: "Adam steps of the base on all digits.")
    var baseSteps: Int?

    @Option(help: "Learning rate of the base.")
    var baseLr: Double?

    @Option(help: "Adam steps of each specialist on its half.")
    var specialistSteps: Int?

    @Option(help: "Learning rate of the specialists.")
    var specialistLr: Double?

    @Option(help: "Forward passes (over the 1437 training images) given to each search: M2N2, every CMA-ES method and DAM (its steps, teacher passes included). 0: no equal budget, use --steps, --m2n2-passes, --cmaes-passes.")
    var budget = 1_000

    @Option(help: "DAM optimisation steps (ignored unless --budget 0).")
    var steps = DAMDigitsExperiment.tunedDAM.steps

    @Option(help: "DAM examples per source dataset and step.")
    var batchSize = DAMDigitsExperiment.tunedDAM.batchSize

    @Option(help: "DAM learning rate.")
    var lr = DAMDigitsExperiment.tunedDAM.learningRate

    @Option(help: "DAM distillation temperature.")
    var temperature = DAMDigitsExperiment.tunedDAM.temperature

    @Option(help: "DAM coefficient map f: tanh (released) or identity.")
    var f = DAMDigitsExperiment.tunedDAM.scaleFunction.rawValue

    @Option(help: "DAM optimiser: adamw or mofo.")
    var optimiser = DAMDigitsExperiment.tunedDAM.optimiser.rawValue

    @Option(help: "DAM initial coefficients: uniform (1/N) or softmax-random.")
    var initialisation = DAMDigitsExperiment.tunedDAM.initialisation.rawValue

    @Option(help: "DAM initial bias scalars: mean (1/N) or one (released).")
    var biasInit = DAMDigitsExperiment.tunedDAM.biasInitialisation.rawValue

    @Option(help: "DAM cosine-similarity weight λ_sim.")
    var lambdaSim = DAMDigitsExperiment.tunedDAM.similarityWeight

    @Flag(help: "Skip DAM.")
    var noDam = false

    @Flag(help: "Skip the extra DAM row with the released settings (lr 1e-3, T 2, tanh).")
    var noReleasedDam = false

    @Option(help: "M2N2 forward passes (ignored unless --budget 0; 0 skips M2N2).")
    var m2n2Passes = 10_000

    @Flag(help: "Skip M2N2.")
    var noM2n2 = false

    @Option(name: .customLong("cmaes-method"), help: "CMA-ES recipe search with this merge method (repeatable): ties, dare_ties, task_arithmetic, slerp; `none` skips CMA-ES.")
    var cmaesMethods: [String] = ["ties", "dare_ties", "task_arithmetic"]

    @Option(help: "CMA-ES forward passes per method (ignored unless --budget 0).")
    var cmaesPasses = 1_000

    @Option(help: "The digits CSV (64 features and a label per line).")
    var data = "fixtures/digits/digits.csv"

    @Option(help: "Also write every run's numbers as JSON to this file.")
    var json: String?

    func validate() throws {
        guard runs > 0 else { throw ValidationError("--runs must be at least 1") }
        guard DAMScaleFunction(rawValue: f) != nil else { throw ValidationError("--f must be tanh or identity, not `\(f)`") }
        guard DAMConfiguration.Optimiser(rawValue: optimiser) != nil else { throw ValidationError("--optimiser must be adamw or mofo") }
        guard DAMInitialisation(rawValue: initialisation) != nil else { throw ValidationError("--initialisation must be uniform or softmax-random") }
        guard DAMConfiguration.BiasInitialisation(rawValue: biasInit) != nil else { throw ValidationError("--bias-init must be mean or one") }
        guard m2n2Passes >= 0 else { throw ValidationError("--m2n2-passes must be ≥ 0") }
        guard budget >= 0, cmaesPasses > 0 else { throw ValidationError("--budget must be ≥ 0 and --cmaes-passes > 0") }
        guard DigitsPair.Recipe.named[pair] != nil else { throw ValidationError("--pair must be divergent or original, not `\(pair)`") }
        for m in cmaesMethods where !["ties", "dare_ties", "task_arithmetic", "slerp", "none"].contains(m) {
            throw ValidationError("--cmaes-method must be ties, dare_ties, task_arithmetic, slerp or none, not `\(m)`")
        }
    }

    func run() throws {
        var dam = DAMDigitsExperiment.tunedDAM
        dam.steps = steps
        dam.batchSize = batchSize
        dam.learningRate = lr
        dam.temperature = temperature
        dam.scaleFunction = DAMScaleFunction(rawValue: f)!
        dam.optimiser = DAMConfiguration.Optimiser(rawValue: optimiser)!
        dam.initialisation = DAMInitialisation(rawValue: initialisation)!
        dam.biasInitialisation = DAMConfiguration.BiasInitialisation(rawValue: biasInit)!
        dam.similarityWeight = lambdaSim
        try dam.validate()
        var settings = DAMDigitsExperiment.Settings(dam: dam)
        var recipe = DigitsPair.Recipe.named[pair]!
        if let baseSteps { recipe.baseSteps = baseSteps }
        if let baseLr { recipe.baseLearningRate = baseLr }
        if let specialistSteps { recipe.specialistSteps = specialistSteps }
        if let specialistLr { recipe.specialistLearningRate = specialistLr }
        settings.recipe = recipe
        settings.m2n2Passes = m2n2Passes
        settings.cmaesPasses = cmaesPasses
        if budget > 0 { settings.equalBudget = budget }
        if noM2n2 { settings.m2n2Passes = 0 }
        settings.cmaesMethods = cmaesMethods.filter { $0 != "none" }
        settings.runDAM = !noDam
        settings.releasedDAM = !noReleasedDam
        let experiment = DAMDigitsExperiment(dataset: try DigitsDataset(csvPath: data), settings: settings)
        let start = Date()
        var perRun: [[DAMDigitsExperiment.MethodResult]] = []
        for r in 0..<runs {
            perRun.append(try experiment.run(r) { printError("[run \(r + 1)/\(runs)] \($0)") })
        }
        let (train, test) = experiment.dataset.split()
        let report = DAMDigitsReport(runs: perRun, settings: settings, seconds: Date().timeIntervalSince(start),
                                     trainCount: train.count, testCount: test.count)
        print(report.text)
        if let json { try writeFileAtomically(report.json.pythonText(sortKeys: false) + "\n", to: json) }
    }
}

/// The experiment's table (mean ± std over runs), as text and JSON.
struct DAMDigitsReport {
    let runs: [[DAMDigitsExperiment.MethodResult]]
    let settings: DAMDigitsExperiment.Settings
    let seconds: Double
    /// Images in the training and test splits of the file given.
    let trainCount: Int, testCount: Int

    var methods: [String] { runs.first?.map(\.method) ?? [] }

    func results(_ method: String) -> [DAMDigitsExperiment.MethodResult] {
        runs.compactMap { $0.first { $0.method == method } }
    }

    var text: String {
        var out = "Merging on digits (MLP 64-256-10; \(settings.recipe.summary);\n"
        out += "train = first \(trainCount), test = last \(testCount)): accuracy (%), mean ± std (ddof 0) over \(runs.count) run(s)\n\n"
        out += "method                     test union     test 0-4       test 5-9       train union    fwd passes  bwd passes  CPU s  s/run\n"
        for m in methods {
            let r = results(m)
            let u = r.map { $0.test.union * 100 }.meanAndStandardDeviation
            let h0 = r.map { $0.test.halves[0] * 100 }.meanAndStandardDeviation
            let h1 = r.map { $0.test.halves[1] * 100 }.meanAndStandardDeviation
            let t = r.map { $0.train.union * 100 }.meanAndStandardDeviation
            out += m.padding(toLength: 27, withPad: " ", startingAt: 0)
            out += String(format: "%5.1f ± %4.1f   %5.1f ± %4.1f   %5.1f ± %4.1f   %5.1f ± %4.1f   %10.1f  %10.1f  %5.2f  %5.2f\n", u.mean, u.std,
                          h0.mean, h0.std, h1.mean, h1.std, t.mean, t.std, r.map(\.forwardPasses).meanAndStandardDeviation.mean,
                          r.map(\.backwardPasses).meanAndStandardDeviation.mean, r.map(\.cpuSeconds).meanAndStandardDeviation.mean,
                          r.map(\.seconds).meanAndStandardDeviation.mean)
        }
        out += "\npasses: examples through the model / \(trainCount) (one pass over the training split, M2N2's unit)\n"
        for m in methods { if let d = results(m).first?.detail, !d.isEmpty { out += "\(m): \(d)\n" } }
        out += String(format: "wall time %.0f s", seconds)
        return out
    }

    var json: JSONValue {
        .object(JSONObject([
            ("experiment", .string("dam-digits")),
            ("pair", .string(settings.recipe.summary)),
            ("equal_budget", settings.equalBudget.map { .int($0) } ?? .null),
            ("runs", .int(runs.count)),
            ("wall_seconds", .double(seconds)),
            ("methods", .object(JSONObject(methods.map { m in
                let r = results(m)
                func stats(_ v: [Double]) -> JSONValue {
                    let s = v.meanAndStandardDeviation
                    return .object(JSONObject([("mean", .double(s.mean)), ("std", .double(s.std)), ("runs", .array(v.map { .double($0) }))]))
                }
                return (m, .object(JSONObject([
                    ("test_union", stats(r.map(\.test.union))),
                    ("test_digits_0_4", stats(r.map { $0.test.halves[0] })),
                    ("test_digits_5_9", stats(r.map { $0.test.halves[1] })),
                    ("train_union", stats(r.map(\.train.union))),
                    ("train_digits_0_4", stats(r.map { $0.train.halves[0] })),
                    ("train_digits_5_9", stats(r.map { $0.train.halves[1] })),
                    ("forward_passes", stats(r.map(\.forwardPasses))),
                    ("backward_passes", stats(r.map(\.backwardPasses))),
                    ("seconds", stats(r.map(\.seconds))),
                    ("cpu_seconds", stats(r.map(\.cpuSeconds))),
                    ("details", .array(r.map { .string($0.detail) })),
                ])))
            }))),
        ]))
    }
}
