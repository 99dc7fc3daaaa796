import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import AmalgamTestSupport
import Testing

/// What transformers computed for a fixture: the padded batch and its logits [B × T × V].
struct ExpectedLogits {
    let batch: TokenBatch
    let logits: [Float]
    let maxLength: Int
    let vocab: Int

    init(_ name: String) throws {
        let file = try SafetensorsFile(path: modelFixture(name) + "/expected.safetensors")
        let ids = try file.tensor("input_ids"), mask = try file.tensor("attention_mask")
        let rows = ids.shape[0], cols = ids.shape[1]
        let idValues = ids.floats().map { Int($0) }, maskValues = mask.floats().map { Int($0) }
        batch = try TokenBatch(padded: (0..<rows).map { Array(idValues[($0 * cols)..<(($0 + 1) * cols)]) },
                               mask: (0..<rows).map { Array(maskValues[($0 * cols)..<(($0 + 1) * cols)]) })
        let l = try file.tensor("logits")
        logits = l.floats()
        maxLength = l.shape[1]
        vocab = l.shape[2]
    }

    /// Largest |ours − theirs| over every real (unpadded) position.
    func maxDifference(_ ours: Matrix) -> Float {
        var worst: Float = 0
        for (b, s) in batch.sequences.enumerated() {
            for t in 0..<s.count {
                let row = ours[row: batch.offsets[b] + t]
                for v in 0..<vocab {
                    worst = max(worst, abs(row[row.startIndex + v] - logits[(b * maxLength + t) * vocab + v]))
                }
            }
        }
        return worst
    }
}

@Test("our logits equal transformers' for a tiny random model of each family",
      arguments: ["llama", "llama3-rope", "llama-tied", "mistral", "qwen2", "qwen3", "llama-bf16", "llama-f16",
                  // scripts/fixtures/make_rope_fixtures.py: sequences past the original context
                  "rope-linear", "rope-dynamic", "rope-yarn", "rope-yarn-mscale", "rope-longrope", "rope-longrope-short"])
func logitsMatchTransformers(_ name: String) throws {
    let model = try LlamaModel(folder: modelFixture(name))
    let expected = try ExpectedLogits(name)
    let ours = try model.logits(expected.batch)
    #expect(ours.rows == expected.batch.tokenCount && ours.cols == expected.vocab)
    let difference = expected.maxDifference(ours)
    #expect(difference <= 1e-4, "\(name): max |ours − transformers| = \(difference)")
}
