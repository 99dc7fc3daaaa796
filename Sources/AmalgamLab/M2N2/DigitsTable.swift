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
    /// `methods`, when given, keeps only those methods (by name, e.g. `M2N2`, `GA`, `MAP-Elites`, `CMA-ES`,
    /// `brute-force slerp`); a method outside the setting's figure (e.g. `no attraction` from scratch) is
    /// added after the figure's, without a published value. CMA-ES runs only from scratch.
    /// MAP-Elites and CMA-ES keep no run folder (they run in memory even with `runDirectory`).
    public func table(settings: [Setting], runs: Int, forwardPasses: [Setting: Int] = [:], methods: Set<String>? = nil,
                      concurrentJobs: Int = 1, runDirectory: String? = nil, resume: Bool = false,
                      durability: RunFolder.Durability = .process,
                      stepProgress: @escaping @Sendable (String, M2N2Progress) -> Void = { _, _ in },
                      progress: @escaping @Sendable (DigitsExperimentProgress) -> Void = { _ in }) throws(SearchError) -> [Row] {
        struct Job: Sendable { var setting: Setting; var method: String; var run: Int }
        func cells(_ setting: Setting) -> [(String, Double?)] {
            var list: [(String, Double?)] = setting.methods.filter { methods?.contains($0.0) ?? true }.map { ($0.0, $0.1) }
            for m in (methods ?? []).sorted() where setting.runs(m) && !list.contains(where: { $0.0 == m }) { list.append((m, nil)) }
            return list
        }
        var jobs: [Job] = []
        for setting in settings {
            for (method, _) in cells(setting) {
                for run in 0..<runs { jobs.append(Job(setting: setting, method: method, run: run)) }
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
                let label = "\(job.setting.rawValue) \(job.method) run \(job.run)"
                let result = Result { () throws(SearchError) -> RunResult in
                    let seed = UInt64(job.run), passes = forwardPasses[job.setting]
                    switch (M2N2Variant(rawValue: job.method), DigitsBaseline(rawValue: job.method)) {
                    case let (variant?, _):
                        let storage = runDirectory.map {
                            RunStorage(path: $0 + "/" + Self.runFolderName(setting: job.setting, variant: variant, run: job.run),
                                       resume: resume, durability: durability)
                        }
                        return try experiment.run(setting: job.setting, variant: variant, seed: seed,
                                                  forwardPasses: passes, storage: storage, every: 250) {
                            stepProgress(label, $0)
                        }
                    case (nil, .mapElites?):
                        return try experiment.runMapElites(setting: job.setting, seed: seed, forwardPasses: passes)
                    case (nil, .cmaES?):
                        return try experiment.runCMAES(seed: seed, forwardPasses: passes).result
                    case (nil, nil):
                        throw SearchError.invalidConfiguration(key: "method", reason: "unknown digits method `\(job.method)`")
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
            for (method, published) in cells(setting) {
                var row = Row(setting: setting, method: method, testAccuracies: [], trainAccuracies: [],
                              published: published, seconds: [])
                for (i, job) in jobs.enumerated() where job.setting == setting && job.method == method {
                    let r = try results.value[i]!.get()
                    row.testAccuracies.append(r.testAccuracy)
                    row.trainAccuracies.append(r.trainAccuracy)
                    row.seconds.append(r.seconds)
                    row.traces.append(r.trace ?? [])
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
