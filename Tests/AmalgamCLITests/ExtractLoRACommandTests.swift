import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam extract-lora` as a user runs it, and the adapter it writes given back to `amalgam merge` as
/// `base+adapter`.
@Suite(.requires(amalgamProgram))
struct ExtractLoRACommandTests {
    let extract = fixturesDirectory + "/lora/extract"

    @Test func extractLoRAWritesAnAdapterThatMergesBackCloseToTheFineTune() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try runAmalgam(["extract-lora", extract + "/base-bf16", extract + "/ft-bf16", dir + "/adapter", "--max-rank", "64"])
        #expect(run.status == 0, "\(run.err)")
        #expect(run.out.contains("model.layers.0.self_attn.q_proj\t64\t"), "\(run.out)")
        #expect(run.err.contains("extracted 14 modules (r = 64"), "\(run.err)")
        #expect(FileManager.default.fileExists(atPath: dir + "/adapter/adapter_config.json"))

        // Full rank (64 = every singular value of the 64-wide matrices): merged back, the fine-tune within
        // the bf16 rounding of the factors and of the sum.
        try """
            merge_method: passthrough
            dtype: float32
            models:
            - model: \(extract)/base-bf16+\(dir)/adapter
            """.write(toFile: dir + "/back.yml", atomically: true, encoding: .utf8)
        let merge = try runAmalgam(["merge", dir + "/back.yml", dir + "/back", "--quiet"])
        #expect(merge.status == 0, "\(merge.err)")
        let back = try ModelFolder.openWeights(folder: dir + "/back")
        let ft = try ModelSource.open(extract + "/ft-bf16").tensors
        let base = try ModelSource.open(extract + "/base-bf16").tensors
        for name in ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight"] {
            let x = try back.tensor(name).floats(), y = try ft.tensor(name).floats(), b = try base.tensor(name).floats()
            var num = 0.0, den = 0.0
            for i in x.indices {
                num += Double(x[i] - y[i]) * Double(x[i] - y[i])
                den += Double(y[i] - b[i]) * Double(y[i] - b[i])
            }
            #expect((num / den).squareRoot() < 0.01, "\(name): relative error \((num / den).squareRoot())")
        }
        // Whole modules (norms, embeddings) come back exactly.
        #expect(try back.tensor("model.norm.weight").floats() == ft.tensor("model.norm.weight").floats())
    }

    @Test func extractLoRAHelpShowsAnExample() throws {
        let run = try runAmalgam(["extract-lora", "--help"])
        #expect(run.status == 0)
        #expect(run.out.contains("amalgam extract-lora models/base models/finetuned my-adapter --max-rank 32"))
        #expect(run.out.contains("--sv-epsilon"))
    }

    @Test func extractLoRAIntoAnExistingFolderIsRefusedWithoutOverwrite() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/adapter", withIntermediateDirectories: true)
        let run = try runAmalgam(["extract-lora", extract + "/base-bf16", extract + "/ft-bf16", dir + "/adapter", "--max-rank", "4", "--quiet"])
        #expect(run.status != 0)
        #expect(run.err.contains(dir + "/adapter"), "\(run.err)")
    }
}
