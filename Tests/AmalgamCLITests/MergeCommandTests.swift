import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam merge` as a user runs it: a plan with --dry-run, and a GGUF output.
@Suite(.requires(amalgamProgram))
struct MergeCommandTests {
    func config(_ dir: String) throws -> String {
        let g = fixturesDirectory + "/gguf"
        let path = dir + "/merge.yml"
        try """
            slices:
              - sources:
                  - model: \(g)/tiny-llama.gguf
                    layer_range: [0, 2]
                  - model: \(g)/tiny-llama-hf
                    layer_range: [0, 2]
            merge_method: slerp
            base_model: \(g)/tiny-llama-hf
            parameters:
              t: [0, 1]
            dtype: float32
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func mergeDryRunPrintsTheInputsAndParametersOfEveryTensorAndWritesNothing() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try runAmalgam(["merge", "--dry-run", try config(dir)])
        #expect(run.status == 0, "\(run.err)")
        #expect(run.out.contains("method: slerp"))
        #expect(run.out.contains("model.layers.1.self_attn.q_proj.weight"))
        #expect(run.out.contains("t: 1"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
    }

    @Test func mergeToGGUFWritesOneFileThatReadsBackAsTheSameModel() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/merged.gguf"
        let run = try runAmalgam(["merge", "--quiet", try config(dir), out, "--out-format", "gguf", "--out-type", "f32"])
        #expect(run.status == 0, "\(run.err)")
        let merged = try GGUFLlamaSource(path: out)
        let reference = try ModelFolder(path: fixturesDirectory + "/gguf/tiny-llama-hf")
        for info in reference.weights.tensorInfos {
            let a = try merged.tensor(info.name).floats()
            let b = try reference.weights.tensor(info.name).floats()
            #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) }, "\(info.name)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["merge.yml", "merged.gguf"])
    }

    @Test func mergeWithAMisspelledParameterFailsNamingItAndTheRightOne() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "merge_method: linear\nmodels:\n  - model: x\n    parameters: {wieght: 1}\n".write(toFile: dir + "/bad.yml", atomically: true, encoding: .utf8)
        let run = try runAmalgam(["merge", dir + "/bad.yml", dir + "/out"])
        #expect(run.status != 0)
        #expect(run.err.contains("wieght") && run.err.contains("weight"))
    }
}
