import AmalgamCheckpoint
import AmalgamCore
import AmalgamSearch
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam evolve --store postgres://…`: a CMA-ES run kept in the PostgreSQL run store instead of a run
/// folder ends exactly as the same run in a run folder (SQLite), also when stopped or SIGKILLed and resumed.
@Suite(.requires(testPostgres)) struct EvolvePostgresStoreTests {
    let evolve = EvolveTests()

    /// Each candidate of a run-folder run, as text: evaluation, recipe, fitness, per-example scores (hex).
    func folderCandidates(_ dir: String) throws -> [String] {
        let folder = try RunFolder.open(path: dir, kind: EvolveRunner.cmaesKind, durability: .process, claim: false)
        let s = try folder.database.statement("SELECT evaluation, recipe, fitness, hex(scores) FROM candidates ORDER BY evaluation")
        var out: [String] = []
        while try s.step() { out.append("\(s.int(0))|\(s.text(1) ?? "")|\(s.double(2))|\(s.text(3) ?? "")") }
        return out
    }

    /// A candidate as the store keeps it.
    struct Kept: Decodable { var recipe: String; var fitness: Double; var scores: [Float] }

    /// The same of a run in the test database.
    func storeCandidates(_ run: String) throws -> [String] {
        let store = try PostgresRunStore.open(url: try testPostgres.require(), run: run, kind: EvolveRunner.cmaesKind, create: false)
        let count = try store.blobNames(withPrefix: "candidate/").count
        return try (0..<count).map { i in
            let bytes = try #require(try store.blob("candidate/\(i)"))
            let kept = try JSONDecoder().decode(Kept.self, from: Data(bytes))
            let hex = kept.scores.withUnsafeBytes { $0.map { String(format: "%02X", $0) }.joined() }
            return "\(i)|\(kept.recipe)|\(kept.fitness)|\(hex)"
        }
    }

    /// The CMA-ES state a run committed last.
    func storeSearch(_ run: String) throws -> [UInt8]? {
        try PostgresRunStore.open(url: try testPostgres.require(), run: run, kind: EvolveRunner.cmaesKind, create: false).blob("search")
    }

    @Test func aCMAESRunInPostgreSQLStoppedAndResumedEndsAsTheSameRunInARunFolder() throws {
        let dir = temporaryFolder("evolve-postgres")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inputs = try evolve.makeInputs(dir)
        let c = try evolve.configuration("cmaes", inputs, budget: 8)
        let inFolder = try #require(try EvolveRunner(configuration: c, runDirectory: dir + "/folder", tokenizer: evolve.tokenizer()).run(resume: false))

        let run = "evolve-\(UUID().uuidString.prefix(8))"
        func runner() throws -> EvolveRunner {
            let r = try EvolveRunner(configuration: c, runDirectory: dir + "/outputs", tokenizer: evolve.tokenizer())
            r.store = (try testPostgres.require(), run)
            return r
        }
        #expect(try runner().run(resume: false, stopAfter: 6) == nil)
        do {
            _ = try runner().run(resume: false)
            Issue.record("a run that holds steps was started again without resume")
        } catch {
            #expect("\(error)".contains("run `\(run)`") && "\(error)".contains("--resume"), "\(error)")
        }
        let inStore = try #require(try runner().run(resume: true))
        #expect(inStore.best == inFolder.best && inStore.trainFitness == inFolder.trainFitness && inStore.testScores == inFolder.testScores)
        #expect(inStore.passes == 8)
        let candidates = try folderCandidates(dir + "/folder")
        #expect(candidates.count == 8)
        #expect(try storeCandidates(run) == candidates)
        let folderSearch = try RunFolder.open(path: dir + "/folder", kind: EvolveRunner.cmaesKind, durability: .process, claim: false).blob("search")
        #expect(try storeSearch(run) == folderSearch, "the CMA-ES state differs")
        #expect(try String(contentsOfFile: dir + "/folder/best.yml", encoding: .utf8) == String(contentsOfFile: dir + "/outputs/best.yml", encoding: .utf8))

        // Another configuration is refused, naming the run.
        var other = c
        other.seed = 6
        let r = try EvolveRunner(configuration: other, runDirectory: dir + "/outputs", tokenizer: evolve.tokenizer())
        r.store = (try testPostgres.require(), run)
        do {
            _ = try r.run(resume: true)
            Issue.record("another configuration was accepted")
        } catch {
            #expect("\(error)".contains("run `\(run)`") && "\(error)".contains("seed: 5 in the run, 6 now"), "\(error)")
        }
    }

    /// `amalgam evolve --store URL --run NAME --resume`, SIGKILLed at seeded moments (start-up, mid-generation,
    /// between generations) and started again until done: the same candidates, CMA-ES state and best recipe as
    /// `amalgam evolve --run-dir` uninterrupted. (The killed process held the run's lock: the server frees it.)
    @Test(.requires(amalgamProgram))
    func evolveWithAPostgreSQLStoreKilledAtSeededMomentsEndsAsAnUninterruptedRunFolderRun() throws {
        let binary = try amalgamProgram.require()
        let url = try testPostgres.require()
        let dir = temporaryFolder("evolve-postgres-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inputs = try evolve.makeInputs(dir)
        let budget = 16
        let config = try evolve.writeCMAESConfig(dir + "/evolve.yml", inputs, budget: budget, seed: 3)
        let killer = KillResumeTests()
        #expect(try !killer.launch(binary, ["evolve", config, "--run-dir", dir + "/folder", "--quiet"], folder: "", target: nil, polls: 0))
        let run = "evolve-kill-\(UUID().uuidString.prefix(8))"
        let arguments = ["evolve", config, "--store", url, "--run", run, "--run-dir", dir + "/outputs", "--resume", "--quiet"]
        let midRunKills = try killer.killAtSeededMoments(binary, arguments, folder: run, total: budget, kills: 3, seed: 2029,
                                                         startPolls: 1200, polls: 40) { run in
            guard let store = try? PostgresRunStore.open(url: url, run: run, kind: EvolveRunner.cmaesKind, create: false) else { return nil }
            return try store.blobNames(withPrefix: "candidate/").count
        }
        #expect(midRunKills >= 1, "no kill landed inside the run: it proves nothing")
        #expect(try !killer.launch(binary, arguments, folder: "", target: nil, polls: 0))
        let candidates = try folderCandidates(dir + "/folder")
        #expect(candidates.count == budget)
        #expect(try storeCandidates(run) == candidates)
        let folderSearch = try RunFolder.open(path: dir + "/folder", kind: EvolveRunner.cmaesKind, durability: .process, claim: false).blob("search")
        #expect(try storeSearch(run) == folderSearch, "the CMA-ES state differs")
        #expect(try String(contentsOfFile: dir + "/folder/best.yml", encoding: .utf8) == String(contentsOfFile: dir + "/outputs/best.yml", encoding: .utf8))
    }

    @Test(.requires(amalgamProgram))
    func evolveRefusesAStoreThatIsNotPostgreSQLAndM2N2InAStore() throws {
        let dir = temporaryFolder("evolve-postgres-refusals")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inputs = try evolve.makeInputs(dir)
        let config = dir + "/m2n2.yml"
        try "method: m2n2\nmodels: [\(inputs.a), \(inputs.b)]\ntasks: [\(inputs.task)]\nbudget: 4\n".write(toFile: config, atomically: true, encoding: .utf8)
        let notPostgres = try runAmalgam(["evolve", config, "--store", "mysql://u:pw@h/db", "--run-dir", dir + "/r"])
        #expect(notPostgres.status != 0 && notPostgres.err.contains("not a PostgreSQL URL") && !notPostgres.err.contains("pw@"), "\(notPostgres.err)")
        let m2n2 = try runAmalgam(["evolve", config, "--run-dir", dir + "/r"], environment: ["AMALGAM_STORE": try testPostgres.require()])
        #expect(m2n2.status != 0 && m2n2.err.contains("CMA-ES runs only") && m2n2.err.contains("--run-dir"), "\(m2n2.err)")
    }
}
