import AmalgamCore
import AmalgamSearch
import AmalgamTestSupport
import Foundation
import Testing

/// A CMA-ES run folder of amalgam up to main at d184d06 (format 1: the search state in `meta.search` and
/// `meta.seconds`, no store tables) is continued by this version and ends as an uninterrupted run.
@Suite struct EvolveOldRunFolderTests {
    /// Turns a run folder of this version back into the format-1 layout it had before the run store.
    func downgradeToFormat1(_ path: String) throws {
        let search: [UInt8], seconds: Double
        do {
            let folder = try RunFolder.open(path: path, kind: "evolve-cmaes", durability: .process, claim: false)
            let step = try #require(try folder.latestStep())
            search = try #require(try folder.blob("search"))
            let record = try #require(try folder.records(in: step...step).first)
            seconds = try #require(try JSONValue.parse(record.json)["seconds"]?.doubleValue)
        }
        // A connection of its own: the folder's cached statements would keep the tables busy.
        let database = try SQLiteDatabase(path: path + "/" + RunFolder.databaseName)
        try database.transaction { () throws(SearchError) in
            try database.statement("INSERT OR REPLACE INTO meta (key, value) VALUES ('search', ?), ('seconds', ?), ('format', '1')")
                .bind(.text(String(decoding: search, as: UTF8.self)), .text("\(seconds)")).step()
            try database.execute("DELETE FROM meta WHERE key = 'step'; DROP TABLE run_steps; DROP TABLE run_blobs; DROP TABLE run_outputs")
        }
    }

    @Test func aCMAESRunFolderOfTheOlderFormatResumesAndEndsAsAnUninterruptedRun() throws {
        let helpers = EvolveTests()
        let dir = temporaryFolder("evolve-format1")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inputs = try helpers.makeInputs(dir)
        let c = try helpers.configuration("cmaes", inputs, budget: 8)
        let result = try #require(try EvolveRunner(configuration: c, runDirectory: dir + "/whole", tokenizer: helpers.tokenizer()).run(resume: false))
        #expect(try EvolveRunner(configuration: c, runDirectory: dir + "/old", tokenizer: helpers.tokenizer()).run(resume: false, stopAfter: 6) == nil)
        try downgradeToFormat1(dir + "/old")
        #expect(try RunFolder.open(path: dir + "/old", kind: "evolve-cmaes", durability: .process, claim: false).meta("format") == "1")

        let resumed = try #require(try EvolveRunner(configuration: c, runDirectory: dir + "/old", tokenizer: helpers.tokenizer()).run(resume: true))
        #expect(resumed.best == result.best && resumed.trainFitness == result.trainFitness && resumed.testScores == result.testScores)
        let table = "SELECT evaluation, recipe, metrics, fitness, hex(scores) FROM candidates ORDER BY evaluation"
        #expect(try helpers.rows(dir + "/old", kind: "evolve-cmaes", table) == helpers.rows(dir + "/whole", kind: "evolve-cmaes", table))
        let folder = try RunFolder.open(path: dir + "/old", kind: "evolve-cmaes", durability: .process, claim: false)
        #expect(try folder.meta("format") == String(RunFolder.formatVersion))
        #expect(try folder.latestStep() == 8)
    }

    @Test func anEvolveResumeWithAnotherConfigurationNamesTheSettingThatDiffers() throws {
        let helpers = EvolveTests()
        let dir = temporaryFolder("evolve-other-config")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inputs = try helpers.makeInputs(dir)
        let c = try helpers.configuration("cmaes", inputs, budget: 8)
        #expect(try EvolveRunner(configuration: c, runDirectory: dir + "/run", tokenizer: helpers.tokenizer()).run(resume: false, stopAfter: 2) == nil)
        var d = c
        d.seed += 1
        do {
            _ = try EvolveRunner(configuration: d, runDirectory: dir + "/run", tokenizer: helpers.tokenizer()).run(resume: true)
            Issue.record("a resume with another seed was accepted")
        } catch {
            #expect("\(error)".contains(dir + "/run") && "\(error)".contains("seed: \(c.seed) in the run, \(d.seed) now"), "\(error)")
        }
    }
}
