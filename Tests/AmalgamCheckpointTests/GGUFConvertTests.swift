import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

private let tinyGGUF = fixturesDirectory + "/gguf/tiny-llama.gguf"
private let tinyHF = fixturesDirectory + "/gguf/tiny-llama-hf"

private func readJSON(_ path: String) throws -> JSONValue {
    try JSONValue.parse([UInt8](FileManager.default.contents(atPath: path)!))
}

@Suite struct GGUFConvertTests {
    @Test func llamaSourceGivesTransformersTensorsUnderHFNames() throws {
        let source = try GGUFLlamaSource(path: tinyGGUF)
        let reference = try SafetensorsFile(path: tinyHF + "/model.safetensors")
        #expect(Set(source.tensorNames) == Set(reference.tensorNames))
        for name in reference.tensorNames {
            let ours = try source.tensor(name).floats(), theirs = try reference.tensor(name).floats()
            #expect(source.info(name)?.shape == reference.info(name)?.shape, "\(name)")
            let worst = zip(ours, theirs).map { abs($0 - $1) }.max() ?? 0
            #expect(worst == 0, "\(name): max |diff| \(worst)")
        }
    }

    @Test func convertsAGGUFIntoTheFolderTransformersMakesOfIt() throws {
        let out = temporaryFolder() + "/tiny"
        try GGUFLlamaConvert.toHuggingFace(gguf: tinyGGUF, output: out, dtype: .f32)
        let ours = try ModelFolder(path: out)
        let theirs = try ModelFolder(path: tinyHF)
        for name in theirs.weights.tensorNames {
            #expect(try ours.weights.tensor(name).floats() == theirs.weights.tensor(name).floats(), "\(name)")
        }
        let a = try ours.config.llama(), b = try theirs.config.llama()
        #expect(a == b)
        #expect(ours.config.raw["pad_token_id"] == theirs.config.raw["pad_token_id"])
        // tokenizer.json: the same pipeline, vocabulary, merges and added tokens as transformers builds.
        #expect(try readJSON(out + "/tokenizer.json") == readJSON(tinyHF + "/tokenizer.json"))
        let tc = try readJSON(out + "/tokenizer_config.json"), rc = try readJSON(tinyHF + "/tokenizer_config.json")
        for key in ["bos_token", "eos_token", "unk_token", "pad_token"] { #expect(tc[key] == rc[key], "\(key)") }
        let template = try String(contentsOfFile: tinyHF + "/chat_template.jinja", encoding: .utf8)
        #expect(tc["chat_template"]?.stringValue == template)
    }

    @Test func refusesToOverwriteUnlessAsked() throws {
        let out = temporaryFolder() + "/tiny"
        try GGUFLlamaConvert.toHuggingFace(gguf: tinyGGUF, output: out, dtype: .bf16)
        #expect(throws: CheckpointError.self) { try GGUFLlamaConvert.toHuggingFace(gguf: tinyGGUF, output: out, dtype: .bf16) }
        try GGUFLlamaConvert.toHuggingFace(gguf: tinyGGUF, output: out, dtype: .bf16, overwrite: true)
        #expect(try ModelFolder(path: out).weights.info("lm_head.weight")?.dtype == .bf16)
    }

    @Test func writesTheFolderBackAsGGUFByteForByteLikeGGUFPy() throws {
        let out = temporaryFolder() + "/tiny-q8_0.gguf"
        try GGUFLlamaConvert.toGGUF(folder: tinyHF, output: out, type: .q8_0, name: "tiny llama")
        let ours = [UInt8](FileManager.default.contents(atPath: out)!)
        let reference = [UInt8](FileManager.default.contents(atPath: fixturesDirectory + "/gguf/tiny-llama-q8_0.gguf")!)
        let a = try GGUFFile(path: out), b = try GGUFFile(path: fixturesDirectory + "/gguf/tiny-llama-q8_0.gguf")
        #expect(a.metadata.map(\.key) == b.metadata.map(\.key))
        for (k, v) in b.metadata { #expect(a[k] == v, "\(k)") }
        #expect(a.tensors == b.tensors)
        #expect(ours == reference)
    }

    @Test func roundTripsThroughGGUFAtF32() throws {
        let dir = temporaryFolder()
        try GGUFLlamaConvert.toGGUF(folder: tinyHF, output: dir + "/t.gguf", type: .f32)
        try GGUFLlamaConvert.toHuggingFace(gguf: dir + "/t.gguf", output: dir + "/back", dtype: .f32)
        let back = try ModelFolder(path: dir + "/back"), original = try ModelFolder(path: tinyHF)
        for name in original.weights.tensorNames {
            #expect(try back.weights.tensor(name).floats() == original.weights.tensor(name).floats(), "\(name)")
        }
    }

    @Test func quantizesQ8_0ExactlyAsGGUFPy() throws {
        let f = try GGUFFile(path: fixturesDirectory + "/gguf/quants.gguf")
        let source = try f.tensor("source").floats()
        let ours = source.withUnsafeBufferPointer { GGMLType.q8_0.quantize($0) }
        #expect(ours == [UInt8](f.rawBytes(f.entry("q8_0")!)))
        let bf16 = source.withUnsafeBufferPointer { GGMLType.bf16.quantize($0) }
        #expect(bf16 == [UInt8](f.rawBytes(f.entry("bf16")!)))
    }

    @Test func writerKeepsEveryValueType() throws {
        let path = temporaryFolder() + "/values.gguf"
        let metadata: [(key: String, value: GGUFValue)] = [
            ("a.u8", .uint8(7)), ("a.i8", .int8(-7)), ("a.u16", .uint16(65535)), ("a.i16", .int16(-2)),
            ("a.u32", .uint32(1 << 31)), ("a.i32", .int32(-5)), ("a.u64", .uint64(.max)), ("a.i64", .int64(.min)),
            ("a.f32", .float32(-0.5)), ("a.f64", .float64(1e300)), ("a.bool", .bool(false)), ("a.s", .string("ünï")),
            ("a.nested", .array(.array, [.array(.string, [.string("x")]), .array(.string, [])])),
        ]
        let values: [Float] = (0..<64).map { Float($0) / 7 }
        try GGUFWriter(path: path).write(metadata: metadata, tensors: [
            GGUFWriter.Entry(name: "t", type: .f16, ne: [32, 2]) { values.withUnsafeBufferPointer { GGMLType.f16.quantize($0) } },
        ])
        let f = try GGUFFile(path: path)
        #expect(f.metadata.map(\.key) == metadata.map(\.key))
        for (k, v) in metadata { #expect(f[k] == v, "\(k)") }
        #expect(try f.tensor("t").floats() == values.map { Float(Float16($0)) })
        #expect(f.info("t")?.shape == [2, 32])
    }

    @Test func inspectSummarisesAGGUF() throws {
        let s = try CheckpointSummary(ggufPath: tinyGGUF)
        #expect(s.format == .gguf)
        #expect(s.architecture == "llama")
        #expect(s.layerCount == 2)
        #expect(Dictionary(uniqueKeysWithValues: s.dtypeCounts.map { ($0.name, $0.count) }) == ["F32": 13, "F16": 1, "Q8_0": 3, "Q4_0": 2, "Q5_1": 2])
        #expect(s.facts.contains { $0.key == "attention heads" && $0.value == "4" })
    }

    @Test func rejectsANonLlamaGGUFWithAnExplanation() {
        #expect(throws: CheckpointError.self) { _ = try GGUFLlamaSource(path: fixturesDirectory + "/gguf/quants.gguf") }
    }
}

@Suite struct GGUFLlamaNamesTests {
    @Test func mapsNamesBothWays() {
        #expect(GGUFLlamaNames.hfName("blk.12.attn_q.weight") == "model.layers.12.self_attn.q_proj.weight")
        #expect(GGUFLlamaNames.hfName("blk.0.ffn_norm.weight") == "model.layers.0.post_attention_layernorm.weight")
        #expect(GGUFLlamaNames.hfName("output.weight") == "lm_head.weight")
        #expect(GGUFLlamaNames.hfName("blk.x.attn_q.weight") == nil)
        for g in ["token_embd.weight", "output_norm.weight", "blk.3.attn_k.weight", "blk.3.attn_v.weight",
                  "blk.3.attn_output.weight", "blk.3.ffn_gate.weight", "blk.3.ffn_up.weight", "blk.3.ffn_down.weight",
                  "blk.3.attn_norm.weight"] {
            #expect(GGUFLlamaNames.hfName(g).flatMap(GGUFLlamaNames.ggufName) == g)
        }
    }

    @Test func permutationMatchesLlamaCppAndUndoesItself() {
        // 2 heads of 4 rows, 1 column: llama.cpp stores HF rows [0, 2, 1, 3] of each head.
        var rows: [Float] = [0, 1, 2, 3, 4, 5, 6, 7]
        rows.withUnsafeMutableBufferPointer { GGUFLlamaNames.permuteRows($0, rows: 8, heads: 2, toHF: false) }
        #expect(rows == [0, 2, 1, 3, 4, 6, 5, 7])
        rows.withUnsafeMutableBufferPointer { GGUFLlamaNames.permuteRows($0, rows: 8, heads: 2, toHF: true) }
        #expect(rows == [0, 1, 2, 3, 4, 5, 6, 7])
    }
}
