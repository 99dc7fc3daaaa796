import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamModels
import AmalgamTestSupport
import Foundation
import Testing

/// A merge config evaluated without writing it: the in-memory tensors are those `amalgam merge` writes.
@Suite struct InMemoryMergeTests {
    func config(_ name: String) throws -> MergeConfig {
        let path = fixturesDirectory + "/merge-pipeline/configs/\(name).yml"
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "fixtures/", with: fixturesDirectory + "/")
        return try MergeConfig(yaml: text, path: path)
    }

    @Test(arguments: ["linear_precedence", "base_vocab_ties", "stack_passthrough"])
    func mergedInMemoryEqualsMergedOnDisk(_ name: String) throws {
        let plan = try MergePlan(config: config(name), seed: 3)
        let merged = try MergedModel(plan: plan, concurrentTensors: 2)
        let out = temporaryFolder("merge") + "/out"
        try MergeExecutor(plan: plan).run(MergeOptions(outputPath: out, overwrite: true, concurrentTensors: 1))
        let disk = try ModelFolder(path: out)
        #expect(merged.checkpoint.tensorInfos.map(\.name).sorted() == disk.weights.tensorInfos.map(\.name).sorted())
        for info in disk.weights.tensorInfos {
            let a = try merged.checkpoint.tensor(info.name), b = try disk.weights.tensor(info.name)
            #expect(a.dtype == b.dtype && a.shape == b.shape, "\(info.name)")
            #expect(a.byteArray == b.byteArray, "\(info.name) bytes")
        }
        #expect(merged.config.jsonText() == (try String(contentsOfFile: out + "/config.json", encoding: .utf8)))
        #expect(merged.companionTexts["tokenizer.json"] == (try String(contentsOfFile: out + "/tokenizer.json", encoding: .utf8)))
    }

    @Test func theInMemoryModelScoresAsTheWrittenOne() throws {
        let plan = try MergePlan(config: config("linear_precedence"))
        let merged = try MergedModel(plan: plan)
        let out = temporaryFolder("merge") + "/out"
        try MergeExecutor(plan: plan).run(MergeOptions(outputPath: out, overwrite: true))
        let inMemory = try LlamaModel(config: merged.config, weights: merged.checkpoint)
        let onDisk = try LlamaModel(folder: out)
        let sequences = [[1, 5, 9, 12, 30, 7, 3], [1, 22, 8]]
        #expect(try inMemory.score(sequences) == onDisk.score(sequences))
    }
}
