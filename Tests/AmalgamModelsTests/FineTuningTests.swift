import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import AmalgamTestSupport
import Foundation
import Testing

@Suite("Fine-tuning runs resume bit for bit")
struct FineTuningTests {
    func run(_ dir: String) throws -> FineTuning {
        let model = try LlamaModel(folder: modelFixture("llama"))
        var g = SeededGenerator(seed: 5)
        let docs = (0..<12).map { _ in (0..<(5 + g.integer(below: 9))).map { _ in 3 + g.integer(below: 60) } }
        let data = try PackedSequences(documents: docs, eos: 2, length: 8, source: "test")
        var settings = FineTuneSettings()
        settings.learningRate = 1e-2
        settings.warmupSteps = 2
        settings.steps = 8
        settings.batchTokens = 24
        settings.microBatchTokens = 16
        settings.optimizer = AdamWSettings(weightDecay: 0.1, clipNorm: 1)
        settings.seed = 3
        return try FineTuning(model: model, data: data, settings: settings)
    }

    @Test("8 steps straight and 4 + resume + 4 write byte-identical models, and the loss falls")
    func resumeIsExact() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amalgam-ft-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = try ModelSource.open(modelFixture("llama"))

        let straight = try run(dir)
        var losses: [Double] = []
        while !straight.isFinished { losses.append(try straight.trainStep().loss) }
        try straight.writeModel(to: dir + "/straight", from: folder, overwrite: false)
        #expect(losses.last! < losses.first!)

        let first = try run(dir)
        for _ in 0..<4 { _ = try first.trainStep() }
        try first.saveCheckpoint(to: dir + "/checkpoint")
        let second = try run(dir)
        try second.resume(from: dir + "/checkpoint")
        #expect(second.step == 4)
        while !second.isFinished { _ = try second.trainStep() }
        try second.writeModel(to: dir + "/resumed", from: folder, overwrite: false)

        let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/straight/model.safetensors"))
        let b = try Data(contentsOf: URL(fileURLWithPath: dir + "/resumed/model.safetensors"))
        let original = try Data(contentsOf: URL(fileURLWithPath: modelFixture("llama") + "/model.safetensors"))
        #expect(a == b)
        #expect(a != original)
        #expect(FileManager.default.fileExists(atPath: dir + "/resumed/config.json"))
    }
}
