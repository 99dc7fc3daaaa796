import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

private let tinyHF = fixturesDirectory + "/gguf/tiny-llama-hf"

/// A tiny hand-made Llama GGUF whose embedding is stored as `type` (random bytes: only the type matters).
private func ggufWithTensor(of type: GGMLType, in folder: String) throws -> String {
    let path = folder + "/tiny-\(type.name).gguf"
    let elements = type.blockLayout.elements
    let metadata: [(key: String, value: GGUFValue)] = [
        ("general.architecture", .string("llama")),
        ("llama.block_count", .uint32(0)),
        ("llama.embedding_length", .uint32(UInt32(elements))),
        ("llama.feed_forward_length", .uint32(UInt32(elements))),
        ("llama.attention.head_count", .uint32(1)),
    ]
    var generator = SeededGenerator(seed: 19)
    let embedding = GGUFWriter.Entry(name: "token_embd.weight", type: type, ne: [elements, 2]) { () throws(CheckpointError) in
        (0..<type.byteCount(elements: 2 * elements)).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
    let norm = GGUFWriter.Entry(name: "output_norm.weight", type: .f32, ne: [elements]) { () throws(CheckpointError) in
        [UInt8](repeating: 0, count: 4 * elements)
    }
    try GGUFWriter(path: path).write(metadata: metadata, tensors: [embedding, norm])
    return path
}

/// `tokenizer.ggml.pre` and the vocabulary as llama.cpp's loader needs them, and types Amalgam cannot decode.
@Suite struct GGUFPreTokenizerTests {
    @Test func writesThePreTokenizerItIsGiven() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try GGUFLlamaConvert.toGGUF(folder: tinyHF, output: dir + "/t.gguf", type: .f32, preTokenizer: "smollm")
        #expect(try GGUFFile(path: dir + "/t.gguf")["tokenizer.ggml.pre"]?.stringValue == "smollm")
        try GGUFLlamaConvert.toGGUF(folder: tinyHF, output: dir + "/d.gguf", type: .f32)
        #expect(try GGUFFile(path: dir + "/d.gguf")["tokenizer.ggml.pre"]?.stringValue == "default")
    }

    @Test func padsTheTokenListToTheEmbeddingRowsWithUnusedTokens() throws {
        let tokenizer = try JSONValue.parse(try fileBytes(tinyHF + "/tokenizer.json"))
        let count = try ModelFolder(path: tinyHF).config.llama().vocabSize
        let metadata = try GGUFLlamaTokenizer.metadata(tokenizer: tokenizer, tokenizerConfig: JSONObject(), chatTemplate: nil, pre: "default",
                                                       vocabularySize: count + 3, bosTokenID: nil, eosTokenID: nil, path: tinyHF)
        let value = { (key: String) in metadata.first { $0.key == key }?.value }
        let tokens = try #require(value("tokenizer.ggml.tokens")?.arrayValue)
        let types = try #require(value("tokenizer.ggml.token_type")?.arrayValue)
        #expect(tokens.count == count + 3 && types.count == count + 3)
        #expect(tokens.last?.stringValue == "[PAD\(count + 2)]")
        // llama.cpp's converter marks the padding UNUSED (5); the real tokens keep their types.
        #expect(types.suffix(3).allSatisfy { $0.intValue == 5 })
        #expect(types.prefix(count).allSatisfy { $0.intValue != 5 })
    }

    @Test func addsBOSWhenThePostProcessorDoesAndTheConfigIsSilent() throws {
        var tokenizer = try JSONValue.parse(try fileBytes(tinyHF + "/tokenizer.json")).objectValue!
        let bosFirst = JSONValue.object(JSONObject([("single", .array([
            .object(JSONObject([("SpecialToken", .object(JSONObject([("id", .string("<|im_start|>")), ("type_id", .int(0))])))])),
            .object(JSONObject([("Sequence", .object(JSONObject([("id", .string("A")), ("type_id", .int(0))])))])),
        ]))]))
        func addsBOS(_ config: JSONObject) throws -> Bool? {
            try GGUFLlamaTokenizer.metadata(tokenizer: .object(tokenizer), tokenizerConfig: config, chatTemplate: nil, pre: "default",
                                            bosTokenID: nil, eosTokenID: nil, path: tinyHF)
                .first { $0.key == "tokenizer.ggml.add_bos_token" }?.value.boolValue
        }
        #expect(try addsBOS(JSONObject()) == false)
        tokenizer["post_processor"] = bosFirst
        #expect(try addsBOS(JSONObject()) == true)
        #expect(try addsBOS(JSONObject([("add_bos_token", .bool(false))])) == false)
    }

    @Test func aTypeAmalgamCannotDecodeIsRefusedNamingTypeTensorAndFile() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for type in [GGMLType.iq4_NL, .iq4_XS, .iq2_XXS, .iq3_S, .iq1_M, .tq1_0, .tq2_0] {
            let path = try ggufWithTensor(of: type, in: dir)
            // The file itself reads (what `amalgam inspect` shows).
            #expect(try GGUFFile(path: path).entry("token_embd.weight")?.type == type)
            // Anything that needs the values is refused at open, before an output is started.
            #expect(throws: CheckpointError.gguf(.cannotDequantize(path: path, tensor: "token_embd.weight", type: type.name))) {
                try GGUFLlamaSource(path: path)
            }
            let message = "\(CheckpointError.gguf(.cannotDequantize(path: path, tensor: "token_embd.weight", type: type.name)))"
            #expect(message.contains(path) && message.contains("token_embd.weight") && message.contains(type.name))
            #expect(throws: CheckpointError.self) { try GGUFLlamaConvert.toHuggingFace(gguf: path, output: dir + "/out", dtype: .f32) }
            #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
        }
    }
}
