import AmalgamCheckpoint
import AmalgamCore
import AmalgamLab
import AmalgamModels
import AmalgamSearch
import AmalgamTestSupport
import Foundation
import Testing

/// `history.json` of the old DAM layout.
private struct LegacyDAMHistory: Encodable { var step: Int; var loss: [DAMLoss]; var gradientNorms: [Double]; var passes: DAMPassCount }

/// Writes `trainer`'s state as a DAM run folder of the layout before the run store (amalgam up to main at
/// d184d06): configuration.json, state.safetensors, optimiser.safetensors (AdamW moments at the trainer's
/// step; zeros, as only their step and names are checked) and history.json. `optimiserStep` lets the
/// optimiser file lag, as a kill between the old code's renames left it.
func writeLegacyDAMRunFolder<F: DAMFamily>(_ folder: String, trainer: DAMTrainer<F>, optimiserStep: Int? = nil) throws {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(trainer.configuration).write(to: URL(fileURLWithPath: folder + "/configuration.json"))
    try SafetensorsWriter.save([("coefficients", Tensor(trainer.coefficients, shape: [trainer.coefficients.count]))],
                               to: folder + "/state.safetensors", metadata: [("format", "amalgam-dam"), ("step", String(trainer.step))])
    try encoder.encode(LegacyDAMHistory(step: trainer.step, loss: trainer.history, gradientNorms: trainer.gradientNorms, passes: trainer.passes))
        .write(to: URL(fileURLWithPath: folder + "/history.json"))
    let layout = trainer.layout, c = trainer.configuration
    var tensors: [TrainableTensor] = []
    for (l, layer) in layout.layers.enumerated() {
        for k in 0..<layout.sourceCount {
            tensors.append(TrainableTensor(name: "\(layer.name).weight_coefficients.\(k)", shape: [layout.weightRange(layer: l, model: k).count],
                                           values: [Float](repeating: 0, count: layout.weightRange(layer: l, model: k).count)))
        }
        if layer.hasBias {
            for k in 0..<layout.sourceCount { tensors.append(TrainableTensor(name: "\(layer.name).bias_coefficients.\(k)", shape: [1], values: [0])) }
        }
    }
    let adamw = AdamW(parameters: tensors, settings: AdamWSettings(
        beta1: c.beta1, beta2: c.beta2, epsilon: c.epsilon, weightDecay: c.weightDecay, clipNorm: c.gradientClip,
        mofoFraction: c.optimiser == .mofo ? c.mofoFraction : nil))
    for _ in 0..<(optimiserStep ?? trainer.step) { _ = adamw.step(learningRate: 0) }
    try adamw.save(to: folder + "/optimiser.safetensors")
}

/// The run store (`RunStore`, SQLite behind `RunFolder`): what a resume sees after commits, failed
/// commits, another configuration, and folders of older layouts.
@Suite struct RunStoreTests {
    func folder(_ name: String) -> String { temporaryFolder("run-store-" + name) }

