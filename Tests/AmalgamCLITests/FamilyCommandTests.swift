import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam score`, `generate` and `eval` on the tiny random models of the families beyond Llama
/// (fixtures/families, made by scripts/fixtures/make_family_fixtures.py), checked against transformers'
/// logits. The fixtures have no tokenizer of their own (vocabulary 64): for `eval` and `generate --prompt`
/// the test gives them the word-level tokenizer of fixtures/tokenizer/models/wordlevel cut to its first
/// 64 ids (other words become its `<unk>`), with a tokenizer_config.json naming its ids 1 and 2 (`<unk>`,
/// `|`) BOS and EOS, as the fixtures' config.json does (eval starts documents with BOS, as lm-eval does).
@Suite(.requires(amalgamProgram))
struct FamilyCommandTests {
    /// transformers' inputs and f32 logits [B, T, V] of a fixture.
    struct Expected {
        let ids: [[Int]]
        let logits: [Float]
        let length: Int
        let vocab: Int

        init(_ folder: String) throws {
            let file = try SafetensorsFile(path: folder + "/expected.safetensors")
            let idTensor = try file.tensor("input_ids"), mask = try file.tensor("attention_mask").floats().map { Int($0) }
            let rows = idTensor.shape[0], cols = idTensor.shape[1]
            let values = idTensor.floats().map { Int($0) }
            ids = (0..<rows).map { r in (0..<cols).filter { mask[r * cols + $0] == 1 }.map { values[r * cols + $0] } }
            let l = try file.tensor("logits")
            logits = l.floats()
            length = l.shape[1]
            vocab = l.shape[2]
        }
    }

    /// A copy of the fixture with the cut-down word-level tokenizer beside it.
    func modelWithTokenizer(_ name: String, in dir: String) throws -> String {
        let folder = dir + "/" + name
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for file in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: fixturePath("families/\(name)/\(file)"), toPath: folder + "/" + file)
        }
        let json = try JSONValue.parse(fixtureBytes("tokenizer/models/wordlevel/tokenizer.json"))
        guard case var .object(tokenizer) = json, case var .object(model) = tokenizer["model"]!,
              case let .object(vocab) = model["vocab"]! else { throw CLIFixtureError.badTokenizer }
        var kept = JSONObject()
        for (word, id) in vocab where (id.intValue ?? 64) < 64 { kept[word] = id }
        model["vocab"] = .object(kept)
        tokenizer["model"] = .object(model)
        try JSONValue.object(tokenizer).compactText().write(toFile: folder + "/tokenizer.json", atomically: true, encoding: .utf8)
        try #"{"bos_token": "<unk>", "eos_token": "|", "tokenizer_class": "PreTrainedTokenizerFast"}"#
            .write(toFile: folder + "/tokenizer_config.json", atomically: true, encoding: .utf8)
        return folder
    }

    enum CLIFixtureError: Error { case badTokenizer }

    @Test("score on a Gemma 2, Gemma 3 multimodal and Phi-3 folder writes transformers' logits and a log-likelihood",
          arguments: ["gemma2", "gemma3-multimodal", "phi3-short"])
    func scoreDumpsTransformersLogits(_ name: String) throws {
        let dir = temporaryFolder("family-score-\(name)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = fixturePath("families/" + name)
        let expected = try Expected(folder)
        let lines = expected.ids.map { "[" + $0.map(String.init).joined(separator: ", ") + "]" }.joined(separator: "\n") + "\n"
        try lines.write(toFile: dir + "/ids.txt", atomically: true, encoding: .utf8)
        let run = try runAmalgam(["score", folder, "--ids-file", dir + "/ids.txt", "--json", "--dump-logits", dir + "/logits.safetensors"])
        #expect(run.status == 0, "\(run.err)")
        #expect(run.out.split(separator: "\n").count == expected.ids.count)
        let dumped = try SafetensorsFile(path: dir + "/logits.safetensors").tensor("logits")
        #expect(dumped.shape == [expected.ids.count, expected.length, expected.vocab])
        let ours = dumped.floats()
        var worst: Float = 0
        for (b, s) in expected.ids.enumerated() {
            for t in 0..<s.count {
                let start = (b * expected.length + t) * expected.vocab
                for v in 0..<expected.vocab { worst = max(worst, abs(ours[start + v] - expected.logits[start + v])) }
            }
        }
        #expect(worst <= 1e-4, "\(name): max |score's logits − transformers'| = \(worst)")

        // the same weights held in bf16: close to f32, yet not the same numbers
        let bf16 = try runAmalgam(["score", folder, "--ids-file", dir + "/ids.txt", "--json", "--weights", "bf16"])
        #expect(bf16.status == 0, "\(bf16.err)")
        let f32Line = try JSONValue.parse(String(run.out.split(separator: "\n")[0]))
        let bf16Line = try JSONValue.parse(String(bf16.out.split(separator: "\n")[0]))
        let a = f32Line["log_likelihood"]?.doubleValue ?? .nan, b = bf16Line["log_likelihood"]?.doubleValue ?? .nan
        #expect(a != b && abs(a - b) <= 0.05 * abs(a), "f32 \(a), bf16 \(b)")
    }

    @Test("generate --ids on a Gemma 2 folder continues greedily with transformers' most likely token")
    func generateFollowsTransformersArgmax() throws {
        let folder = fixturePath("families/gemma2")
        let expected = try Expected(folder)
        let prompt = Array(expected.ids[0][0..<3])
        let run = try runAmalgam(["generate", folder, "--ids", "[" + prompt.map(String.init).joined(separator: ", ") + "]", "--max-tokens", "3"])
        #expect(run.status == 0, "\(run.err)")
        let generated = try JSONValue.parse(run.out.trimmingCharacters(in: .whitespacesAndNewlines)).arrayValue?.compactMap(\.intValue) ?? []
        #expect(!generated.isEmpty)
        let start = 2 * expected.vocab  // sequence 0, position 2: the prediction after the prompt
        let row = expected.logits[start..<(start + expected.vocab)]
        let argmax = row.indices.max { row[$0] < row[$1] }! - start
        #expect(generated.first == argmax, "generated \(generated), transformers' argmax \(argmax)")
    }

    @Test("eval and generate --prompt run a Gemma 3 folder with a tokenizer; eval's log-likelihood is score's")
    func evalOnAGemma3FolderAgreesWithScore() throws {
        let dir = temporaryFolder("family-eval")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = try modelWithTokenizer("gemma3-text", in: dir)
        let text = "the lord and the king shall have his good sir , and you will be well"
        try text.write(toFile: dir + "/text.txt", atomically: true, encoding: .utf8)
        let tokenized = try runAmalgam(["tokenize", folder, "--text-file", dir + "/text.txt", "--no-special"])
        #expect(tokenized.status == 0, "\(tokenized.err)")
        let ids = try JSONValue.parse(tokenized.out).arrayValue!.map { $0.intValue! }
        #expect(ids.count > 8 && ids.allSatisfy { $0 < 64 })

        let task = """
            {"task": "one-document", "kind": "language_modeling"}
            {"id": "d0", "text": \(JSONValue.string(text).compactText())}
            """
        try task.write(toFile: dir + "/task.jsonl", atomically: true, encoding: .utf8)
        let eval = try runAmalgam(["eval", folder, dir + "/task.jsonl", "--out", dir + "/eval", "--quiet"])
        #expect(eval.status == 0, "\(eval.err)")
        let record = try JSONValue.parse(String(contentsOfFile: dir + "/eval/one-document.jsonl", encoding: .utf8)
            .split(separator: "\n").first.map(String.init) ?? "")
        #expect(record["tokens"]?.intValue == ids.count)
        let fromEval = record["loglikelihood"]?.doubleValue ?? .nan

        // score of the same ids after the prefix eval puts first (the config's BOS, id 1)
        try ("[" + ([1] + ids).map(String.init).joined(separator: ", ") + "]\n").write(toFile: dir + "/ids.txt", atomically: true, encoding: .utf8)
        let score = try runAmalgam(["score", folder, "--ids-file", dir + "/ids.txt", "--json"])
        #expect(score.status == 0, "\(score.err)")
        let fromScore = try JSONValue.parse(String(score.out.split(separator: "\n").first ?? ""))["log_likelihood"]?.doubleValue ?? .nan
        #expect(abs(fromEval - fromScore) <= 1e-5 * abs(fromScore), "eval \(fromEval), score \(fromScore)")

        let generate = try runAmalgam(["generate", folder, "--prompt", "the lord and", "--max-tokens", "4"])
        #expect(generate.status == 0, "\(generate.err)")
        #expect(generate.err.contains("tokens in"))
    }
}
