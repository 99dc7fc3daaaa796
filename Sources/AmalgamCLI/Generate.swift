import AmalgamModels
import ArgumentParser
import Foundation

/// `amalgam generate MODEL --ids '[...]'`: continue a prompt of token ids.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt of token ids with a model (greedy, or sampled with a seed); prints the new ids."
    )

    @Argument(help: "A model folder (config.json and safetensors).")
    var model: String

    @Option(help: "The prompt as a JSON array of token ids, e.g. '[1, 2, 3]'.")
    var ids: String

    @Option(help: "Tokens to generate at most.")
    var maxTokens = 32

    @Option(help: "0 is greedy; above 0, sample with this temperature.")
    var temperature: Float = 0

    @Option(help: "Nucleus sampling: keep the most likely tokens whose probabilities reach this.")
    var topP: Float = 1

    @Option(help: "Seed of the sampler: the same seed gives the same tokens.")
    var seed: UInt64 = 0

    @Option(help: "Extra stop token ids as a JSON array (the model's EOS ids always stop).")
    var stopIds: String?

    @Option(help: "A stop sequence of ids as a JSON array; generation ends once it is produced.")
    var stopSequence: String?

    func validate() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
    }

    func run() throws {
        relaunchWithOpenBLASCoreTypeIfNeeded()
        let prompt = try parseTokenIds(ids, what: "--ids")
        let options = SamplingOptions(
            maxTokens: maxTokens, temperature: temperature, topP: topP, seed: seed,
            stopTokenIds: try stopIds.map { try parseTokenIds($0, what: "--stop-ids") } ?? [],
            stopSequences: try stopSequence.map { [try parseTokenIds($0, what: "--stop-sequence")] } ?? [])
        let lm = try LlamaModel(folder: model)
        let start = Date()
        let generation = try lm.generate(prompt: prompt, options: options)
        let seconds = Date().timeIntervalSince(start)
        print("[" + generation.tokens.map(String.init).joined(separator: ", ") + "]")
        printError("\(generation.tokens.count) tokens in \(String(format: "%.2f", seconds)) s, stopped: \(generation.stopReason.rawValue)")
    }
}