    @Test func aResumeSeesTheLastCommittedStepWithItsRecordsAndBlobs() throws {
        let path = folder("commit")
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let store: any RunStore = try RunFolder.openOrCreate(path: path, kind: "test", durability: .process, resume: false)
            #expect(try store.latestStep() == nil)
            try store.commit(RunStep(number: 1, records: [.init(step: 1, json: "{\"loss\":2}")], blobs: ["a": [1, 2], "b": [3]]))
            try store.commit(RunStep(number: 3, records: [.init(step: 2, json: "{\"loss\":1.5}"), .init(step: 3, json: "{\"loss\":1}")],
                                     blobs: ["a": [4, 5, 6]], outputs: ["model": "/x/model"]))
        }
        let store: any RunStore = try RunFolder.openOrCreate(path: path, kind: "test", durability: .process, resume: true)
        #expect(try store.latestStep() == 3)
        #expect(try store.records(in: 1...3).map(\.json) == ["{\"loss\":2}", "{\"loss\":1.5}", "{\"loss\":1}"])
        #expect(try store.blob("a") == [4, 5, 6])
        #expect(try store.blob("b") == [3])
        #expect(try store.blob("c") == nil)
        #expect(try store.outputs() == ["model": "/x/model"])
    }

    @Test func aCommitThatFailsHalfwayLeavesThePreviousStepWhole() throws {
        let path = folder("rollback")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try RunFolder.openOrCreate(path: path, kind: "test", durability: .process, resume: false)
        try store.commit(RunStep(number: 1, records: [.init(step: 1, json: "1")], blobs: ["optimiser": [1], "state": [1]]))
        // The second blob's insert fails after the first one's went in: nothing of step 2 may remain.
        try store.database.execute("""
            CREATE TRIGGER refuse BEFORE INSERT ON run_blobs WHEN NEW.name = 'state' AND NEW.bytes = x'02'
            BEGIN SELECT RAISE(ABORT, 'disk gone'); END
            """)
        #expect(throws: SearchError.self) {
            try store.commit(RunStep(number: 2, records: [.init(step: 2, json: "2")], blobs: ["optimiser": [2], "state": [2]]))
        }
        #expect(try store.latestStep() == 1)
        #expect(try store.blob("optimiser") == [1])
        #expect(try store.blob("state") == [1])
        #expect(try store.records(in: 1...2).map(\.step) == [1])
    }

    @Test func aResumeWithAnotherConfigurationIsRefusedNamingWhatDiffers() throws {
        let path = folder("config")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try RunFolder.openOrCreate(path: path, kind: "test", durability: .process, resume: false)
        try store.checkConfiguration(RunConfiguration([("lr", "0.01"), ("seed", "3")]))
        try store.checkConfiguration(RunConfiguration([("lr", "0.01"), ("seed", "3")]))
        do {
            try store.checkConfiguration(RunConfiguration([("lr", "0.02"), ("seed", "3"), ("steps", "9")]))
            Issue.record("another configuration was accepted")
        } catch {
            #expect(error.description.contains(path))
            #expect(error.description.contains("lr: 0.01 in the run, 0.02 now"))
            #expect(error.description.contains("steps: (absent) in the run, 9 now"))
            #expect(!error.description.contains("seed"))
        }
    }

    @Test func aConfigurationIsFlattenedToKeyPaths() throws {
        struct Settings: Encodable { var lr = 0.5; var m2n2 = ["archive_size": 3]; var models = ["a", "b"] }
        let c = try RunConfiguration(encoding: Settings())
        #expect(c.entries.map(\.key) == ["lr", "m2n2.archive_size", "models"])
        #expect(c.entries.map(\.value) == ["0.5", "3", "[\"a\",\"b\"]"])
        var other = Settings()
        other.m2n2["archive_size"] = 4
        #expect(try RunConfiguration(encoding: other).fingerprint != c.fingerprint)
    }

    /// A run folder of main at d184d06 (format 1: `meta` and the job's own tables, no store tables) is
    /// continued: it gains the store's tables and keeps its own.
    @Test func aRunFolderOfTheOlderFormatIsContinued() throws {
        let path = folder("format1")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try FileManager.default.createDirectory(atPath: path + "/genomes", withIntermediateDirectories: true)
        do {
            let db = try SQLiteDatabase(path: path + "/run.sqlite")
            try db.execute("""
                PRAGMA journal_mode=WAL;
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                INSERT INTO meta VALUES ('kind', 'evolve-cmaes'), ('format', '1'), ('search', '{}');
                CREATE TABLE candidates (evaluation INTEGER PRIMARY KEY, recipe TEXT NOT NULL);
                INSERT INTO candidates VALUES (0, 'merge_method: linear');
                """)
        }
        let looking = try RunFolder.open(path: path, kind: "evolve-cmaes", durability: .process, claim: false)
        #expect(try looking.meta("format") == "1", "a process that only looks changes nothing")
        let store = try RunFolder.openOrCreate(path: path, kind: "evolve-cmaes", durability: .process, resume: true)
        #expect(try store.meta("format") == String(RunFolder.formatVersion))
        #expect(try store.meta("search") == "{}")
        try store.commit(RunStep(number: 1, blobs: ["search": [7]]))
        #expect(try store.blob("search") == [7])
        let s = try store.database.statement("SELECT recipe FROM candidates")
        #expect(try s.step() && s.text(0) == "merge_method: linear")
    }

    @Test func aRunFolderOfANewerFormatIsRefusedSayingWhatToDo() throws {
        let path = folder("format9")
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try RunFolder.openOrCreate(path: path, kind: "test", durability: .process, resume: false)
        try RunFolder.open(path: path, kind: "test", durability: .process, claim: false).setMeta("format", "9")
        do {
            _ = try RunFolder.openOrCreate(path: path, kind: "test", durability: .process, resume: true)
            Issue.record("a newer folder was opened")
        } catch {
            #expect(error.description.contains(path) && error.description.contains("newer amalgam") && error.description.contains("new run"))
        }
    }

    /// The old DAM layout renamed its three files one by one; a kill between two renames left them at
    /// different steps. Such a folder is refused, naming it and what to do; a whole one is resumed.
    @Test func aDAMRunFolderOfTheOldLayoutResumesWhenWholeAndIsRefusedWhenTorn() throws {
        let pair = DigitsPairTests.pair
        var c = DAMConfiguration()
        c.steps = 4
        c.batchSize = 8
        let first = try DAMDigitsExperiment.dam(pair, configuration: c)
        try first.run(until: 2)

        let torn = folder("dam-torn")
        defer { try? FileManager.default.removeItem(atPath: torn) }
        try writeLegacyDAMRunFolder(torn, trainer: first, optimiserStep: 3)
        do {
            _ = try DAMRunFolder(path: torn, trainer: DAMDigitsExperiment.dam(pair, configuration: c), resume: true)
            Issue.record("a torn old folder was resumed")
        } catch {
            #expect("\(error)".contains(torn) && "\(error)".contains("older amalgam") && "\(error)".contains("start a new run"))
        }
        #expect(FileManager.default.fileExists(atPath: torn + "/state.safetensors"), "a refused folder is left as it was")

        let whole = folder("dam-whole")
        defer { try? FileManager.default.removeItem(atPath: whole) }
        try writeLegacyDAMRunFolder(whole, trainer: first)
        let second = try DAMDigitsExperiment.dam(pair, configuration: c)
        #expect(throws: DAMError.self) { try DAMRunFolder(path: whole, trainer: second, resume: false) }
        let run = try DAMRunFolder(path: whole, trainer: second, resume: true)
        #expect(second.step == 2 && second.coefficients == first.coefficients && second.history == first.history)
        #expect(!FileManager.default.fileExists(atPath: whole + "/state.safetensors"), "the old files are gone once taken in")
        try second.run(runFolder: run)
        #expect(try run.store.latestStep() == 4)
    }
}
