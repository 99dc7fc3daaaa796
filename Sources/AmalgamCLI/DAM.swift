import AmalgamSearch
import ArgumentParser
import Foundation

/// `amalgam dam CONFIG.yml OUT_DIR`: DAM over Llama-family models, resumable, exported as a Hugging Face folder.
struct DAMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dam",
        abstract: "Differentiable Adaptive Merging of Llama-family models: learn per-column merge coefficients by distillation.",
        discussion: """
            CONFIG.yml lists the source models (Hugging Face folders or Llama .gguf files), each with its own training
            text (.txt, .jsonl of {"text": ...} or a folder of them), and the optimisation settings (docs/dam.md
            documents every key). The coefficients of every linear layer are learned so that the
            merged model reproduces each source on that source's text (KL at temperature T). The run folder
            (run_dir, default OUT_DIR.dam-run) holds the state; --resume continues it exactly. OUT_DIR is a Hugging
            Face folder (config and tokenizer copied from base_model or the first model) plus coefficients.safetensors.
            """
    )

    @Argument(help: "The DAM configuration (YAML).")
    var config: String
    @Argument(help: "Output model folder (written when training ends).")
    var output: String
    @Flag(help: "Continue the run saved in the run folder.")
    var resume = false
    @Option(help: "Stop after this step, saving the state, without writing OUT_DIR (continue with --resume).")
    var stopAt: Int?
    @Option(help: "Print a line every N steps.")
    var logEvery = 1
    @Flag(help: "Replace OUT_DIR if it exists.")
    var overwrite = false

    func validate() throws {
        if let stopAt, stopAt < 1 { throw ValidationError("--stop-at must be at least 1") }
        guard logEvery >= 1 else { throw ValidationError("--log-every must be at least 1") }
    }

    func run() throws {
        relaunchWithOpenBLASCoreTypeIfNeeded()
        if !overwrite && FileManager.default.fileExists(atPath: output) {
            throw CLIInputError("\(output) exists; pass --overwrite to replace it")
        }
        let start = Date()
        let settings = try DAMLlamaSettings(path: config)
        let run = try DAMLlamaRun(settings: settings, output: output, resume: resume) { printError($0) }
        let trainer = run.trainer
        let coefficientCount = trainer.layout.count
        let kinds = run.family.kinds
        let linear = kinds.filter { $0 == .linear }.count, norms = kinds.filter { $0 == .norm }.count
        var tensors = "\(linear) linear layers"
        if kinds.contains(.embedding) { tensors += ", the embedding" }
        if norms > 0 { tensors += ", \(norms) norm weights" }
        printError("DAM: \(settings.sources.count) models, \(tensors), \(formatCount(coefficientCount)) coefficients; "
                   + "\(settings.dam.steps) steps of \(settings.dam.batchSize) × \(settings.sequenceLength) tokens per model; run folder \(run.runFolder.path)")
        if trainer.step > 0 { printError("resumed at step \(trainer.step)") }
        // A line per --log-every steps on standard output; the live line only on a terminal.
        let progress = ProgressDisplay(label: "dam", piped: false)
        let began = Date(), firstStep = trainer.step
        var stepStart = Date()
        try trainer.run(runFolder: run.runFolder, until: stopAt) { p in
            let now = Date()
            let seconds = now.timeIntervalSince(stepStart)
            stepStart = now
            let eta = now.timeIntervalSince(began) / Double(p.step - firstStep) * Double(p.steps - p.step)
            let kl = p.loss.kl.map { String(format: "%.4f", $0) }.joined(separator: " ")
            let detail = String(format: "loss %.4f  (KL %@, cos %.4f)  %.0f tok/s", p.loss.total, kl,
                                p.loss.similarity, Double(run.tokensPerStep) / max(seconds, 1e-9))
            progress.update(done: p.step, total: p.steps, unit: "steps", detail: detail, eta: eta)
            if p.step % logEvery == 0 || p.step == p.steps {
                progress.clear()
                printLine(String(format: "step %d/%d  %@  ETA %@", p.step, p.steps, detail, formatDuration(eta)))
            }
        }
        progress.clear()
        if trainer.step < settings.dam.steps {
            printLine("stopped after step \(trainer.step); continue with --resume")
            return
        }
        try run.export(to: output, overwrite: overwrite)
        printLine("wrote \(output) (\(String(format: "%.1f", Date().timeIntervalSince(start))) s)")
    }
}
