import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// One model source: the same `.gguf` gives `score`, `eval` and `dam` the same weights (read in place,
/// dequantized to f32), on the Q8_0 tiny Llama of fixtures/gguf.
@Suite(.requires(amalgamProgram))
struct ModelSourceCommandTests {
    let gguf = fixturesDirectory + "/gguf/tiny-llama-q8_0.gguf"
    let text = "Shall I compare thee to a summer's day? Thou art more lovely and more temperate."

    /// `amalgam score MODEL --json --dump-logits`: the log-likelihood of the one sequence and the logits file.
    func score(_ model: String, ids: String, dump: String) throws -> Double {
        // --weights f32: a GGUF dequantized to f32, the weights dam and finetune read (native would keep its blocks)
        let run = try runAmalgam(["score", model, "--ids-file", ids, "--json", "--dump-logits", dump, "--weights", "f32"])
        #expect(run.status == 0, "\(run.err)")
        let line = try JSONValue.parse(String(run.out.split(separator: "\n").first ?? ""))
        return line["log_likelihood"]?.doubleValue ?? .nan
    }

    @Test func scoreEvalAndADAMSourceSeeTheSameGGUFWeights() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try text.write(toFile: dir + "/text.txt", atomically: true, encoding: .utf8)

        // the ids eval scores: the GGUF's tokenizer without special tokens, after lm-eval's prefix (BOS, id 1)
        let tokenized = try runAmalgam(["tokenize", gguf, "--text-file", dir + "/text.txt", "--no-special"])
        #expect(tokenized.status == 0, "\(tokenized.err)")
        let ids = try JSONValue.parse(tokenized.out).arrayValue!.map { $0.intValue! }
        #expect(ids.count > 8)
        try ("[" + ([1] + ids).map(String.init).joined(separator: ", ") + "]\n").write(toFile: dir + "/ids.txt", atomically: true, encoding: .utf8)
        let fromScore = try score(gguf, ids: dir + "/ids.txt", dump: dir + "/gguf-logits.safetensors")

        // eval: a language-modelling task of that one document
        let task = """
            {"task": "one-document", "kind": "language_modeling"}
            {"id": "d0", "text": \(JSONValue.string(text).compactText())}
            """
        try task.write(toFile: dir + "/task.jsonl", atomically: true, encoding: .utf8)
        let eval = try runAmalgam(["eval", gguf, dir + "/task.jsonl", "--out", dir + "/eval", "--quiet", "--weights", "f32"])
        #expect(eval.status == 0, "\(eval.err)")
        let record = try JSONValue.parse(String(contentsOfFile: dir + "/eval/one-document.jsonl", encoding: .utf8)
            .split(separator: "\n").first.map(String.init) ?? "")
        #expect(record["tokens"]?.intValue == ids.count)
        let fromEval = record["loglikelihood"]?.doubleValue ?? .nan
        #expect(abs(fromEval - fromScore) <= 1e-5 * abs(fromScore), "eval \(fromEval), score \(fromScore)")

        // the GGUF rounded to bf16 (what dam and finetune used to read) is told apart at that tolerance
        let bf16 = try runAmalgam(["convert", gguf, dir + "/bf16", "--dtype", "bf16"])
        #expect(bf16.status == 0, "\(bf16.err)")
        let fromBF16 = try score(dir + "/bf16", ids: dir + "/ids.txt", dump: dir + "/bf16-logits.safetensors")
        #expect(abs(fromBF16 - fromScore) > 1e-5 * abs(fromScore), "bf16 \(fromBF16), f32 \(fromScore)")

        // DAM of the GGUF with itself, untrained, identity f, uniform coefficients: the merge is the source
        try """
            models:
              - model: \(gguf)
                data: \(dir)/text.txt
              - model: \(gguf)
                data: \(dir)/text.txt
            steps: 0
            seq_len: 8
            f: identity
            run_dir: \(dir)/dam-run
            """.write(toFile: dir + "/dam.yml", atomically: true, encoding: .utf8)
        let dam = try runAmalgam(["dam", dir + "/dam.yml", dir + "/dam"])
        #expect(dam.status == 0, "\(dam.err)")
        #expect(!dam.err.contains("converting"), "\(dam.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/dam-run").allSatisfy { !$0.hasPrefix("source-") }, "a GGUF source is read in place")
        let fromDAM = try score(dir + "/dam", ids: dir + "/ids.txt", dump: dir + "/dam-logits.safetensors")
        #expect(fromDAM == fromScore)
        let a = try SafetensorsFile(path: dir + "/gguf-logits.safetensors"), b = try SafetensorsFile(path: dir + "/dam-logits.safetensors")
        #expect(try a.tensor("logits").floats() == b.tensor("logits").floats())
    }

    @Test func scoreTakesASingleSafetensorsFileAsItsFolder() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "[1, 17, 42, 99, 3, 250, 8]\n".write(toFile: dir + "/ids.txt", atomically: true, encoding: .utf8)
        let folder = fixturesDirectory + "/gguf/tiny-llama-hf"
        let fromFolder = try score(folder, ids: dir + "/ids.txt", dump: dir + "/a.safetensors")
        let fromFile = try score(folder + "/model.safetensors", ids: dir + "/ids.txt", dump: dir + "/b.safetensors")
        #expect(fromFolder == fromFile && fromFolder.isFinite)
        #expect(try fileBytes(dir + "/a.safetensors") == fileBytes(dir + "/b.safetensors"))
    }
}
