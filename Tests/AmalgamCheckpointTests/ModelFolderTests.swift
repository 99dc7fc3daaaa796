import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// Folders and configs as transformers 5.23 writes them.
struct ModelFolderTests {
    @Test(arguments: ["tiny-llama", "tiny-llama-sharded"])
    func opensAFolderWrittenBySavePretrained(folder: String) throws {
        let model = try ModelFolder(path: safetensorsFixtures + "/" + folder)
        #expect(model.config.modelType == "llama")
        #expect(model.config.architectures == ["LlamaForCausalLM"])
        #expect(model.companions == ["generation_config.json"])
        #expect(model.weights.tensorInfos.count == 21)
        #expect(model.weights.totalBytes == 53568)  // the index's total_size
        #expect(model.tensors(ofLayer: 1).count == 9)
        #expect(model.tensors(ofLayer: 2).isEmpty)
        #expect(model.config.dtype == .bf16)
        let summary = try CheckpointSummary(safetensorsPath: model.path)
        #expect(summary.parameterCount == referenceValues["tiny-llama"]!["num_parameters"]!.intValue!)
        #expect(summary.layerCount == 2 && summary.architecture == "LlamaForCausalLM")
        #expect(summary.dtypeCounts.map(\.name) == ["BF16"])
    }

    /// `jsonText()` of a config read from disk is the file, byte for byte (unknown fields kept).
    @Test(arguments: ["configs/llama", "configs/llama3-rope", "configs/mistral", "configs/qwen2", "configs/qwen3", "tiny-llama"])
    func configRoundTripsByteForByte(folder: String) throws {
        let path = safetensorsFixtures + "/" + folder + "/config.json"
        let config = try ModelConfig(contentsOf: path)
        #expect(Array(config.jsonText().utf8) == (try fileBytes(path)))
    }

    @Test(arguments: ["llama", "llama3-rope", "mistral", "qwen2", "qwen3"])
    func llamaFamilyFieldsMatchTransformers(kind: String) throws {
        let config = try ModelConfig(contentsOf: safetensorsFixtures + "/configs/\(kind)/config.json")
        let want = referenceValues["configs"]![kind]!
        let llama = try config.llama()
        #expect(config.isLlamaFamily)
        #expect(llama.modelType == want["model_type"]!.stringValue!)
        #expect(llama.hiddenSize == want["hidden_size"]!.intValue!)
        #expect(llama.intermediateSize == want["intermediate_size"]!.intValue!)
        #expect(llama.numHiddenLayers == want["num_hidden_layers"]!.intValue!)
        #expect(llama.numAttentionHeads == want["num_attention_heads"]!.intValue!)
        #expect(llama.numKeyValueHeads == want["num_key_value_heads"]!.intValue!)
        #expect(llama.headDim == want["head_dim"]!.intValue!)
        #expect(llama.vocabSize == want["vocab_size"]!.intValue!)
        #expect(llama.rmsNormEps == want["rms_norm_eps"]!.doubleValue!)
        #expect(llama.ropeTheta == want["rope_theta"]!.doubleValue!)
        #expect(llama.maxPositionEmbeddings == want["max_position_embeddings"]!.intValue!)
        #expect(llama.tieWordEmbeddings == want["tie_word_embeddings"]!.boolValue!)
        #expect(llama.slidingWindow == want["sliding_window"]!.intValue)
        #expect(config.numHiddenLayers == llama.numHiddenLayers)
        // Rope scaling (transformers 5 writes it inside `rope_parameters`): present only when not default.
        if want["rope_type"]!.stringValue! == "default" {
            #expect(llama.ropeScaling == nil)
        } else {
            #expect(llama.ropeScaling?["rope_type"]?.stringValue == want["rope_type"]!.stringValue!)
            #expect(llama.ropeScaling?["factor"]?.doubleValue == want["rope_factor"]!.doubleValue!)
        }
    }

    @Test func llamaTokenIdsAndEditsKeepUnknownFields() throws {
        var config = try ModelConfig(contentsOf: safetensorsFixtures + "/configs/llama/config.json")
        let llama = try config.llama()
        #expect(llama.bosTokenId == 1 && llama.eosTokenIds == [2, 3])
        config.numHiddenLayers = 5
        config.dtype = .f16
        let text = config.jsonText()
        let reparsed = try JSONValue.parse(text)
        #expect(reparsed["num_hidden_layers"]?.intValue == 5)
        #expect(reparsed["dtype"]?.stringValue == "float16")
        #expect(reparsed["rope_parameters"] == config.raw["rope_parameters"])
        #expect(reparsed.objectValue!.count == config.raw.count)
    }

    @Test func badConfigsNameTheKey() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/config.json"
        try writeFileAtomically(#"{"model_type": "llama", "hidden_size": 32}"#, to: path)
        #expect { try ModelConfig(contentsOf: path).llama() } throws: { error in
            "\(error)".contains(path) && "\(error)".contains("intermediate_size")
        }
        try writeFileAtomically(#"{"model_type": "gpt2"}"#, to: path)
        #expect { try ModelConfig(contentsOf: path).llama() } throws: { error in "\(error)".contains("gpt2") }
        try writeFileAtomically(#"{"model_type": "llama", "#, to: path)
        #expect { try ModelConfig(contentsOf: path) } throws: { error in "\(error)".contains(path) }
    }
}
