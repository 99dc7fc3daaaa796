import AmalgamCheckpoint
import AmalgamCore
import AmalgamEval
import AmalgamMerge
import ArgumentParser
import Foundation

/// `amalgam moe CONFIG OUT`: mergekit-moe's mixture of experts from dense models.
struct MoE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "moe",
        abstract: "Build a mixture-of-experts model from dense models, as a mergekit-moe YAML config describes.",
        discussion: """
            Every tensor outside the MLPs comes from base_model; each layer's MLP from every expert; the router \
            rows come from the prompts (gate_mode hidden, hidden_avg or cheap_embed) or a seeded generator \
            (random, uniform_random). Output layouts: Mixtral (llama/mistral inputs), Qwen MoE (qwen2_moe, one \
            shared expert) and Qwen3 MoE (qwen3 inputs), as transformers 5 loads them. The output folder \
            appears only when complete. See docs/moe.md.

            Example (moe.yml):
              base_model: models/base
              gate_mode: hidden
              dtype: bfloat16
              experts:
                - source_model: models/coder
                  positive_prompts: ["Write a Python function"]
                - source_model: models/writer
                  positive_prompts: ["Write a short story"]

              amalgam moe moe.yml my-moe
            """
    )

    @Argument(help: "The mergekit-moe config (YAML).")
    var config: String

    @Argument(help: "The output model folder.")
    var output: String

    @Option(help: "Seed of gate_mode random/uniform_random and of noise_scale. Same seed, same bytes.")
    var seed: UInt64 = 0

    @Flag(name: .customLong("i-understand-this-is-not-useful-without-training"),
          help: "Allow every expert to be the same model (mergekit's flag).")
    var allowIdenticalExperts = false

    @OptionGroup var out: ModelOutputOptions

    @Flag(help: "No progress line.")
    var quiet = false

    func run() throws {
        let start = Date()
        let shardSize = try out.shardSize()
        let text = try String(contentsOfFile: config, encoding: .utf8)
        let moe = try MoEConfig(yaml: text, path: config)
        try moe.validate(allowIdenticalSources: allowIdenticalExperts)
        let assembly = try MoEAssembly(config: moe)
        printError("moe: \(assembly.architecture.rawValue) with \(moe.experts.count) experts (\(moe.experts.count > 0 ? moe.expertsPerToken : 0) per token), \(assembly.layers) layers, gate_mode \(moe.gateMode.rawValue), \(assembly.outputDType.torchName)")
        let prompts = moe.gatedExperts.map { RouterGates.Prompts(positive: $0.positivePrompts, negative: $0.negativePrompts) }
        let gateProgress = ProgressDisplay(label: "moe gates", enabled: !quiet)
        let gates = try RouterGates.compute(mode: mode(moe.gateMode), base: assembly.base, experts: prompts, seed: seed) { done, total in
            gateProgress.update(done: done, total: total, unit: "layers")
        }
        gateProgress.finish()
        let writeProgress = ProgressDisplay(label: "moe", enabled: !quiet)
        try assembly.write(to: output, gates: gates, configText: text, seed: seed, overwrite: out.overwrite, maxShardSize: shardSize,
                           durability: out.durability) { p in
            writeProgress.update(done: p.done, total: p.total, unit: "tensors", detail: p.tensor)
        }
        writeProgress.finish()
        printError(String(format: "wrote %@ (%@, %d experts) in %.1f s", output, assembly.architecture.rawValue, moe.experts.count, Date().timeIntervalSince(start)))
    }

    private func mode(_ m: MoEConfig.GateMode) -> RouterGates.Mode {
        switch m {
        case .hidden, .hiddenLast: return .hiddenLast
        case .hiddenAverage: return .hiddenAverage
        case .cheapEmbed: return .cheapEmbed
        case .random: return .random
        case .uniformRandom: return .uniformRandom
        }
    }
}
