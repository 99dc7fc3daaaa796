import AmalgamCheckpoint
import AmalgamCore
import AmalgamEval
import AmalgamModels
import AmalgamTokenizer
import ArgumentParser
import Foundation

/// `amalgam generate MODEL --prompt TEXT [--chat]` or `--ids '[...]'`: continue a prompt.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt with a model (greedy, or sampled with a seed).",
        discussion: """
        With --prompt the text is tokenized with the model's tokenizer (--chat first renders it with the model's \
        chat template, as transformers' apply_chat_template does) and the continuation is streamed to standard \
        output as it is generated; special tokens are not printed. With --ids the new token ids are printed.
        """
    )

    @Argument(help: "A model folder (config.json, safetensors, tokenizer.json), a .safetensors file or a Llama .gguf file.")
    var model: String

    @Option(help: "The prompt as text.")
    var prompt: String?

    @Flag(help: "Render --prompt as a user message with the model's chat template (and the generation prompt).")
    var chat = false

    @Option(help: "With --chat: a system message before the user's.")
    var system: String?

    @Option(help: "With --chat: a .jinja file, or the name of one of the model's named templates, instead of its default template.")
    var chatTemplate: String?

    @Option(help: "The prompt as a JSON array of token ids, e.g. '[1, 2, 3]' (prints ids instead of text).")
    var ids: String?

    @OptionGroup var weightsOption: WeightsOption

    @Option(help: "Tokens to generate at most.")
    var maxTokens = 32

    @Option(help: "0 is greedy; above 0, sample with this temperature.")
    var temperature: Float = 0

    @Option(help: "Nucleus sampling: keep the most likely tokens whose probabilities reach this.")
    var topP: Float = 1

    @Option(help: "Seed of the sampler: the same seed gives the same tokens.")
    var seed: UInt64 = 0

    @Option(help: "With --prompt: stop when the text contains this (not printed). Repeatable.")
    var stop: [String] = []

    @Option(help: "Extra stop token ids as a JSON array (the model's EOS ids always stop).")
    var stopIds: String?

    @Option(help: "A stop sequence of ids as a JSON array; generation ends once it is produced.")
    var stopSequence: String?

    func validate() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard (prompt == nil) != (ids == nil) else { throw ValidationError("give either --prompt TEXT or --ids '[…]'") }
        if prompt == nil && (chat || system != nil || chatTemplate != nil || !stop.isEmpty) {
            throw ValidationError("--chat, --system, --chat-template and --stop need --prompt")
        }
        if !chat && (system != nil || chatTemplate != nil) { throw ValidationError("--system and --chat-template need --chat") }
    }

    func run() throws {
        relaunchWithOpenBLASCoreTypeIfNeeded()
        let options = SamplingOptions(
            maxTokens: maxTokens, temperature: temperature, topP: topP, seed: seed,
            stopTokenIds: try stopIds.map { try parseTokenIds($0, what: "--stop-ids") } ?? [],
            stopSequences: try stopSequence.map { [try parseTokenIds($0, what: "--stop-sequence")] } ?? [])
        if let ids {
            let lm = try LlamaModel(folder: model, precision: weightsOption.precision)
            let start = Date()
            let generation = try lm.generate(prompt: try parseTokenIds(ids, what: "--ids"), options: options)
            print("[" + generation.tokens.map(String.init).joined(separator: ", ") + "]")
            report(generation, seconds: Date().timeIntervalSince(start))
            return
        }
        let bundle = try LanguageModel(path: model, precision: weightsOption.precision)
        let promptIds = try encodePrompt(bundle)
        let start = Date()
        let silent = Set(bundle.model.eosTokenIds + options.stopTokenIds)
        var decoder = StreamingDecoder(tokenizer: bundle.tokenizer, context: promptIds)
        var filter = StopStringFilter(stops: stop)
        let out = FileHandle.standardOutput
        let generation = try bundle.model.generate(prompt: promptIds, options: options) { token in
            guard !silent.contains(token) else { return true }
            let (text, stopped) = filter.feed(decoder.append(token))
            if !text.isEmpty { out.write(Data(text.utf8)) }
            return !stopped
        }
        if generation.stopReason != .stopString {
            let (text, _) = filter.feed(decoder.finish())
            out.write(Data((text + filter.finish()).utf8))
        }
        out.write(Data("\n".utf8))
        report(generation, seconds: Date().timeIntervalSince(start))
    }

    /// The prompt's ids: the chat template's text without added special tokens (the template writes
    /// them), or the plain text with the tokenizer's own (its post-processor's BOS, if any).
    private func encodePrompt(_ bundle: LanguageModel) throws -> [Int] {
        let text = prompt ?? ""
        guard chat else { return bundle.tokenizer.encode(text, addSpecialTokens: true) }
        let chatPrompt = try ChatPrompt(templates: bundle.templates, choice: chatTemplate, tokenizer: bundle.tokenizer.config,
                                        system: system, modelPath: bundle.source.path)
        let rendered = try chatPrompt.render(user: text)
        return bundle.tokenizer.encode(rendered, addSpecialTokens: false)
    }

    private func report(_ generation: Generation, seconds: Double) {
        let rate = seconds > 0 ? Double(generation.tokens.count) / seconds : 0
        printError("\(generation.tokens.count) tokens in \(String(format: "%.2f", seconds)) s (\(String(format: "%.1f", rate)) tokens/s, prompt included), stopped: \(generation.stopReason.rawValue)")
    }
}
