import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamModels
import AmalgamSearch
import Dispatch

/// Progress of the whole experiment: jobs done out of the total, and the job that just finished.
public struct DigitsExperimentProgress: Sendable {
    /// Finished jobs.
    public var done: Int
    /// All jobs.
    public var total: Int
    /// What just finished, e.g. `pretrained M2N2 run 3: test 0.683`.
    public var label: String
}

extension DigitsExperiment {
    /// Runs every method of every setting in `settings` over `runs` seeds (0, 1, …) and returns the table.
    /// Jobs are independent and may run on all cores at once (`concurrentJobs`); each is seeded on its own,
    /// so the table does not depend on how many run at a time.
    /// `methods`, when given, keeps only those variants (by name, e.g. `M2N2`, `GA`) and the baselines.
    public func table(settings: [Setting], runs: Int, forwardPasses: [Setting: Int] = [:], methods: Set<String>? = nil,
                      concurrentJobs: Int = 1, runDirectory: String? = nil, resume: Bool = false,
                      durability: RunFolder.Durability = .process,
                      stepProgress: @escaping @Sendable (String, M2N2Progress) -> Void = { _, _ in },
                      progress: @escaping @Sendable (DigitsExperimentProgress) -> Void = { _ in }) throws(SearchError) -> [Row] {
        struct Job: Sendable { var setting: Setting; var variant: M2N2Variant; var run: Int }
        var jobs: [Job] = []
        for setting in settings {
            for (variant, _) in setting.variants where methods?.contains(variant.rawValue) ?? true {
                for run in 0..<runs { jobs.append(Job(setting: setting, variant: variant, run: run)) }
            }
        }
        let allJobs = jobs
        let results = Box([Result<RunResult, SearchError>?](repeating: nil, count: jobs.count))
        let lock = Lock()
        let next = Box(0), done = Box(0)
        let total = jobs.count + (settings.contains(.pretrained) && (methods?.contains("brute-force slerp") ?? true) ? 1 : 0)
        let experiment = self
        DispatchQueue.concurrentPerform(iterations: max(1, min(concurrentJobs, jobs.count))) { _ in
            while true {
                let i: Int = lock.withLock { defer { next.value += 1 }; return next.value }
                guard i < allJobs.count else { return }
                let job = allJobs[i]
                let label = "\(job.setting.rawValue) \(job.variant.rawValue) run \(job.run)"
                let storage = runDirectory.map {
                    RunStorage(path: $0 + "/" + Self.runFolderName(setting: job.setting, variant: job.variant, run: job.run),
                               resume: resume, durability: durability)
                }
                let result = Result { () throws(SearchError) in
                    try experiment.run(setting: job.setting, variant: job.variant, seed: UInt64(job.run),
                                       forwardPasses: forwardPasses[job.setting], storage: storage, every: 250) {
                        stepProgress(label, $0)
                    }
                }
                lock.withLock {
                    results.value[i] = result
                    done.value += 1
                    let accuracy = (try? result.get()).map { String(format: "%.3f", $0.testAccuracy) } ?? "failed"
                    progress(DigitsExperimentProgress(done: done.value, total: total, label: "\(label): test \(accuracy)"))
                }
            }
        }
        var rows: [Row] = []
        for setting in settings {
            for (variant, published) in setting.variants where methods?.contains(variant.rawValue) ?? true {
                var row = Row(setting: setting, method: variant.rawValue, testAccuracies: [], trainAccuracies: [],
                              published: published, seconds: [])
                for (i, job) in jobs.enumerated() where job.setting == setting && job.variant == variant {
                    let r = try results.value[i]!.get()
                    row.testAccuracies.append(r.testAccuracy)
                    row.trainAccuracies.append(r.trainAccuracy)
                    row.seconds.append(r.seconds)
                }
                rows.append(row)
            }
            if setting == .pretrained, methods?.contains("brute-force slerp") ?? true {
                let seeds = pretrainedSeeds()
                let brute = try bruteForceSlerp(seeds: seeds)
                progress(DigitsExperimentProgress(done: total, total: total,
                                                  label: "pretrained brute-force slerp: test \(brute.testAccuracy)"))
                rows.append(Row(setting: setting, method: "brute-force slerp", testAccuracies: [brute.testAccuracy],
                                trainAccuracies: [brute.trainAccuracy], published: 57.7, seconds: [brute.seconds]))
                for (i, (name, published)) in [("seed 0-4", 44.0), ("seed 5-9", 46.0)].enumerated() {
                    rows.append(Row(setting: setting, method: name,
                                    testAccuracies: [classifier.accuracy(parameters: seeds[i], batch: test)],
                                    trainAccuracies: [classifier.accuracy(parameters: seeds[i], batch: train)],
                                    published: published, seconds: [0]))
                }
            }
        }
        return rows
    }
}

extension DigitsExperiment {
    /// The folder of one run inside a table's run directory, e.g. `scratch-no-crossover-run3`.
    public static func runFolderName(setting: Setting, variant: M2N2Variant, run: Int) -> String {
        "\(setting.rawValue)-\(variant.rawValue.lowercased().replacingOccurrences(of: " ", with: "-"))-run\(run)"
    }
}

/// A mutable value shared by the experiment's worker threads, always accessed under its lock.
private final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

extension Array where Element == Double {
    /// Mean and population standard deviation (NumPy's default, ddof = 0).
    public var meanAndStandardDeviation: (mean: Double, std: Double) {
        guard !isEmpty else { return (0, 0) }
        let m = reduce(0, +) / Double(count)
        return (m, (map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(count)).squareRoot())
    }
}
