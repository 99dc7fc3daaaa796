import AmalgamCore
import AmalgamLab
import AmalgamSearch
import ArgumentParser
import Foundation

/// `amalgam experiment …`: reproductions of published experiments.
struct Experiment: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reproduce a published experiment and print our numbers beside the published ones.",
        subcommands: [M2N2Digits.self, DAMDigits.self, CMAESFunctions.self, CMAESDigits.self]
    )
}

/// `amalgam experiment m2n2-digits`: Sakana AI's M2N2 on scikit-learn's digits.
struct M2N2Digits: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "m2n2-digits",
        abstract: "M2N2 and its ablations on a 64-256-10 MLP over scikit-learn's digits (from scratch and pre-trained)."
    )

    @Option(help: "scratch, pretrained or all.")
    var setting = "all"

    @Option(help: "Runs (seeds 0, 1, …) per method.")
    var runs = 10

    @Option(help: "Forward passes per run, overriding the published budgets (50,000 from scratch, 10,000 pre-trained).")
    var passes: Int?

    @Option(name: .customLong("method"), help: "Only this method (repeatable): M2N2, \"no attraction\", \"no split point\", \"no crossover\", GA, \"GA no crossover\", MAP-Elites, CMA-ES (from scratch only; diagonal covariance, see docs/m2n2.md), \"brute-force slerp\" (with the seeds). MAP-Elites and CMA-ES keep no run folder.")
    var methods: [String] = []

    @Option(help: "Runs to execute at once (set OPENBLAS_NUM_THREADS=1 in the environment when above 1).")
    var jobs = 1

    @Option(help: "Where the two pre-trained seeds start from: release (the release's own two N(0, 0.01²) vectors, from --release-seeds) or generated (two vectors drawn from --pretrain-seed).")
    var pretrainInit = "release"

    @Option(help: "The release's starting vectors (tensor `initial` [2, 19210], made by scripts/fixtures/make_m2n2_release_seeds.py).")
    var releaseSeeds = "fixtures/m2n2/release-seeds.safetensors"

    @Option(help: "Seed of the initial vectors the two pre-trained seeds are trained from, with --pretrain-init generated.")
    var pretrainSeed: UInt64 = 42

    @Option(help: "The digits CSV (64 features and a label per line).")
    var data = "fixtures/digits/digits.csv"

    @Option(help: "Also write the table and every run's numbers as JSON to this file.")
    var json: String?

    @Option(name: .customLong("run-dir"), help: "Keep every run durable in its own folder under this one (SQLite state + genome files); a killed experiment continues with --resume.")
    var runDirectory: String?

    @Flag(help: "Continue the runs found under --run-dir (finished ones are read back, not rerun).")
    var resume = false

    @Option(help: "What each committed step survives: process (a kill or crash; default) or machine (also power loss: fsync per kept genome).")
    var sync = "process"

    func validate() throws {
        guard ["scratch", "pretrained", "all"].contains(setting) else {
            throw ValidationError("--setting must be scratch, pretrained or all, not `\(setting)`")
        }
        guard ["release", "generated"].contains(pretrainInit) else {
            throw ValidationError("--pretrain-init must be release or generated, not `\(pretrainInit)`")
        }
        guard runs > 0 else { throw ValidationError("--runs must be at least 1") }
        guard jobs > 0 else { throw ValidationError("--jobs must be at least 1") }
        if let passes, passes < 1 { throw ValidationError("--passes must be at least 1") }
        if resume && runDirectory == nil { throw ValidationError("--resume needs --run-dir (the folder of the runs to continue)") }
        guard RunFolder.Durability(rawValue: sync) != nil else { throw ValidationError("--sync must be process or machine, not `\(sync)`") }
        let known = Set(M2N2Variant.allCases.map(\.rawValue) + DigitsBaseline.allCases.map(\.rawValue) + ["brute-force slerp"])
        for m in methods where !known.contains(m) {
            throw ValidationError("unknown --method `\(m)`; known: \(known.sorted().joined(separator: ", "))")
        }
        if setting == "pretrained", methods.contains(DigitsBaseline.cmaES.rawValue) {
            throw ValidationError("--method CMA-ES runs only from scratch (as in the release); use --setting scratch or all")
        }
        if setting == "scratch", methods.contains("brute-force slerp") {
            throw ValidationError("--method \"brute-force slerp\" runs only between the pre-trained seeds; use --setting pretrained or all")
        }
    }

    func run() throws {
        let settings: [DigitsExperiment.Setting] = setting == "all" ? [.scratch, .pretrained]
            : [DigitsExperiment.Setting(rawValue: setting)!]
        var experiment = try DigitsExperiment(csvPath: data)
        experiment.pretrainSeed = pretrainSeed
        if pretrainInit == "release" && settings.contains(.pretrained) { try experiment.loadReleaseInitial(path: releaseSeeds) }
        var budgets: [DigitsExperiment.Setting: Int] = [:]
        if let passes { for s in settings { budgets[s] = passes } }
        let start = Date()
        let line = M2N2ProgressLine()
        let rows = try experiment.table(
            settings: settings, runs: runs, forwardPasses: budgets, methods: methods.isEmpty ? nil : Set(methods),
            concurrentJobs: jobs, runDirectory: runDirectory, resume: resume, durability: RunFolder.Durability(rawValue: sync)!,
            stepProgress: { label, p in line.update(label, p) }
        ) { p in
            line.clear()
            printError("[\(p.done)/\(p.total)] \(p.label)")
        }
        line.clear()
        let seconds = Date().timeIntervalSince(start)
        let pretrainedFrom: String? = !settings.contains(.pretrained) ? nil : pretrainInit == "release"
            ? "the release's two starting vectors (jax PRNGKey(42), \(releaseSeeds))" : "two N(0, 0.01²) vectors drawn from seed \(pretrainSeed)"
        var report = M2N2DigitsReport(rows: rows, runs: runs, budgets: budgets, seconds: seconds, pretrainedFrom: pretrainedFrom)
        report.command = (["amalgam"] + CommandLine.arguments.dropFirst()).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
        print(report.text)
        if let json { try writeFileAtomically(report.json.pythonText(sortKeys: false) + "\n", to: json) }
    }
}

