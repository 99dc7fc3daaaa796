import AmalgamCheckpoint
import AmalgamCore
import AmalgamEval
import AmalgamMerge
import AmalgamModels
import AmalgamTokenizer
import ArgumentParser
import Foundation

/// `amalgam eval MODEL TASK…`: run task files on a model and report lm-eval's metrics.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a model on task files (multiple choice, generation, language modelling); print a table, write per-example records.",
        discussion: "MODEL is a model folder, a .safetensors file, a .gguf file, or a merge config (.yml/.yaml), merged in memory without writing it. Writes OUT/TASK.jsonl (one record per example) and OUT/TASK.summary.json."
    )

    @Argument(help: "A model folder, a .gguf file, or a merge config YAML.")
    var model: String

    @Argument(help: "Task files (JSONL with a header line; see docs/evaluation.md).")
    var tasks: [String]

    @Option(help: "Evaluate at most N examples per task (a seeded sample, kept in file order).")
    var limit: Int?

    @Option(help: "Folder for the records and summaries (default: eval-results/MODEL_NAME).")
    var out: String?

    @Option(help: "Examples scored per model call (all choices of an example go in the same pass).")
    var batchSize = 16

    @Option(help: "Seed of few-shot draws and of the --limit sample (default: each task's header seed).")
    var seed: UInt64?

    @Option(help: "Seed of random merge methods when MODEL is a merge config.")
    var mergeSeed: UInt64 = 0

    @Option(help: "For tasks with \"chat_template\": true: a .jinja file or the name of one of the model's templates (default: the model's default template).")
    var chatTemplate: String?

    @Option(help: "For tasks with \"chat_template\": true: a system message before each prompt.")
    var system: String?

    @OptionGroup var weightsOption: WeightsOption

    @Flag(help: "No progress line.")
    var quiet = false

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        if let limit, limit < 1 { throw ValidationError("--limit must be positive") }
        guard !tasks.isEmpty else { throw ValidationError("give at least one task file") }
    }

    func run() throws {
        relaunchWithOpenBLASCoreTypeIfNeeded()
        let loaded = try tasks.map { try EvalTask(contentsOf: $0) }
        let names = loaded.map(\.spec.name)
        if let dup = names.first(where: { n in names.filter { $0 == n }.count > 1 }) {
            throw CLIInputError("two task files are both named '\(dup)' (their records would overwrite each other); rename one in its header")
        }
        let start = Date()
        let (lm, tokenizer, templates) = try EvalModelLoader.load(model, mergeSeed: mergeSeed, showProgress: !quiet,
                                                               precision: weightsOption.precision)
        let formatter = try loaded.contains(where: \.spec.chatTemplate)
            ? ChatTemplateFormatter(ChatPrompt(templates: templates, choice: chatTemplate, tokenizer: tokenizer.config, system: system, modelPath: model))
            : nil
        printError(String(format: "loaded %@ in %.1f s", model, Date().timeIntervalSince(start)))
        let outDir = out ?? "eval-results/" + ((model as NSString).lastPathComponent as NSString).deletingPathExtension
        var rows: [[String]] = []
        for task in loaded {
            let label = task.spec.name
            let progress = ProgressDisplay(label: label, enabled: !quiet)
            let options = EvaluationOptions(batchSize: batchSize, limit: limit, seed: seed, progress: { done, total in
                progress.update(done: done, total: total, unit: "examples")
            })
            let evaluator = Evaluator(model: lm, tokenizer: tokenizer, formatter: formatter, options: options)
            let t0 = Date()
            let report = try evaluator.evaluate(task: task)
            let seconds = Date().timeIntervalSince(t0)
            progress.finish()
            try report.write(into: outDir)
            printError(String(format: "%@: %d examples in %.1f s (%.2f examples/s)", label, report.results.count, seconds,
                              Double(report.results.count) / max(seconds, 1e-9)))
            for m in report.metrics {
                rows.append([label, m.name, String(format: "%.4f", m.value), m.stderr.map { String(format: "%.4f", $0) } ?? "N/A", "\(report.results.count)"])
            }
        }
        print(Self.table(header: ["task", "metric", "value", "± stderr", "n"], rows: rows), terminator: "")
        printError("records in \(outDir)/ (TASK.jsonl, TASK.summary.json); total \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
    }

    static func table(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { c in all.map { $0[c].count }.max()! }
        var out = ""
        for (i, row) in all.enumerated() {
            out += row.enumerated().map { c, cell in
                c >= 2 ? String(repeating: " ", count: widths[c] - cell.count) + cell : cell + String(repeating: " ", count: widths[c] - cell.count)
            }.joined(separator: "  ") + "\n"
            if i == 0 { out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n" }
        }
        return out
    }
}

/// Opens what `amalgam eval` takes as a model: a folder, a GGUF file, or a merge config merged in memory.
enum EvalModelLoader {
    static func load(_ path: String, mergeSeed: UInt64, showProgress: Bool,
                     precision: WeightPrecision = .native) throws -> (LlamaModel, Tokenizer, ChatTemplateSet) {
        let lower = path.lowercased()
        if lower.hasSuffix(".yml") || lower.hasSuffix(".yaml") {
            let stages = try MergeConfig.stages(contentsOf: path)
            guard stages.count == 1 else {
                throw CLIInputError("\(path): has \(stages.count) stages; evaluating in memory takes a single-stage config (run `amalgam merge` for the earlier stages first)")
            }
            let plan = try MergePlan(config: stages[0], seed: mergeSeed)
            let progress = ProgressDisplay(label: "merge", enabled: showProgress)
            let merged = try MergedModel(plan: plan, progress: { done, total in progress.update(done: done, total: total, unit: "tensors") })
            progress.finish()
            let extraEOS = merged.companionTexts["generation_config.json"].flatMap(eosIds) ?? []
            let lm = try LlamaModel(config: merged.config, weights: merged.checkpoint, extraEOSTokenIds: extraEOS, precision: precision)
            return (lm, try tokenizer(merged.companionTexts, what: path), try ChatTemplateSet(texts: merged.companionTexts, origin: path + ": "))
        }
        let opened = try LanguageModel(path: path, precision: precision)
        return (opened.model, opened.tokenizer, opened.templates)
    }

    /// `eos_token_id` of a generation_config.json text (a number or a list).
    static func eosIds(_ text: String) -> [Int]? {
        guard let e = (try? JSONValue.parse(text))?["eos_token_id"] else { return nil }
        return e.arrayValue?.compactMap(\.intValue) ?? e.intValue.map { [$0] }
    }

    /// A tokenizer from the texts of tokenizer.json and tokenizer_config.json.
    static func tokenizer(_ texts: [String: String], what: String) throws -> Tokenizer {
        guard let json = texts["tokenizer.json"] else { throw CLIInputError("\(what): no tokenizer.json to evaluate with") }
        let configPath = what + " (tokenizer_config.json)"
        let config = try texts["tokenizer_config.json"].map { try TokenizerConfig(json: try JSONValue.parse($0), path: configPath) } ?? TokenizerConfig()
        return try Tokenizer(json: try JSONValue.parse(json), path: what + " (tokenizer.json)", config: config)
    }
}
