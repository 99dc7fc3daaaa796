import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import Testing

/// A Llama config.json with the given rope parameters (the weights are not needed to build the rotary embedding).
private func config(_ rope: [(String, JSONValue)]) throws -> LlamaConfig {
    let raw = JSONObject([
        ("model_type", .string("llama")), ("hidden_size", .int(32)), ("intermediate_size", .int(48)),
        ("num_hidden_layers", .int(1)), ("num_attention_heads", .int(2)), ("head_dim", .int(16)),
        ("vocab_size", .int(64)), ("max_position_embeddings", .int(64)), ("rope_parameters", .object(JSONObject(rope))),
    ])
    return try ModelConfig(raw: raw, path: "m/config.json").llama()
}

@Suite struct RopeScalingTests {
    @Test func unknownRopeTypeNamesConfigAndKey() throws {
        let c = try config([("rope_type", .string("su")), ("rope_theta", .double(10000))])
        #expect(performing: { try RotaryEmbedding(c, path: "m/config.json") }, throws: { error in
            let text = "\(error)"
            return text.contains("m/config.json") && text.contains("rope_parameters.rope_type") && text.contains("yarn")
        })
    }

    @Test func missingFieldNamesTheKey() throws {
        let yarn = try config([("rope_type", .string("yarn")), ("rope_theta", .double(10000))])
        #expect(performing: { try RotaryEmbedding(yarn, path: "m/config.json") }, throws: { "\($0)".contains("rope_parameters.factor") })
        let longrope = try config([("rope_type", .string("longrope")), ("short_factor", .array([.int(1), .int(1)]))])
        #expect(performing: { try RotaryEmbedding(longrope, path: "m/config.json") }, throws: { error in
            "\(error)".contains("rope_parameters.short_factor") && "\(error)".contains("8 numbers")
        })
    }

    @Test func dynamicChangesOnlyPastTheContext() throws {
        let rope = try RotaryEmbedding(try config([("rope_type", .string("dynamic")), ("factor", .double(2))]), path: "m/config.json")
        #expect(rope.inverseFrequencies(sequenceLength: 64) == rope.inverseFrequencies)
        let longer = rope.inverseFrequencies(sequenceLength: 128)
        #expect(longer[0] == rope.inverseFrequencies[0])
        #expect(longer[7] < rope.inverseFrequencies[7])
    }
}
