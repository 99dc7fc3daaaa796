import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// data/SmolLM2-135M-Instruct.Q4_1.gguf (scripts/fetch-data.sh; not committed).
private let smolLM2 = repositoryRoot + "/data/SmolLM2-135M-Instruct.Q4_1.gguf"

private func mergeConfig(_ dir: String, base: String) throws -> String {
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
        base_model: \(base)
        parameters:
          t: 0.5
        dtype: float32
        """.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// What `amalgam merge --out-format gguf` and `amalgam convert` write as `tokenizer.ggml.pre`, and how they
/// treat a GGUF in a type Amalgam cannot decode.
@Suite(.requires(amalgamProgram))
struct GGUFOutputCommandTests {
    @Test func aMergeKeepsThePreTokenizerOfItsGGUFTokenizerDonor() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/merged.gguf"
        let run = try runAmalgam(["merge", "--quiet", try mergeConfig(dir, base: fixturesDirectory + "/gguf/tiny-llama.gguf"), out,
                                  "--out-format", "gguf", "--out-type", "f32"])
        #expect(run.status == 0, "\(run.err)")
        #expect(try GGUFFile(path: fixturesDirectory + "/gguf/tiny-llama.gguf")["tokenizer.ggml.pre"]?.stringValue == "smollm")
        #expect(try GGUFFile(path: out)["tokenizer.ggml.pre"]?.stringValue == "smollm")
        #expect(!run.err.contains("warning"), "\(run.err)")
    }

    @Test func aMergeWithAFolderDonorWarnsWhenLlamaCppKnowsNoSuchTokenizer() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/merged.gguf"
        let run = try runAmalgam(["merge", "--quiet", try mergeConfig(dir, base: fixturesDirectory + "/gguf/tiny-llama-hf"), out,
                                  "--out-format", "gguf", "--out-type", "f32"])
        #expect(run.status == 0, "\(run.err)")
        #expect(try GGUFFile(path: out)["tokenizer.ggml.pre"]?.stringValue == "default")
        #expect(run.err.contains("warning: the pre-tokenizer of"), "\(run.err)")
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: smolLM2), "data/ has no SmolLM2 GGUF (scripts/fetch-data.sh)"))
    func smolLM2ComesBackFromAFolderAsSmollm() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let toFolder = try runAmalgam(["convert", smolLM2, dir + "/hf", "--dtype", "bf16"])
        #expect(toFolder.status == 0, "\(toFolder.err)")
        let back = try runAmalgam(["convert", dir + "/hf", dir + "/back.gguf", "--type", "f16"])
        #expect(back.status == 0, "\(back.err)")
        #expect(!back.err.contains("warning"), "\(back.err)")
        let original = try GGUFFile(path: smolLM2), written = try GGUFFile(path: dir + "/back.gguf")
        #expect(written["tokenizer.ggml.pre"]?.stringValue == original["tokenizer.ggml.pre"]?.stringValue)
        #expect(written["tokenizer.ggml.pre"]?.stringValue == "smollm")
        #expect(written["tokenizer.ggml.tokens"] == original["tokenizer.ggml.tokens"])
        #expect(written["tokenizer.ggml.token_type"] == original["tokenizer.ggml.token_type"])
        #expect(written["tokenizer.ggml.merges"] == original["tokenizer.ggml.merges"])
    }

    @Test func inspectReadsAnIQFileAndConvertRefusesItNamingTypeTensorAndFile() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/iq.gguf"
        let metadata: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string("llama")), ("llama.block_count", .uint32(0)),
            ("llama.embedding_length", .uint32(256)), ("llama.feed_forward_length", .uint32(256)),
            ("llama.attention.head_count", .uint32(1)),
        ]
        let embedding = GGUFWriter.Entry(name: "token_embd.weight", type: .iq4_XS, ne: [256, 2]) { () throws(CheckpointError) in
            [UInt8](repeating: 0x11, count: GGMLType.iq4_XS.byteCount(elements: 512))
        }
        try GGUFWriter(path: path).write(metadata: metadata, tensors: [embedding])
        let inspect = try runAmalgam(["inspect", path])
        #expect(inspect.status == 0, "\(inspect.err)")
        #expect(inspect.out.contains("IQ4_XS"), "\(inspect.out)")
        let convert = try runAmalgam(["convert", path, dir + "/out"])
        #expect(convert.status != 0)
        for part in ["IQ4_XS", "token_embd.weight", path] { #expect(convert.err.contains(part), "\(part): \(convert.err)") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
    }
}
