import AmalgamCore
import AmalgamSearch
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam evolve --store URL --run NAME --workers` with `amalgam worker` processes (issue #21): the
/// evaluations of one CMA-ES run spread over processes end exactly as the same run in one process with a
/// run folder (SQLite): same candidates with their per-example score bytes, same CMA-ES state, same best
/// recipe; also when a worker is SIGKILLed mid-evaluation, a worker is frozen past its lease, or the
/// coordinator is SIGKILLed and started again.
@Suite(.requires(testPostgres), .requires(amalgamProgram)) struct EvolveWorkerTests {
    let evolve = EvolveTests()
    let stored = EvolvePostgresStoreTests()
    static let budget = 16

    /// The config (4 candidates a generation, 4 generations) and the reference: the run in one process, in a run folder.
    func prepare(_ dir: String) throws -> (config: String, folder: String) {
        let inputs = try evolve.makeInputs(dir)
        let config = try evolve.writeCMAESConfig(dir + "/evolve.yml", inputs, budget: Self.budget, seed: 4)
        let single = try runAmalgam(["evolve", config, "--run-dir", dir + "/folder", "--quiet"])
        #expect(single.status == 0, "\(single.err)")
        return (config, dir + "/folder")
    }

    /// Starts `amalgam ARGUMENTS` with its output in `dir/NAME.out` and `dir/NAME.err`.
    func start(_ arguments: [String], _ dir: String, _ name: String) throws -> Subprocess {
        try Subprocess(executable: try amalgamProgram.require(), arguments: arguments,
                       standardOutput: "\(dir)/\(name).out", standardError: "\(dir)/\(name).err")
    }

    func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    func queue(_ run: String) throws -> PostgresRunStore {
        try PostgresRunStore.open(url: try testPostgres.require(), run: run, kind: EvolveRunner.cmaesKind, create: false)
    }

    /// The run in the store equals the run-folder run, and every candidate has exactly one result.
    func expectSameAsSingleProcess(_ run: String, folder: String, outputs: String) throws {
        let candidates = try stored.folderCandidates(folder)
        #expect(candidates.count == Self.budget)
        #expect(try stored.storeCandidates(run) == candidates)
        let folderSearch = try RunFolder.open(path: folder, kind: EvolveRunner.cmaesKind, durability: .process, claim: false).blob("search")
        #expect(try stored.storeSearch(run) == folderSearch, "the CMA-ES state differs")
        #expect(text(folder + "/best.yml") == text(outputs + "/best.yml") && !text(folder + "/best.yml").isEmpty)
        let q = try queue(run)
        #expect(try q.workResults().map(\.index) == Array(0..<Self.budget), "each candidate has one result")
        let counts = try q.workCounts()
        #expect(counts.done == Self.budget && counts.queued == 0 && counts.running == 0 && counts.failed == 0, "\(counts)")
    }

    @Test func aCoordinatorAndTwoWorkerProcessesEndAsTheSingleProcessRun() throws {
        let url = try testPostgres.require()
        let dir = temporaryFolder("evolve-workers")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (config, folder) = try prepare(dir)
        let run = "workers-\(UUID().uuidString.prefix(8))"
        // The coordinator leaves every evaluation to the workers; a short sleep per evaluation lets both take part.
        let coordinator = try start(["evolve", config, "--store", url, "--run", run, "--run-dir", dir + "/outputs", "--workers",
                                     "--coordinate-only", "--quiet"], dir, "coordinator")
        let workers = try (0..<2).map { k in
            try start(["worker", "--store", url, "--run", run, "--concurrency", "\(k + 1)", "--test-delay-ms", "150"], dir, "worker\(k)")
        }
        #expect(coordinator.wait() == .exited(0), "\(text(dir + "/coordinator.err"))")
        for (k, w) in workers.enumerated() { #expect(w.wait() == .exited(0), "\(text(dir + "/worker\(k).err"))") }
        try expectSameAsSingleProcess(run, folder: folder, outputs: dir + "/outputs")
        let processes = Set(try queue(run).workResults().map { $0.worker.components(separatedBy: " #")[0] })
        #expect(processes.count == 2, "the results came from \(processes)")
        #expect(!processes.contains { $0.hasPrefix("coordinator") })
        #expect(text(dir + "/worker0.out").contains("worker done:"), "\(text(dir + "/worker0.out"))")
    }

    @Test func aWorkerKilledMidEvaluationLosesNothingAndScoresNothingTwice() throws {
        let url = try testPostgres.require()
        let dir = temporaryFolder("evolve-worker-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (config, folder) = try prepare(dir)
        let run = "worker-kill-\(UUID().uuidString.prefix(8))"
        let coordinator = try start(["evolve", config, "--store", url, "--run", run, "--run-dir", dir + "/outputs", "--workers",
                                     "--coordinate-only", "--quiet"], dir, "coordinator")
        // A worker whose evaluations take 7 s (far beyond its 3-s lease, kept alive by heartbeats every second)...
        let slow = try start(["worker", "--store", url, "--run", run, "--lease", "3", "--test-delay-ms", "7000"], dir, "slow")
        let killed = try #require(try claimedWhileStopped(slow, run), "the slow worker never claimed a candidate")
        slow.send(SIGCONT)
        // ...lives past its lease while it evaluates: the heartbeats keep the candidate its own...
        sleep(4)
        #expect(try runningItem(run)?.index == killed.index && runningItem(run)?.attempt == 1, "a heartbeated lease ran out")
        // ...and is SIGKILLed mid-evaluation: its lease runs out, the candidate is requeued and done once, by another worker.
        slow.send(SIGKILL)
        #expect(slow.wait() == .signaled(SIGKILL))
        let other = try start(["worker", "--store", url, "--run", run, "--lease", "2"], dir, "other")
        #expect(coordinator.wait() == .exited(0), "\(text(dir + "/coordinator.err"))")
        #expect(other.wait() == .exited(0), "\(text(dir + "/other.err"))")
        try expectSameAsSingleProcess(run, folder: folder, outputs: dir + "/outputs")
        let result = try #require(try queue(run).workResults().first { $0.index == killed.index })
        #expect(result.attempt == 2 && !result.worker.contains("amalgam \(slow.pid) "), "\(result)")
    }

    /// A worker whose copy of a seed model is not the coordinator's (one byte more in its config.json) is
    /// refused before it claims anything, naming the model; so is the coordinator, started again once a seed
    /// model changed under the run.
    @Test func aSeedModelThatIsNotTheCoordinatorsIsRefusedNamingIt() throws {
        let url = try testPostgres.require()
        let dir = temporaryFolder("evolve-worker-seed")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inputs = try evolve.makeInputs(dir)
        let config = try evolve.writeCMAESConfig(dir + "/evolve.yml", inputs, budget: Self.budget, seed: 4)
        let run = "worker-seed-\(UUID().uuidString.prefix(8))"
        let arguments = ["evolve", config, "--store", url, "--run", run, "--run-dir", dir + "/outputs", "--workers", "--coordinate-only", "--quiet"]
        let coordinator = try start(arguments, dir, "coordinator")
        var published = false
        for _ in 0..<600 where !published {
            usleep(50_000)
            published = (try? queue(run).blob("seed-models")) != nil
        }
        #expect(published, "the coordinator never published its seed models: \(text(dir + "/coordinator.err"))")
        let handle = try #require(FileHandle(forWritingAtPath: inputs.b + "/config.json"))
        handle.seekToEndOfFile()
        handle.write(Data("\n".utf8))
        try handle.close()

        let worker = try runAmalgam(["worker", "--store", url, "--run", run])
        #expect(worker.status != 0 && worker.err.contains("seed model 2, \(inputs.b), is not the coordinator's"), "\(worker.err)")
        #expect(try queue(run).workResults().isEmpty, "the refused worker scored something")
        coordinator.send(SIGKILL)
        #expect(coordinator.wait() == .signaled(SIGKILL))
        // (Evaluating itself, so that a run that went on would end rather than wait for workers.)
        let again = try runAmalgam(["evolve", config, "--store", url, "--run", run, "--run-dir", dir + "/outputs", "--workers", "--resume", "--quiet"])
        #expect(again.status != 0 && again.err.contains("seed model \(inputs.b) changed since the run started"), "\(again.err)")
    }

    /// A worker whose copies of the seed models and the task file sit elsewhere than the coordinator's reads
    /// them through `--path-map`: a mapped copy that differs (the task file, one byte) is refused naming it and
    /// the path it was mapped from, with nothing scored; with identical copies the run ends as the
    /// single-process run.
    @Test func aWorkerReadsItsOwnCopiesThroughAPathMap() throws {
        let url = try testPostgres.require()
        let dir = temporaryFolder("evolve-worker-paths")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (config, folder) = try prepare(dir)
        let copies = dir + "/copies", fm = FileManager.default
        try fm.createDirectory(atPath: copies, withIntermediateDirectories: true)
        for name in ["a", "b", "tiny-mc.jsonl"] { try fm.copyItem(atPath: dir + "/" + name, toPath: copies + "/" + name) }
        let run = "worker-paths-\(UUID().uuidString.prefix(8))"
        let coordinator = try start(["evolve", config, "--store", url, "--run", run, "--run-dir", dir + "/outputs", "--workers",
                                     "--coordinate-only", "--quiet"], dir, "coordinator")
        let map = ["--path-map", "\(dir)/a=\(copies)/a", "--path-map", "\(dir)/b=\(copies)/b", "--path-map", "\(dir)/tiny-mc.jsonl=\(copies)/tiny-mc.jsonl"]

        let task = copies + "/tiny-mc.jsonl", original = try Data(contentsOf: URL(fileURLWithPath: task))
        try (original + Data("\n".utf8)).write(to: URL(fileURLWithPath: task))
        let refused = try runAmalgam(["worker", "--store", url, "--run", run] + map)
        #expect(refused.status != 0 && refused.err.contains("task file 1, \(task), is not the coordinator's")
                && refused.err.contains("mapped from \(dir)/tiny-mc.jsonl by --path-map"), "\(refused.err)")
        #expect(try queue(run).workResults().isEmpty, "the refused worker scored something")

        try original.write(to: URL(fileURLWithPath: task))
        let worker = try runAmalgam(["worker", "--store", url, "--run", run, "--quiet"] + map)
        #expect(worker.status == 0, "\(worker.err)")
        #expect(worker.err.contains("\(dir)/b → \(copies)/b") && worker.err.contains("seed models: 2, task files: 1"), "\(worker.err)")
        #expect(coordinator.wait() == .exited(0), "\(text(dir + "/coordinator.err"))")
        try expectSameAsSingleProcess(run, folder: folder, outputs: dir + "/outputs")

        let bad = try runAmalgam(["worker", "--store", url, "--run", run, "--path-map", "\(dir)/a"])
        #expect(bad.status != 0 && bad.err.contains("--path-map: `\(dir)/a` is not FROM=TO"), "\(bad.err)")
    }

    /// The item being evaluated (the one running), if one is.
    func runningItem(_ run: String) throws -> (index: Int, attempt: Int)? {
        try queue(run).runningItems().first
    }

    /// Stops (SIGSTOP) `worker` at a moment it holds a claim, polling: stop, look, go on if it holds none.
    /// Returns the claimed item with the worker stopped, or nil (worker going on) after 30 s.
    func claimedWhileStopped(_ worker: Subprocess, _ run: String) throws -> (index: Int, attempt: Int)? {
        for _ in 0..<600 {
            usleep(50_000)
            worker.send(SIGSTOP)
            if let item = try? runningItem(run) { return item }
            worker.send(SIGCONT)
        }
        return nil
    }

    @Test func aWorkerFrozenPastItsLeaseHasItsLateResultRefused() throws {
        let url = try testPostgres.require()
        let dir = temporaryFolder("evolve-worker-frozen")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (config, folder) = try prepare(dir)
        let run = "worker-frozen-\(UUID().uuidString.prefix(8))"
        let coordinator = try start(["evolve", config, "--store", url, "--run", run, "--run-dir", dir + "/outputs", "--workers",
                                     "--coordinate-only", "--lease", "2", "--quiet"], dir, "coordinator")
        let frozen = try start(["worker", "--store", url, "--run", run, "--lease", "2", "--test-delay-ms", "1000"], dir, "frozen")
        // Stopped at a moment it holds a claim.
        let item = try #require(try claimedWhileStopped(frozen, run), "the worker never claimed a candidate")
        // Frozen (as a machine cut off from the network): no heartbeat, so its lease runs out and another worker does the candidate.
        let other = try start(["worker", "--store", url, "--run", run, "--lease", "2"], dir, "other")
        for _ in 0..<600 {
            if try queue(run).workResults().contains(where: { $0.index == item.index }) { break }
            usleep(50_000)
        }
        // Thawed, it finishes its evaluation late: the result is refused, and it serves the run to its end.
        frozen.send(SIGCONT)
        #expect(coordinator.wait() == .exited(0), "\(text(dir + "/coordinator.err"))")
        #expect(other.wait() == .exited(0), "\(text(dir + "/other.err"))")
        #expect(frozen.wait() == .exited(0), "\(text(dir + "/frozen.err"))")
        try expectSameAsSingleProcess(run, folder: folder, outputs: dir + "/outputs")
        let result = try #require(try queue(run).workResults().first { $0.index == item.index })
        #expect(result.attempt == 2 && !result.worker.contains("amalgam \(frozen.pid) "), "\(result)")
        #expect(text(dir + "/frozen.out").contains("1 late results refused"), "\(text(dir + "/frozen.out"))")
    }

    @Test func theCoordinatorKilledAtSeededMomentsAndRestartedEndsAsTheSingleProcessRun() throws {
        let binary = try amalgamProgram.require()
        let url = try testPostgres.require()
        let dir = temporaryFolder("evolve-coordinator-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (config, folder) = try prepare(dir)
        let run = "coordinator-kill-\(UUID().uuidString.prefix(8))"
        let workers = try (0..<2).map { k in
            try start(["worker", "--store", url, "--run", run, "--lease", "2", "--test-delay-ms", "100"], dir, "worker\(k)")
        }
        // The coordinator evaluates too (its claims, when it is killed, run out and are requeued).
        let arguments = ["evolve", config, "--store", url, "--run", run, "--run-dir", dir + "/outputs", "--resume", "--workers",
                         "--lease", "2", "--quiet"]
        let killer = KillResumeTests()
        let midRunKills = try killer.killAtSeededMoments(binary, arguments, folder: run, total: Self.budget, kills: 3, seed: 2031,
                                                         startPolls: 400, polls: 20) { run in
            guard let store = try? PostgresRunStore.open(url: url, run: run, kind: EvolveRunner.cmaesKind, create: false) else { return nil }
            return try store.workResults().count
        }
        #expect(midRunKills >= 1, "no kill landed inside the run: it proves nothing")
        #expect(try !killer.launch(binary, arguments, folder: "", target: nil, polls: 0))
        for (k, w) in workers.enumerated() { #expect(w.wait() == .exited(0), "\(text(dir + "/worker\(k).err"))") }
        try expectSameAsSingleProcess(run, folder: folder, outputs: dir + "/outputs")
    }

    @Test func theCommandsRefuseWhatCannotWork() throws {
        let notPostgres = try runAmalgam(["worker", "--store", "mysql://u:pw@h/db"])
        #expect(notPostgres.status != 0 && notPostgres.err.contains("not a PostgreSQL URL") && !notPostgres.err.contains("pw@"), "\(notPostgres.err)")
        let noStore = try runAmalgam(["worker"], environment: ["AMALGAM_STORE": ""])
        #expect(noStore.status != 0 && noStore.err.contains("--store"), "\(noStore.err)")
        let dir = temporaryFolder("evolve-workers-refusals")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inputs = try evolve.makeInputs(dir)
        let config = dir + "/cmaes.yml"
        try "method: cmaes\nmodels: [\(inputs.a), \(inputs.b)]\ntasks: [\(inputs.task)]\nbudget: 4\ncmaes: {merge_method: linear}\n".write(toFile: config, atomically: true, encoding: .utf8)
        let withoutStore = try runAmalgam(["evolve", config, "--run-dir", dir + "/r", "--workers"], environment: ["AMALGAM_STORE": ""])
        #expect(withoutStore.status != 0 && withoutStore.err.contains("--workers shares a run kept in a --store database"), "\(withoutStore.err)")
        let onlyCoordinate = try runAmalgam(["evolve", config, "--run-dir", dir + "/r", "--coordinate-only", "--store", try testPostgres.require()])
        #expect(onlyCoordinate.status != 0 && onlyCoordinate.err.contains("give --workers too"), "\(onlyCoordinate.err)")
    }
}

/// `--path-map FROM=TO`: a worker's own paths for the files a run's configuration names.
@Suite struct PathMapTests {
    @Test func aPathUnderFromIsReadUnderToByWholeComponentsLongestFirst() throws {
        let map = try PathMap(["/mnt/models=/data/m", "/mnt/models/special/=/fast/special", "/mnt=/other"])
        #expect(map("/mnt/models/a/config.json") == "/data/m/a/config.json")
        #expect(map("/mnt/models") == "/data/m")
        #expect(map("/mnt/models/special/x") == "/fast/special/x", "the longest FROM wins")
        #expect(map("/mnt/modelsX/a") == "/other/modelsX/a", "prefixes match whole components")
        #expect(map("/elsewhere/a") == "/elsewhere/a")
        #expect(map.reference("/mnt/models/a+/mnt/lora/b") == "/data/m/a+/other/lora/b", "both parts of MODEL+ADAPTER")
        #expect(throws: SearchError.self) { try PathMap(["/mnt"]) }
        #expect(throws: SearchError.self) { try PathMap(["=/x"]) }
        #expect(throws: SearchError.self) { try PathMap(["/a=/x", "/a/=/y"]) }
    }

    /// A candidate recipe names the models at the coordinator's paths; a runner with the map merges this
    /// machine's copies, and gives the scores of the same recipe at the real paths. Without the map, the
    /// recipe cannot be merged here.
    @Test func aRecipeAtTheCoordinatorsPathsMergesThisMachinesCopies() throws {
        let evolve = EvolveTests()
        let dir = temporaryFolder("path-map-recipe")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inputs = try evolve.makeInputs(dir)
        let runner = try EvolveRunner(configuration: try evolve.configuration("cmaes", inputs, budget: 4), runDirectory: dir + "/run",
                                      tokenizer: evolve.tokenizer())
        func recipe(_ a: String, _ b: String) -> String {
            "merge_method: linear\nmodels:\n  - model: \(a)\n    parameters: {weight: 0.3}\n  - model: \(b)\n    parameters: {weight: 0.7}\ndtype: float32\n"
        }
        let elsewhere = recipe("/coordinator/models/a", "/coordinator/models/b")
        #expect(throws: SearchError.self) { try runner.mergedModel(yaml: elsewhere) }
        let here = try runner.tasks.trainScores(model: try runner.mergedModel(yaml: recipe(inputs.a, inputs.b)), tokenizer: runner.tokenizer, formatter: nil)
        runner.recipePaths = try PathMap(["/coordinator/models=\(dir)"])
        let mapped = try runner.tasks.trainScores(model: try runner.mergedModel(yaml: elsewhere), tokenizer: runner.tokenizer, formatter: nil)
        #expect(mapped == here && !here.isEmpty)
    }
}
