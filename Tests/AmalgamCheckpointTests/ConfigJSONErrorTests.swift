import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// A malformed `config.json` or `adapter_config.json`: the error names the file, the key path and what is accepted.
struct ConfigJSONErrorTests {
    /// transformers' llama config (fixtures/safetensors/configs/llama) with `change` applied, written to a
    /// temporary folder.
    func llamaConfig(_ folder: String, _ change: (inout JSONObject) -> Void) throws -> ModelConfig {
        var raw = try ModelConfig(contentsOf: safetensorsFixtures + "/configs/llama/config.json").raw
        change(&raw)
        let path = folder + "/config.json"
        try Data(JSONValue.object(raw).pythonText().utf8).write(to: URL(fileURLWithPath: path))
        return try ModelConfig(contentsOf: path)
    }

    @Test func aConfigJSONWithAWrongTypeNamesTheFileAndKey() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/config.json"
        let layers = try llamaConfig(folder) { $0["num_hidden_layers"] = .string("x") }
        #expect(throws: CheckpointError.invalidConfig(path: path, key: "num_hidden_layers", reason: "expected an integer ≥ 1, got \"x\"")) {
            try layers.decoder()
        }
        let zero = try llamaConfig(folder) { $0["hidden_size"] = .int(0) }
        #expect(throws: CheckpointError.invalidConfig(path: path, key: "hidden_size", reason: "0 is below 1")) { try zero.llama() }
        let missing = try llamaConfig(folder) { $0["vocab_size"] = nil }
        #expect(throws: CheckpointError.invalidConfig(path: path, key: "vocab_size", reason: "missing (an integer ≥ 1; a llama config.json must have it)")) {
            try missing.llama()
        }
        let eps = try llamaConfig(folder) { $0["rms_norm_eps"] = .bool(true) }
        #expect(throws: CheckpointError.invalidConfig(path: path, key: "rms_norm_eps", reason: "expected a number, got true")) { try eps.llama() }
        let eos = try llamaConfig(folder) { $0["eos_token_id"] = .array([.int(2), .string("</s>")]) }
        #expect(throws: CheckpointError.invalidConfig(path: path, key: "eos_token_id[1]", reason: "expected an integer, got \"</s>\"")) { try eos.llama() }
        let rope = try llamaConfig(folder) { $0["rope_scaling"] = .string("linear") }
        #expect(throws: CheckpointError.invalidConfig(path: path, key: "rope_scaling", reason: "expected a JSON object, got \"linear\"")) { try rope.llama() }
        let type = try llamaConfig(folder) { $0["model_type"] = .int(3) }
        #expect(throws: CheckpointError.invalidConfig(path: path, key: "model_type", reason: "expected a string, got 3")) { try type.llama() }
    }

    /// Hugging Face's spellings still read: nulls as absent, floats written as 1e-05, whole numbers as 2.0,
    /// unknown keys ignored, eos as one id or a list.
    @Test func huggingFaceSpellingsStillRead() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let config = try llamaConfig(folder) {
            $0["rms_norm_eps"] = .number("1e-05")
            $0["rope_theta"] = .number("500000")
            $0["num_hidden_layers"] = .number("2.0")
            $0["sliding_window"] = .null
            $0["rope_scaling"] = .null
            $0["head_dim"] = .null
            $0["bos_token_id"] = .null
            $0["eos_token_id"] = .array([.int(1), .int(2)])
            $0["some_future_key"] = .object(JSONObject([("x", .string("y"))]))
        }
        let llama = try config.llama()
        #expect(llama.rmsNormEps == 1e-05 && llama.ropeTheta == 500000 && llama.numHiddenLayers == 2)
        #expect(llama.slidingWindow == nil && llama.ropeScaling == nil && llama.bosTokenId == nil)
        #expect(llama.headDim == llama.hiddenSize / llama.numAttentionHeads)
        #expect(llama.eosTokenIds == [1, 2])
    }

    /// An adapter folder holding `config` as adapter_config.json (and a weights file the config is read before).
    func adapter(_ folder: String, _ config: String) throws -> String {
        try Data(config.utf8).write(to: URL(fileURLWithPath: folder + "/adapter_config.json"))
        try Data().write(to: URL(fileURLWithPath: folder + "/adapter_model.safetensors"))
        return folder + "/adapter_config.json"
    }

    @Test func anAdapterConfigWithAWrongTypeNamesTheFileAndKey() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var path = try adapter(folder, #"{"peft_type": "LORA", "r": "8", "lora_alpha": 16}"#)
        #expect(throws: LoRAError.invalidConfig(path: path, key: "r", reason: "expected an integer ≥ 1, got \"8\"")) { try LoRAAdapter(folder: folder) }
        path = try adapter(folder, #"{"peft_type": "LORA", "r": 8}"#)
        #expect(throws: LoRAError.invalidConfig(path: path, key: "lora_alpha", reason: "missing (a number; the scale is lora_alpha / r)")) {
            try LoRAAdapter(folder: folder)
        }
        path = try adapter(folder, #"{"r": 8, "lora_alpha": 16, "rank_pattern": {"q_proj": 4, "v_proj": 0}}"#)
        #expect(throws: LoRAError.invalidConfig(path: path, key: "rank_pattern.v_proj", reason: "0 is below 1")) { try LoRAAdapter(folder: folder) }
        path = try adapter(folder, #"{"r": 8, "lora_alpha": 16, "alpha_pattern": {"q_proj": "x"}}"#)
        #expect(throws: LoRAError.invalidConfig(path: path, key: "alpha_pattern.q_proj", reason: "expected a number, got \"x\"")) {
            try LoRAAdapter(folder: folder)
        }
        path = try adapter(folder, #"{"r": 8, "lora_alpha": 16, "modules_to_save": ["lm_head", 3]}"#)
        #expect(throws: LoRAError.invalidConfig(path: path, key: "modules_to_save", reason: "expected an array of strings, got 3 among them")) {
            try LoRAAdapter(folder: folder)
        }
        path = try adapter(folder, #"{"r": 8, "lora_alpha": 16, "use_rslora": "yes"}"#)
        #expect(throws: LoRAError.invalidConfig(path: path, key: "use_rslora", reason: "expected true or false, got \"yes\"")) {
            try LoRAAdapter(folder: folder)
        }
        path = try adapter(folder, "[]")
        #expect(throws: LoRAError.invalidConfig(path: path, key: "(file)", reason: "expected a JSON object, got an array")) { try LoRAAdapter(folder: folder) }
    }
}
