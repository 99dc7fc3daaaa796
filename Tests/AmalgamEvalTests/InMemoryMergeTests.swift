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
    /// A merge of MoE checkpoints (fixtures/moe-merge: TIES of two tiny Mixtral and Qwen3-MoE fine-tunes,
    /// per-expert inputs) is written with fused experts as mergekit writes them; the engine reads it, in
    /// memory (`amalgam eval CONFIG`) and on disk alike, and mergekit's own output gives the same logits.
    /// The per-expert option's merge is another model: its logits differ.
    @Test(arguments: ["mixtral", "qwen3-moe"])
    func aFusedMoEMergeRunsInTheEngine(_ family: String) throws {
        let folder = fixturesDirectory + "/moe-merge"
        func path(_ m: String) -> String { "\(folder)/models/\(family)-\(m)" }
        let yaml = """
            merge_method: ties
            dtype: float32
            base_model: \(path("base"))
            models:
              - model: \(path("base"))
              - model: \(path("ft1"))
                parameters: {weight: 1.0, density: 0.5}
              - model: \(path("ft2"))
                parameters: {weight: 0.6, density: 0.3}
            """
        let config = try MergeConfig(yaml: yaml, path: "\(family)-ties.yml")
        let plan = try MergePlan(config: config)
        let merged = try MergedModel(plan: plan, concurrentTensors: 2)
        let root = temporaryFolder("moe-merge-engine-\(family)")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try MergeExecutor(plan: plan).run(MergeOptions(outputPath: root + "/out", overwrite: true))
        #expect(try ModelFolder(path: root + "/out").weights.info("model.layers.0.mlp.experts.gate_up_proj") != nil)
        // mergekit's output (weights only) with the base's config.json.
        try FileManager.default.createDirectory(atPath: root + "/mergekit", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(folder)/expected/\(family)-ties/model.safetensors", toPath: root + "/mergekit/model.safetensors")
        try FileManager.default.copyItem(atPath: path("base") + "/config.json", toPath: root + "/mergekit/config.json")
        let perExpert = try MergePlan(config: config, moeExperts: .perExpert)
        try MergeExecutor(plan: perExpert).run(MergeOptions(outputPath: root + "/per-expert", overwrite: true))

        let ids = [1, 5, 9, 12, 30, 7, 3, 44, 2, 60]
        let batch = try TokenBatch(padded: [ids], mask: [ids.map { _ in 1 }])
        let inMemory = try LlamaModel(config: merged.config, weights: merged.checkpoint).logits(batch)
        let onDisk = try LlamaModel(folder: root + "/out").logits(batch)
        let mergekit = try LlamaModel(folder: root + "/mergekit").logits(batch)
        let split = try LlamaModel(folder: root + "/per-expert").logits(batch)
        #expect(inMemory.values == onDisk.values)
        let toMergekit = zip(onDisk.values, mergekit.values).map { abs($0 - $1) }.max()!
        let toPerExpert = zip(onDisk.values, split.values).map { abs($0 - $1) }.max()!
        #expect(toMergekit <= 1e-5, "\(family): logits of our merge and mergekit's differ by \(toMergekit)")
        #expect(toPerExpert > 1e-4, "\(family): the per-expert merge's logits are within \(toPerExpert) of the fused one's")
        print("moe-merge \(family) ties: max |logits(fused) − logits(mergekit)| = \(toMergekit), max |logits(fused) − logits(per-expert)| = \(toPerExpert)")
    }
}