/// The experiment's table, as text and JSON.
struct M2N2DigitsReport {
    let rows: [DigitsExperiment.Row]
    let runs: Int
    let budgets: [DigitsExperiment.Setting: Int]
    let seconds: Double
    /// Where the pre-trained seeds start from (nil without the pre-trained setting).
    var pretrainedFrom: String? = nil
    /// The command line that made the report.
    var command: String? = nil

    var text: String {
        var out = "M2N2 on digits (MLP 64-256-10; train = first 1437, test = last 360): test accuracy of the\n"
        out += "archive member with the best training accuracy, mean ± std (ddof 0) over runs\n"
        if let pretrainedFrom { out += "pre-trained seeds trained from \(pretrainedFrom)\n" }
        out += "\n"
        out += "setting     passes  method              runs  test acc (%)     train acc (%)   published (%)  s/run\n"
        for r in rows {
            let test = r.testAccuracies.map { $0 * 100 }.meanAndStandardDeviation
            let train = r.trainAccuracies.map { $0 * 100 }.meanAndStandardDeviation
            let passes = r.method.hasPrefix("seed") ? "-" : r.method == "brute-force slerp" ? "10000"
                : String(budgets[r.setting] ?? r.setting.forwardPasses)
            out += r.setting.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)
            out += passes.padding(toLength: 8, withPad: " ", startingAt: 0)
            out += r.method.padding(toLength: 20, withPad: " ", startingAt: 0)
            out += String(r.testAccuracies.count).padding(toLength: 6, withPad: " ", startingAt: 0)
            out += String(format: "%5.1f ± %4.1f     %5.1f ± %4.1f    ", test.mean, test.std, train.mean, train.std)
            out += (r.published.map { String(format: "≈ %.1f", $0) } ?? "-").padding(toLength: 15, withPad: " ", startingAt: 0)
            out += String(format: "%6.1f\n", r.seconds.meanAndStandardDeviation.mean)
        }
        out += String(format: "\nwall time %.0f s", seconds)
        return out
    }

    var json: JSONValue {
        .object(JSONObject([
            ("experiment", .string("m2n2-digits")),
            ("command", command.map { .string($0) } ?? .null),
            ("runs", .int(runs)),
            ("pretrained_from", pretrainedFrom.map { .string($0) } ?? .null),
            ("wall_seconds", .double(seconds)),
            ("rows", .array(rows.map { r in
                let test = r.testAccuracies.meanAndStandardDeviation
                return .object(JSONObject([
                    ("setting", .string(r.setting.rawValue)),
                    ("method", .string(r.method)),
                    ("forward_passes", .int(budgets[r.setting] ?? r.setting.forwardPasses)),
                    ("test_accuracy_mean", .double(test.mean)),
                    ("test_accuracy_std", .double(test.std)),
                    ("published_percent", r.published.map { .double($0) } ?? .null),
                    ("test_accuracies", .array(r.testAccuracies.map { .double($0) })),
                    ("train_accuracies", .array(r.trainAccuracies.map { .double($0) })),
                    ("seconds", .array(r.seconds.map { .double($0) })),
                    ("wall_seconds_total", .double(r.seconds.reduce(0, +))),
                    ("traces", .array(r.traces.map { trace in
                        .object(JSONObject([
                            ("pass", .array(trace.map { .int($0.pass) })),
                            ("train_accuracy", .array(trace.map { .double($0.trainAccuracy) })),
                            ("test_accuracy", .array(trace.map { .double($0.testAccuracy) })),
                        ]))
                    })),
                ]))
            })),
        ]))
    }
}

/// The progress of M2N2 runs (one `ProgressDisplay` per run label): passes, best and mean fitness, best
/// training accuracy, coverage, diversity, passes/s and ETA.
final class M2N2ProgressLine: @unchecked Sendable {
    private let lock = Lock()
    private var displays: [String: (display: ProgressDisplay, time: Double, passes: Int)] = [:]

    func update(_ label: String, _ p: M2N2Progress) {
        let now = Date().timeIntervalSinceReferenceDate
        let entry = lock.withLock { () -> (display: ProgressDisplay, time: Double, passes: Int) in
            if let e = displays[label] { return e }
            let e = (display: ProgressDisplay(label: label), time: now, passes: p.passes)
            displays[label] = e
            return e
        }
        let rate = now > entry.time ? Double(p.passes - entry.passes) / (now - entry.time) : 0
        let detail = String(format: "fitness best %.1f mean %.1f  train best %.1f%%  coverage %.1f%%  diversity %.3f  %.0f passes/s",
                            p.bestFitness, p.meanFitness, p.bestScore * 100, p.coverage * 100, p.diversity, rate)
        entry.display.update(done: p.passes, total: p.budget, unit: "passes", detail: detail,
                             eta: rate > 0 ? Double(p.budget - p.passes) / rate : nil)
    }

    func clear() {
        for entry in lock.withLock({ Array(displays.values) }) { entry.display.clear() }
    }
}
