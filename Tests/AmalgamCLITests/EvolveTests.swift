import AmalgamCheckpoint
import AmalgamCore
import AmalgamEval
import AmalgamMerge
import AmalgamModels
import AmalgamSearch
import AmalgamTestSupport
import AmalgamTokenizer
import Foundation
import Testing

/// `amalgam evolve` on tiny Llama models: two checkpoints (the tiny fixture and a seeded perturbation of
/// it) scored on a tiny multiple-choice task written here.
@Suite struct EvolveTests {
    static let tinyModel = fixturesDirectory + "/gguf/tiny-llama-hf"

    /// Writes model A (the fixture) and model B (each tensor scaled by seeded noise) and a task file.
    func makeInputs(_ dir: String) throws -> (a: String, b: String, task: String) {
        let a = dir + "/a", b = dir + "/b"
        let fm = FileManager.default
        try fm.copyItem(atPath: Self.tinyModel, toPath: a)
        try fm.createDirectory(atPath: b, withIntermediateDirectories: true)
        for name in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
            try fm.copyItem(atPath: a + "/" + name, toPath: b + "/" + name)
        }
        let source = try ModelFolder(path: a).weights
        var generator = SeededGenerator(seed: 11)
        var tensors: [(name: String, tensor: Tensor)] = []
        for info in source.tensorInfos {
            let values = try source.tensor(info.name).floats().map { $0 * (1 + 0.5 * generator.normal()) + 0.02 * generator.normal() }
            tensors.append((info.name, Tensor(values, shape: info.shape)))
        }
        try SafetensorsWriter.save(tensors, to: b + "/model.safetensors")
        var lines = [#"{"task": "tiny-mc", "kind": "multiple_choice"}"#]
        let words = ["red", "blue", "green", "cat", "dog", "sun", "moon", "tree", "stone", "river"]
        for i in 0..<14 {
            let split = i < 10 ? "train" : "test"
            let choices = (0..<3).map { words[(i * 3 + $0 * 7) % words.count] }
            lines.append(#"{"id": "q\#(i)", "split": "\#(split)", "context": "the \#(words[i % words.count]) is", "choices": ["\#(choices[0])", "\#(choices[1])", "\#(choices[2])"], "gold": \#(i % 3)}"#)
        }
        let task = dir + "/tiny-mc.jsonl"
        try lines.joined(separator: "\n").write(toFile: task, atomically: true, encoding: .utf8)
        return (a, b, task)
    }

    /// Writes an evolve config of the command tests to `path` (the two tiny models, 8 training and 2 test
    /// examples of the tiny task; `extra`: the method's settings and any other keys), and returns `path`.
    @discardableResult
    func writeConfig(_ path: String, _ inputs: (a: String, b: String, task: String), method: String, budget: Int, seed: Int,
                     extra: String) throws -> String {
        try """
            method: \(method)
            models: [\(inputs.a), \(inputs.b)]
            tasks:
              - path: \(inputs.task)
                train_examples: 8
                test_examples: 2
            budget: \(budget)
            seed: \(seed)

            """.appending(extra).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The small CMA-ES config of the command tests (4 candidates a generation, linear, f32), written to `path`.
    @discardableResult
    func writeCMAESConfig(_ path: String, _ inputs: (a: String, b: String, task: String), budget: Int, seed: Int,
                          extra: String = "") throws -> String {
        try writeConfig(path, inputs, method: "cmaes", budget: budget, seed: seed,
                        extra: "cmaes: {merge_method: linear, population: 4, layer_granularity: 1, dtype: float32}\n" + extra)
    }

    func configuration(_ method: String, _ inputs: (a: String, b: String, task: String), extra: String = "", budget: Int) throws -> EvolveConfiguration {
        let yaml = """
            method: \(method)
            models: [\(inputs.a), \(inputs.b)]
            tasks:
              - path: \(inputs.task)
                weight: 1
                train_examples: 8
            budget: \(budget)
            seed: 5
            batch_size: 4
            m2n2:
              archive_size: 3
            cmaes:
              merge_method: linear
              population: 4
              layer_granularity: 1
            \(extra)
            """
        return try EvolveConfiguration(yaml: yaml, path: inputs.task + ".yml")
    }

    func tokenizer() throws -> Tokenizer { try Tokenizer(contentsOf: Self.tinyModel) }

    /// Every row of a table of the run's database, as text.
    func rows(_ dir: String, kind: String, _ sql: String) throws -> [String] {
        let folder = try RunFolder.open(path: dir, kind: kind, durability: .process, claim: false)
        let s = try folder.database.statement(sql)
        let columns = Int32(sql.components(separatedBy: " FROM ")[0].split(separator: ",").count)
        var out: [String] = []
        while try s.step() {
            var cells: [String] = []
            for i in 0..<columns {
                cells.append(s.isNull(i) ? "null" : (s.text(i) ?? ""))
            }
            out.append(cells.joined(separator: "|"))
        }
        return out
    }

    /// The message of the error `body` throws, or nil.
    func failure(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch { return "\(error)" }
    }

    @Test func unknownAndMissingKeysAreErrorsNamingTheKey() throws {
        let dir = temporaryFolder("evolve-keys")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inputs = try makeInputs(dir)
        let unknown = try #require(failure { _ = try configuration("m2n2", inputs, extra: "archive_sise: 4", budget: 3) })
        #expect(unknown.contains("`archive_sise`") && unknown.contains("accepted here: method, models"), "\(unknown)")
        let nested = try #require(failure {
            _ = try EvolveConfiguration(yaml: "method: m2n2\nmodels: [\(inputs.a), \(inputs.b)]\ntasks: [\(inputs.task)]\nm2n2: {archive: 3}\nbudget: 2", path: "x.yml")
        })
        #expect(nested.contains("`m2n2.archive`") && nested.contains("archive_size"), "\(nested)")
        let missing = try #require(failure {
            _ = try EvolveConfiguration(yaml: "method: cmaes\nmodels: [\(inputs.a), \(inputs.b)]\ntasks: [\(inputs.task)]\nbudget: 8", path: "x.yml")
        })
        #expect(missing.contains("cmaes.merge_method"), "\(missing)")
        let c = try configuration("m2n2", inputs, budget: 3)
        #expect(c.models == [inputs.a, inputs.b] && c.tasks[0].trainExamples == 8 && c.m2n2.archiveSize == 3 && c.cmaes.population == 4)
    }

    @Test func m2n2StoppedAndResumedEqualsUninterruptedAndExportsTheBestMember() throws {
        let dir = temporaryFolder("evolve-m2n2")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inputs = try makeInputs(dir)
        var c = try configuration("m2n2", inputs, budget: 6)
        c.output = dir + "/best"
        let whole = try EvolveRunner(configuration: c, runDirectory: dir + "/whole", tokenizer: tokenizer()).run(resume: false)
        let result = try #require(whole)
        #expect(result.passes == 6 && result.seedPasses == 2)

        var d = c
        d.output = dir + "/best2"
        let first = try EvolveRunner(configuration: d, runDirectory: dir + "/split", tokenizer: tokenizer()).run(resume: false, stopAfter: 4)
        #expect(first == nil)
        let second = try EvolveRunner(configuration: d, runDirectory: dir + "/split", tokenizer: tokenizer()).run(resume: true, stopAfter: 1)
        #expect(second == nil)
        let resumed = try #require(try EvolveRunner(configuration: d, runDirectory: dir + "/split", tokenizer: tokenizer()).run(resume: true))
        #expect(resumed.best == result.best && resumed.trainFitness == result.trainFitness && resumed.testScores == result.testScores)
        #expect(try runFolderSnapshot(dir + "/whole") == runFolderSnapshot(dir + "/split"))

        // Members on disk: one file per slot, plus at most the last candidate.
        let genomes = try FileManager.default.contentsOfDirectory(atPath: dir + "/whole/genomes")
        #expect(genomes.filter { $0.hasSuffix(".f32") }.count <= 3 && genomes.count <= 4, "\(genomes)")

        // The export is a normal checkpoint holding the best member, scoring what the run recorded.
        let exported = try LlamaModel(folder: dir + "/best")
        let tasks = try EvolveTasks(entries: c.tasks, batchSize: 4)
        let scores = try tasks.trainScores(model: exported, tokenizer: tokenizer(), formatter: nil)
        #expect(abs(tasks.fitness(scores) - result.trainFitness) < 1e-6)
        let best = try MappedFile(path: dir + "/whole/genomes/" + result.best + ".f32")
        let weights = try ModelFolder(path: dir + "/best").weights
        var offset = 0
        let layout = try GenomeLayout(source: try ModelFolder(path: inputs.a).weights)
        for (t, start) in zip(layout.tensors, layout.offsets) {
            let values = try weights.tensor(t.name).floats()
            let flat = Array(best.bytes(offset: start * 4, count: t.elementCount * 4).bindMemory(to: Float.self))
            #expect(values == flat, "\(t.name)")
            offset += t.elementCount
        }
        #expect(offset == layout.parameterCount)
    }

    @Test func cmaesStoppedMidGenerationAndResumedEqualsUninterruptedAndItsRecipeMergesToTheModel() throws {
        let dir = temporaryFolder("evolve-cmaes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inputs = try makeInputs(dir)
        var c = try configuration("cmaes", inputs, budget: 8)
        c.output = dir + "/best"
        let result = try #require(try EvolveRunner(configuration: c, runDirectory: dir + "/whole", tokenizer: tokenizer()).run(resume: false))
        #expect(result.passes == 8)
        var d = c
        d.output = dir + "/best2"
        #expect(try EvolveRunner(configuration: d, runDirectory: dir + "/split", tokenizer: tokenizer()).run(resume: false, stopAfter: 6) == nil)
        let resumed = try #require(try EvolveRunner(configuration: d, runDirectory: dir + "/split", tokenizer: tokenizer()).run(resume: true))
        #expect(resumed.best == result.best && resumed.trainFitness == result.trainFitness && resumed.testScores == result.testScores)
        let table = "SELECT evaluation, recipe, metrics, fitness, hex(scores) FROM candidates ORDER BY evaluation"
        let all = try rows(dir + "/whole", kind: "evolve-cmaes", table)
        #expect(all.count == 8)
        #expect(try all == rows(dir + "/split", kind: "evolve-cmaes", table))

        // The best recipe, read back from its YAML file and merged as `amalgam merge` merges, is the model written.
        let recipe = try #require(result.recipe)
        let plan = try MergePlan(config: try MergeConfig(contentsOf: recipe))
        let merged = try MergedModel(plan: plan)
        let written = try ModelFolder(path: dir + "/best").weights
        for info in written.tensorInfos {
            #expect(try merged.checkpoint.tensor(info.name).byteArray == written.tensor(info.name).byteArray, "\(info.name)")
        }
        // Its training fitness is the recorded one.
        let tasks = try EvolveTasks(entries: c.tasks, batchSize: 4)
        let scores = try tasks.trainScores(model: try LlamaModel(folder: dir + "/best"), tokenizer: tokenizer(), formatter: nil)
        #expect(abs(tasks.fitness(scores) - result.trainFitness) < 1e-9)
    }

    /// `amalgam evolve --resume` SIGKILLed at seeded moments (start-up, then inside the run), resumed until
    /// done, ends with the run folder of an uninterrupted run (archive, genome bytes, lineage, state).
    @Test(.requires(amalgamProgram))
    func evolveM2N2KilledAtSeededMomentsAndResumedEndsAsAnUninterruptedRun() throws {
        let binary = try amalgamProgram.require()
        let dir = temporaryFolder("evolve-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inputs = try makeInputs(dir)
        let budget = 60
        let config = try writeConfig(dir + "/evolve.yml", inputs, method: "m2n2", budget: budget, seed: 3, extra: "m2n2: {archive_size: 3}\n")
        let killer = KillResumeTests()
        func arguments(_ run: String) -> [String] { ["evolve", config, "--run-dir", run, "--resume", "--quiet"] }
        #expect(try !killer.launch(binary, arguments(dir + "/whole"), folder: "", target: nil, polls: 0))
        let midRunKills = try killer.killAtSeededMoments(binary, arguments(dir + "/parts"), folder: dir + "/parts", total: budget, kills: 4,
                                                         seed: 2027, startPolls: 1200, polls: 40, committed: killer.committedPasses)
        #expect(midRunKills >= 2, "too few kills landed inside the run to prove anything")
        #expect(try !killer.launch(binary, arguments(dir + "/parts"), folder: "", target: nil, polls: 0))
        #expect(try runFolderSnapshot(dir + "/parts") == runFolderSnapshot(dir + "/whole"))
    }

    /// Candidates committed in a CMA-ES run folder, or nil when the folder does not exist yet.
    func committedCandidates(_ path: String) throws -> Int? {
        guard RunFolder.exists(at: path) else { return nil }
        let folder = try RunFolder.open(path: path, kind: EvolveRunner.cmaesKind, durability: .process, claim: false)
        let s = try folder.database.statement("SELECT count(*) FROM candidates")
        return try s.step() ? Int(s.int(0)) : nil
    }

    /// `amalgam evolve` with `method: cmaes` SIGKILLed at seeded moments (start-up, mid-generation, between
    /// generations), resumed until done: the same candidates (recipes, per-example scores), CMA-ES state,
    /// best recipe file and best model bytes as an uninterrupted run.
    @Test(.requires(amalgamProgram))
    func evolveCMAESKilledAtSeededMomentsAndResumedEndsAsAnUninterruptedRun() throws {
        let binary = try amalgamProgram.require()
        let dir = temporaryFolder("evolve-cmaes-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inputs = try makeInputs(dir)
        let budget = 24
        func config(_ name: String) throws -> String {
            try writeCMAESConfig(dir + "/\(name).yml", inputs, budget: budget, seed: 3, extra: "output: \(dir)/\(name)-best\n")
        }
        let killer = KillResumeTests()
        func arguments(_ name: String) throws -> [String] { ["evolve", try config(name), "--run-dir", dir + "/" + name, "--resume", "--quiet"] }
        #expect(try !killer.launch(binary, arguments("whole"), folder: "", target: nil, polls: 0))
        let midRunKills = try killer.killAtSeededMoments(binary, arguments("parts"), folder: dir + "/parts", total: budget, kills: 4,
                                                         seed: 2028, startPolls: 1200, polls: 40, committed: committedCandidates)
        #expect(midRunKills >= 2, "too few kills landed inside the run to prove anything")
        #expect(try !killer.launch(binary, arguments("parts"), folder: "", target: nil, polls: 0))
        let table = "SELECT evaluation, recipe, metrics, fitness, hex(scores) FROM candidates ORDER BY evaluation"
        let all = try rows(dir + "/whole", kind: EvolveRunner.cmaesKind, table)
        #expect(all.count == budget)
        #expect(try all == rows(dir + "/parts", kind: EvolveRunner.cmaesKind, table))
        let state = "SELECT value FROM meta WHERE key = 'search'"
        #expect(try rows(dir + "/whole", kind: EvolveRunner.cmaesKind, state) == rows(dir + "/parts", kind: EvolveRunner.cmaesKind, state))
        #expect(try String(contentsOfFile: dir + "/whole-best.yml", encoding: .utf8) == String(contentsOfFile: dir + "/parts-best.yml", encoding: .utf8))
        let a = try ModelFolder(path: dir + "/whole-best").weights, b = try ModelFolder(path: dir + "/parts-best").weights
        #expect(a.tensorInfos.map(\.name) == b.tensorInfos.map(\.name))
        for info in a.tensorInfos {
            #expect(try a.tensor(info.name).byteArray == b.tensor(info.name).byteArray, "\(info.name)")
        }
    }
}
