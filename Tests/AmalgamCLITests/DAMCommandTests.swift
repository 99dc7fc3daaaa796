import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam dam` as a user runs it, on the tiny llama of fixtures/gguf (a folder and its Q8_0 GGUF).
@Suite(.requires(amalgamProgram))
struct DAMCommandTests {
    /// A run folder with two text files and a config; returns (dir, config path).
    func setUp(extra: String = "") throws -> (String, String) {
        let dir = temporaryFolder("dam")
        try String(repeating: "Shall I compare thee to a summer's day? Thou art more lovely and more temperate. ", count: 6)
            .write(toFile: dir + "/a.txt", atomically: true, encoding: .utf8)
        try (0..<6).map { "{\"text\": \"Of man's first disobedience, and the fruit \($0) of that forbidden tree\"}" }.joined(separator: "\n")
            .write(toFile: dir + "/b.jsonl", atomically: true, encoding: .utf8)
        let g = fixturesDirectory + "/gguf"
        try """
            models:
              - model: \(g)/tiny-llama-hf
                data: \(dir)/a.txt
              - model: \(g)/tiny-llama-q8_0.gguf
                data: \(dir)/b.jsonl
            steps: 4
            batch_size: 2
            seq_len: 12
            lr: 0.01
            optimiser: mofo
            run_dir: \(dir)/run
            \(extra)
            """.write(toFile: dir + "/dam.yml", atomically: true, encoding: .utf8)
        return (dir, dir + "/dam.yml")
    }

    /// Plain, and with embedding and norm coefficients (`train_embeddings`, `train_norms`).
    @Test(arguments: [false, true])
    func damStoppedAtAStepAndResumedWritesTheSameModelAsAStraightRun(_ embeddingsAndNorms: Bool) throws {
        let (dir, config) = try setUp(extra: embeddingsAndNorms ? "train_embeddings: true\ntrain_norms: yes" : "")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let straight = try runAmalgam(["dam", config, dir + "/straight"])
        #expect(straight.status == 0, "\(straight.err)")
        #expect(straight.out.contains("step 4/4"))
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/straight").sorted()
        #expect(files.contains("config.json") && files.contains("tokenizer.json") && files.contains("model.safetensors")
                && files.contains("coefficients.safetensors"), "\(files)")
        let coefficients = try SafetensorsFile(path: dir + "/straight/coefficients.safetensors")
        #expect(coefficients.info("model.layers.0.self_attn.q_proj.weight_coefficients")?.shape == [2, 64])
        #expect(coefficients.info("lm_head.weight_coefficients")?.shape == [2, 64])
        for name in ["model.embed_tokens", "model.layers.0.input_layernorm", "model.layers.0.post_attention_layernorm", "model.norm"] {
            #expect((coefficients.info(name + ".weight_coefficients")?.shape == [2, 64]) == embeddingsAndNorms, "\(name)")
        }
        let model = try ModelFolder(path: dir + "/straight")
        #expect(model.weights.tensorNames == (try ModelFolder(path: fixturesDirectory + "/gguf/tiny-llama-hf")).weights.tensorNames)

        try FileManager.default.removeItem(atPath: dir + "/run")
        let stopped = try runAmalgam(["dam", config, dir + "/resumed", "--stop-at", "2"])
        #expect(stopped.status == 0, "\(stopped.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/resumed"))
        let again = try runAmalgam(["dam", config, dir + "/resumed"])
        #expect(again.status != 0, "a run folder holding a state needs --resume")
        let resumed = try runAmalgam(["dam", config, dir + "/resumed", "--resume"])
        #expect(resumed.status == 0, "\(resumed.err)")
        for file in ["model.safetensors", "coefficients.safetensors"] {
            #expect(FileManager.default.contents(atPath: dir + "/straight/" + file) == FileManager.default.contents(atPath: dir + "/resumed/" + file), "\(file)")
        }
    }

    @Test func damWithAMisspelledKeyFailsNamingItAndTheAcceptedKeys() throws {
        let (dir, config) = try setUp(extra: "temprature: 3")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try runAmalgam(["dam", config, dir + "/out"])
        #expect(run.status != 0)
        #expect(run.err.contains("temprature") && run.err.contains("temperature") && run.err.contains("train_norms"), "\(run.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
    }

    @Test func damWithAFlagThatIsNotABooleanFailsSayingTrueOrFalse() throws {
        let (dir, config) = try setUp(extra: "train_norms: sometimes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try runAmalgam(["dam", config, dir + "/out"])
        #expect(run.status != 0)
        #expect(run.err.contains("train_norms") && run.err.contains("true or false"), "\(run.err)")
    }
}
