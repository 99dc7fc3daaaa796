import AmalgamCheckpoint
import AmalgamTestSupport
import Testing

struct TensorNameTests {
    /// Every tensor of the transformers Llama state dict gets its layer and role.
    @Test func everyLlamaTensorHasItsRole() {
        let names = referenceValues["tiny-llama"]!["state_dict_order"]!.arrayValue!.map { $0.stringValue! }
        let roles = Dictionary(uniqueKeysWithValues: names.map { ($0, TensorName($0)) })
        #expect(roles.values.allSatisfy { $0.role != .other })
        #expect(roles["model.embed_tokens.weight"]?.role == .embedding)
        #expect(roles["lm_head.weight"]?.role == .lmHead)
        #expect(roles["model.norm.weight"]?.role == .finalNorm)
        #expect(roles["model.norm.weight"]?.layer == nil)
        let layer1 = names.filter { $0.hasPrefix("model.layers.1.") }.map { TensorName($0) }
        #expect(layer1.allSatisfy { $0.layer == 1 })
        #expect(layer1.map(\.role) == [.attentionQ, .attentionK, .attentionV, .attentionO, .mlpGate, .mlpUp, .mlpDown, .inputNorm, .postAttentionNorm])
    }

    @Test(arguments: [
        ("model.layers.12.self_attn.q_norm.weight", 12, TensorRole.queryNorm, false),
        ("model.layers.3.self_attn.k_norm.weight", 3, .keyNorm, false),
        ("model.layers.0.self_attn.q_proj.bias", 0, .attentionQ, true),
        ("model.layers.27.self_attn.v_proj.bias", 27, .attentionV, true),
        ("model.layers.7.mlp.down_proj.weight", 7, .mlpDown, false),
        ("model.layers.7.some_new_thing.weight", 7, .other, false),
    ])
    func layersRolesAndBiases(name: String, layer: Int, role: TensorRole, isBias: Bool) {
        let t = TensorName(name)
        #expect(t.layer == layer && t.role == role && t.isBias == isBias)
    }

    @Test func renumberingALayer() {
        #expect(TensorName("model.layers.7.mlp.up_proj.weight").withLayer(12) == "model.layers.12.mlp.up_proj.weight")
        #expect(TensorName("model.embed_tokens.weight").withLayer(3) == "model.embed_tokens.weight")
        #expect(TensorRole.lmHead.isEmbeddingLike && !TensorRole.mlpUp.isEmbeddingLike)
    }
}
