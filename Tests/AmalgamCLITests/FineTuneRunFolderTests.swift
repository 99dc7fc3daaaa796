import AmalgamCheckpoint
import AmalgamCore
import AmalgamEval
import AmalgamModels
import AmalgamSearch
import AmalgamTokenizer
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam finetune --run-dir`: the run folder's store, stopping and resuming, another configuration, and a
/// run folder of the layout before the store (a `checkpoint/` folder).
@Suite(.requires(amalgamProgram))
struct FineTuneRunFolderTests {
    let model = fixturesDirectory + "/gguf/tiny-llama-hf"
    let small = ["--seq-len", "16", "--batch-tokens", "32", "--micro-batch-tokens", "32", "--seed", "3", "--steps", "4"]

    func trainingText(in directory: String) throws -> String {
        let path = directory + "/train.txt"
        let lines = (0..<40).map { "Line \($0): the quick brown fox jumps over the lazy dog, then rests by the river." }
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func modelBytes(_ folder: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: folder + "/model.safetensors")) }

    @Test func aRunStoppedAndResumedWritesTheSameModelAsAnUninterruptedOne() throws {
        let work = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let text = try trainingText(in: work)
        let straight = try runAmalgam(["finetune", model, text, work + "/straight"] + small)
        #expect(straight.status == 0, "\(straight.err)")

        let first = try runAmalgam(["finetune", model, text, work + "/parts", "--run-dir", work + "/run", "--checkpoint-every", "1", "--stop-at", "2"] + small)
        #expect(first.status == 0, "\(first.err)")
        #expect(FileManager.default.fileExists(atPath: work + "/run/run.sqlite"))
        let store = try RunFolder.open(path: work + "/run", kind: "finetune", durability: .process, claim: false)
        #expect(try store.latestStep() == 2)

        let again = try runAmalgam(["finetune", model, text, work + "/parts", "--run-dir", work + "/run"] + small)
        #expect(again.status != 0 && again.err.contains(work + "/run") && again.err.contains("--resume"), "\(again.err)")

        let other = try runAmalgam(["finetune", model, text, work + "/parts", "--run-dir", work + "/run", "--resume", "--lr", "0.001"] + small)
        #expect(other.status != 0 && other.err.contains("another configuration") && other.err.contains("settings:"), "\(other.err)")

        let second = try runAmalgam(["finetune", model, text, work + "/parts", "--run-dir", work + "/run", "--resume"] + small)
        #expect(second.status == 0, "\(second.err)")
        #expect(second.err.contains("resumed at step 2"), "\(second.err)")
        #expect(try modelBytes(work + "/parts") == modelBytes(work + "/straight"))
    }

    /// A run folder of amalgam up to main at d184d06 holds `checkpoint/` (trainable.safetensors,
    /// optimizer.safetensors, state.json): `--resume` takes it in and ends as an uninterrupted run.
    @Test func aRunFolderOfTheOlderLayoutResumesAndEndsAsAnUninterruptedRun() throws {
        let work = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let text = try trainingText(in: work)
        // The old layout's first steps are trained in this process: the command runs with its BLAS kernels
        // (on an AVX-512 machine it would otherwise relaunch itself with others, which round differently).
        let blas = ["OPENBLAS_CORETYPE": OpenBLASCoreType.current]
        let straight = try runAmalgam(["finetune", model, text, work + "/straight"] + small, environment: blas)
        #expect(straight.status == 0, "\(straight.err)")

        // The old layout, as the old command wrote it after 2 of 4 steps.
        let source = try ModelSource.open(model)
        let lm = try LlamaModel(source: source)
        let tokenizer = try LanguageModel.tokenizer(of: source)
        let eos = try #require(lm.eosTokenIds.first ?? tokenizer.eosTokenId)
        let docs = try TrainingText.documents(at: text)
        let packed = try PackedSequences(documents: tokenizer.encodeBatch(docs), eos: eos, length: 16, source: text)
        var settings = FineTuneSettings()
        settings.steps = 4
        settings.batchTokens = 32
        settings.microBatchTokens = 32
        settings.seed = 3
        let old = try FineTuning(model: lm, data: packed, settings: settings)
        for _ in 0..<2 { _ = try old.trainStep() }
        try old.saveCheckpoint(to: work + "/run/checkpoint")

        let resumed = try runAmalgam(["finetune", model, text, work + "/parts", "--run-dir", work + "/run", "--resume"] + small,
                                     environment: blas)
        #expect(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.err.contains("resumed at step 2"), "\(resumed.err)")
        #expect(!FileManager.default.fileExists(atPath: work + "/run/checkpoint"), "the old checkpoint is removed once taken in")
        #expect(try modelBytes(work + "/parts") == modelBytes(work + "/straight"))
    }
}
