import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam moe` as a user runs it, against mergekit-moe 0.1.5's output for the same configs
/// (fixtures/moe, made by scripts/fixtures/make_moe_fixtures.py).
@Suite(.requires(amalgamProgram))
struct MoECommandTests {
    let moe = fixturesDirectory + "/moe"

    enum Gates { case exact, hidden, random }

    /// Runs a fixture config and compares with mergekit's output: every tensor but the routers identical,
    /// the routers as `gates` says, and the MoE keys of config.json equal.
    func checkAgainstMergekit(_ name: String, gates: Gates) throws {
        let dir = temporaryFolder(name)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try runAmalgam(["moe", moe + "/configs/\(name).yml", dir + "/out", "--quiet"])
        #expect(run.status == 0, "\(run.err)")
        guard run.status == 0 else { return }
        let ours = try ModelFolder.openWeights(folder: dir + "/out")
        let theirs = try ModelFolder.openWeights(folder: moe + "/expected/\(name)")
        #expect(Set(ours.tensorNames) == Set(theirs.tensorNames))
        let f32 = gates == .hidden ? try SafetensorsFile(path: moe + "/expected/\(name)/gates-f32.safetensors") : nil
        for info in theirs.tensorInfos {
            guard let mine = ours.info(info.name) else { continue }
            #expect(mine.dtype == info.dtype && mine.shape == info.shape, "\(info.name): \(mine) vs mergekit \(info)")
            let a = try ours.tensor(info.name).floats(), b = try theirs.tensor(info.name).floats()
            let router = info.name.hasSuffix("mlp.gate.weight") || info.name.hasSuffix("shared_expert_gate.weight")
            if !router {
                #expect(a == b, "\(info.name) differs from mergekit's")
                continue
            }
            switch gates {
            case .exact:
                // mergekit sums the same f32 embedding rows in another order.
                let d = zip(a, b).map { abs($0 - $1) }.max() ?? 0
                #expect(d <= 1e-6, "\(info.name): cheap_embed gate differs from mergekit's by \(d)")
            case .hidden:
                // mergekit runs the base in bf16; the engine in f32: rows agree in direction, and to f32
                // rounding with transformers' float32 forward.
                let H = info.shape[1]
                for r in 0..<info.shape[0] {
                    let x = a[(r * H)..<((r + 1) * H)], y = b[(r * H)..<((r + 1) * H)]
                    let dot = zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                    let nx = x.reduce(0.0) { $0 + Double($1) * Double($1) }, ny = y.reduce(0.0) { $0 + Double($1) * Double($1) }
                    let cosine = dot / (nx * ny).squareRoot()
                    #expect(cosine >= 0.999, "\(info.name) row \(r): cosine \(cosine) with mergekit's bf16 gate")
                }
                let reference = try f32!.tensor(info.name).floats()
                let d = zip(a, reference).map { abs($0 - $1) }.max() ?? 0
                #expect(d <= 1e-4, "\(info.name): differs from transformers' float32 gate by \(d)")
            case .random:
                break
            }
        }
        let mine = try JSONValue.parse(String(contentsOfFile: dir + "/out/config.json", encoding: .utf8)).objectValue ?? JSONObject()
        let reference = try JSONValue.parse(String(contentsOfFile: moe + "/expected/\(name)/config.json", encoding: .utf8)).objectValue ?? JSONObject()
        for key in ["architectures", "model_type", "num_local_experts", "num_experts", "num_experts_per_tok",
                    "moe_intermediate_size", "shared_expert_intermediate_size", "norm_topk_prob", "dtype"] {
            #expect(mine[key] == reference[key], "config.json \(key): \(String(describing: mine[key])) vs mergekit \(String(describing: reference[key]))")
        }
        let tokenizerConfig = try String(contentsOfFile: dir + "/out/tokenizer_config.json", encoding: .utf8)
        #expect(tokenizerConfig.contains("\"padding_side\": \"left\""), "\(tokenizerConfig)")
        #expect(FileManager.default.fileExists(atPath: dir + "/out/mergekit_moe_config.yml"))
    }

    @Test func mixtralWithCheapEmbedGatesMatchesMergekit() throws {
        try checkAgainstMergekit("mixtral-cheap-embed", gates: .exact)
    }

    @Test func mixtralWithHiddenStateGatesMatchesMergekit() throws {
        try checkAgainstMergekit("mixtral-hidden", gates: .hidden)
    }

    @Test func mixtralInBFloat16WithRandomGatesHasMergekitsExperts() throws {
        try checkAgainstMergekit("mixtral-random-bf16", gates: .random)
    }

    @Test func qwen2MoEWithASharedExpertMatchesMergekit() throws {
        try checkAgainstMergekit("qwen2-moe-hidden", gates: .hidden)
    }

    @Test func qwen3MoEWithCheapEmbedGatesMatchesMergekit() throws {
        try checkAgainstMergekit("qwen3-moe-cheap-embed", gates: .exact)
    }

    @Test func qwen3MoEWithHiddenStateGatesMatchesMergekit() throws {
        try checkAgainstMergekit("qwen3-moe-hidden", gates: .hidden)
    }

    @Test func randomGatesFollowTheSeed() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = moe + "/configs/mixtral-random-bf16.yml"
        for (out, seed) in [("a", "7"), ("b", "7"), ("c", "8")] {
            let run = try runAmalgam(["moe", config, dir + "/" + out, "--seed", seed, "--quiet"])
            #expect(run.status == 0, "\(run.err)")
        }
        let a = try fileBytes(dir + "/a/model.safetensors"), b = try fileBytes(dir + "/b/model.safetensors")
        let c = try fileBytes(dir + "/c/model.safetensors")
        #expect(a == b)
        #expect(a != c)
    }

    @Test func moeHelpShowsAnExample() throws {
        let run = try runAmalgam(["moe", "--help"])
        #expect(run.status == 0)
        #expect(run.out.contains("amalgam moe moe.yml my-moe"), "\(run.out)")
        #expect(run.out.contains("gate_mode"))
    }

    @Test func moeConfigErrorsNameTheKey() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let models = moe + "/models"
        let cases: [(String, String)] = [
            ("base_model: \(models)/base\ngate_mode: hiden\nexperts:\n- source_model: \(models)/math\n  positive_prompts: [a]\n- source_model: \(models)/prose\n  positive_prompts: [b]\n",
             "gate_mode"),
            ("base_model: \(models)/base\ngate_mode: cheap_embed\nexperts:\n- source_model: \(models)/math\n  positive_prompts: [a]\n",
             "fewer than experts_per_token"),
            ("base_model: \(models)/base\ngate_mode: cheap_embed\nexperts:\n- source_model: \(models)/math\n  positive_prompts: [a]\n- source_model: \(models)/prose\n",
             "experts[1].positive_prompts"),
            ("base_model: \(models)/base\ngate_mode: random\narchitecture: mixtral\nexperts:\n- source_model: \(models)/math\n- source_model: \(models)/prose\nshared_experts:\n- source_model: \(models)/code\n",
             "no shared experts"),
            ("base_model: \(models)/q3-base\ngate_mode: random\nexperts:\n- source_model: \(models)/math\n- source_model: \(models)/prose\n",
             "no output architecture fits"),
        ]
        for (i, (yaml, message)) in cases.enumerated() {
            try yaml.write(toFile: dir + "/\(i).yml", atomically: true, encoding: .utf8)
            let run = try runAmalgam(["moe", dir + "/\(i).yml", dir + "/out\(i)", "--quiet"])
            #expect(run.status != 0, "case \(i) should fail")
            #expect(run.err.contains(message), "case \(i): \(run.err)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out\(i)"), "case \(i) left an output")
        }
    }

    @Test func moeIntoAnExistingFolderIsRefusedWithoutOverwrite() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
        let run = try runAmalgam(["moe", moe + "/configs/mixtral-cheap-embed.yml", dir + "/out", "--quiet"])
        #expect(run.status != 0)
        #expect(run.err.contains(dir + "/out"), "\(run.err)")
    }
}
