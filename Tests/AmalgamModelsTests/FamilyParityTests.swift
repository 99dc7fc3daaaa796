import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import AmalgamTestSupport
import Foundation
import Testing

/// A family fixture of scripts/fixtures/make_family_fixtures.py: its folder, and what transformers
/// computed for it (a right-padded batch and its f32 logits [B × T × V]).
struct FamilyFixture {
    let folder: String
    let batch: TokenBatch
    let logits: [Float]
    let maxLength: Int
    let vocab: Int

    init(_ name: String) throws {
        folder = fixturePath("families/" + name)
        let file = try SafetensorsFile(path: folder + "/expected.safetensors")
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

    /// transformers' logits of sequence `b` at position `t`.
    func expected(_ b: Int, _ t: Int) -> ArraySlice<Float> {
        let start = (b * maxLength + t) * vocab
        return logits[start..<(start + vocab)]
    }

    /// Largest |ours − transformers| over every real (unpadded) position.
    func maxDifference(_ ours: Matrix) -> Float {
        var worst: Float = 0
        for (b, s) in batch.sequences.enumerated() {
            for t in 0..<s.count {
                for (a, e) in zip(ours[row: batch.offsets[b] + t], expected(b, t)) { worst = max(worst, abs(a - e)) }
            }
        }
        return worst
    }
}

/// Every family fixture.
let runnableFamilies = ["gemma2", "gemma3-text", "gemma3-multimodal", "olmo2", "granite", "phi3-short", "phi3-long", "gpt2",
                        "mixtral", "qwen2-moe", "qwen3-moe"]

@Test("a tiny random model of each new family gives transformers' logits within 1e-4 (f32)",
      arguments: runnableFamilies)
func familyLogitsMatchTransformers(_ name: String) throws {
    let fixture = try FamilyFixture(name)
    let model = try LlamaModel(folder: fixture.folder)
    let ours = try model.logits(fixture.batch)
    #expect(ours.rows == fixture.batch.tokenCount && ours.cols == fixture.vocab)
    let difference = fixture.maxDifference(ours)
    #expect(difference <= 1e-4, "\(name): max |ours − transformers| = \(difference)")
}

@Test("token-by-token decoding with the KV cache gives transformers' logits at every position",
      arguments: ["gemma2", "gemma3-text", "olmo2", "granite", "phi3-short", "gpt2", "mixtral", "qwen2-moe", "qwen3-moe"])
func familyCachedDecodingMatchesTransformers(_ name: String) throws {
    let fixture = try FamilyFixture(name)
    let model = try LlamaModel(folder: fixture.folder)
    let sequence = fixture.batch.sequences[0]  // the longest: past every sliding window
    let cache = KVCache(for: model, capacity: sequence.count)
    var worst: Float = 0
    // the first two tokens as a prompt, then one at a time
    var logits = try model.nextTokenLogits(Array(sequence[0..<2]), cache: cache)
    for (a, e) in zip(logits, fixture.expected(0, 1)) { worst = max(worst, abs(a - e)) }
    for t in 2..<sequence.count {
        logits = try model.nextTokenLogits([sequence[t]], cache: cache)
        for (a, e) in zip(logits, fixture.expected(0, t)) { worst = max(worst, abs(a - e)) }
    }
    #expect(worst <= 1e-4, "\(name): max |cached − transformers| = \(worst)")
}

@Test("the family options are read from config.json: Gemma 2's caps and scales, Gemma 3's two rotary tables")
func familyOptionsComeFromTheConfig() throws {
    let gemma2 = try LlamaModel(folder: fixturePath("families/gemma2")).family
    #expect(gemma2.attentionSoftCap == 5 && gemma2.finalSoftCap == 2 && gemma2.normOffset == 1)
    #expect(gemma2.activation == .geluTanh && gemma2.mlpInputNorm == "pre_feedforward_layernorm")
    #expect(abs(gemma2.attentionScale! - Float(1 / 12.0.squareRoot())) < 1e-7)
    let gemma3 = try LlamaModel(folder: fixturePath("families/gemma3-multimodal")).family
    #expect(gemma3.tensorPrefix == "language_model." && gemma3.qkNorm == .perHead && gemma3.attentionSoftCap == nil)
    let phi3 = try LlamaModel(folder: fixturePath("families/phi3-short")).family
    #expect(phi3.fusedProjections && phi3.rotaryDim == 4)
    let llama = try LlamaModel(folder: modelFixture("llama")).family
    #expect(llama.isLlama && llama.attentionScale == nil && llama.embeddingScale == 1 && llama.normOffset == 0)
}

@Test("an architecture the engine does not run is refused with the list of those it does")
func unknownArchitectureListsTheSupportedOnes() throws {
    let source = try ModelSource.open(fixturePath("families/granite"))
    var raw = source.config.raw
    raw["model_type"] = .string("falcon")
    do {
        _ = try LlamaModel(config: ModelConfig(raw: raw, path: "config.json"), weights: source.tensors)
        Issue.record("a falcon config loaded")
    } catch {
        let message = error.description
        #expect(message.contains("'falcon'"), "\(message)")
        for family in ["gemma2", "gemma3_text", "granite", "llama", "olmo2", "phi3", "qwen3"] {
            #expect(message.contains(family), "\(message) does not list \(family)")
        }
    }
}

@Test("training a new family is refused (it has no backward pass yet), naming its model_type")
func trainingANewFamilyIsRefused() throws {
    let model = try LlamaModel(folder: fixturePath("families/gemma2"))
    do {
        _ = try LlamaTrainer(model: model, trainable: .all)
        Issue.record("a trainer was made for gemma2")
    } catch {
        #expect(error.description.contains("gemma2"), "\(error)")
    }
}

@Test("a GPT-2 sequence longer than its learned positions is refused, naming n_positions")
func gpt2PastItsPositionsIsRefused() throws {
    let model = try LlamaModel(folder: fixturePath("families/gpt2"))
    let limit = model.config.maxPositionEmbeddings
    #expect(limit == 32)
    _ = try model.logits(TokenBatch([Array(repeating: 5, count: limit)]))
    #expect(throws: ModelError.positionOutOfRange(position: limit, limit: limit)) {
        _ = try model.logits(TokenBatch([Array(repeating: 5, count: limit + 1)]))
    }
}
