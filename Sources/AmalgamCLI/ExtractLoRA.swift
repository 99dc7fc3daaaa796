import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import ArgumentParser
import Foundation

/// `amalgam extract-lora BASE FINETUNED OUT`: mergekit-extract-lora's adapter, by a truncated SVD.
struct ExtractLoRA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract-lora",
        abstract: "Extract a PEFT LoRA adapter that turns BASE into (an approximation of) FINETUNED.",
        discussion: """
            Each linear layer's delta (FINETUNED − BASE) is factorised by a truncated SVD (randomised, seeded) \
            into lora_A/lora_B of rank ≤ --max-rank; embeddings and norms are saved whole unless told otherwise, \
            as mergekit-extract-lora does. The adapter loads with PEFT (PeftModel.from_pretrained) and with \
            `amalgam merge` as MODEL+ADAPTER. The output folder appears only when complete. See docs/lora.md.

            Example:
              amalgam extract-lora models/base models/finetuned my-adapter --max-rank 32
            """
    )

    @Argument(help: "The base model (folder, .safetensors, .gguf or Hugging Face name; MODEL+ADAPTER works too).")
    var base: String

    @Argument(help: "The fine-tuned model, same architecture.")
    var finetuned: String

    @Argument(help: "The adapter folder to write.")
    var output: String

    @Option(help: "Largest rank of a module's factors.")
    var maxRank = 128

    @Flag(inversion: .prefixedNo, help: "Split √S between A and B (default) or put S into A.")
    var distributeScale = true

    @Flag(inversion: .prefixedNo, help: "Decompose the embeddings too (default: save them whole).")
    var embedLora = false

    @Option(help: "Save this module whole (full or last name, e.g. lm_head); repeatable.")
    var saveModule: [String] = []

    @Option(name: [.customShort("e"), .long], help: "Leave out modules whose name matches this regular expression; repeatable.")
    var excludeRegex: [String] = []

    @Option(name: [.customShort("i"), .long], help: "Decompose only modules whose name matches one of these regular expressions; repeatable.")
    var includeRegex: [String] = []

    @Option(help: "Drop singular values ≤ this (absolute), cutting a module's rank.")
    var svEpsilon = 0.0

    @Flag(help: "Leave out tensors that are not matrices (norms) instead of saving them whole.")
    var skipUndecomposable = false

    @Option(help: "Extra directions the randomised SVD samples beyond the rank.")
    var oversampling = 16

    @Option(help: "Power iterations of the randomised SVD (more: closer to the exact SVD, slower).")
    var powerIterations = 2

    @Option(help: "Seed of the randomised SVD. Same seed, same bytes.")
    var seed: UInt64 = 0

    @Flag(help: "Replace the output folder if it exists.")
    var overwrite = false

    @Flag(help: "No progress line and no per-module table.")
    var quiet = false

    func validate() throws {
        guard maxRank >= 1 else { throw ValidationError("--max-rank must be at least 1") }
        guard oversampling >= 0, powerIterations >= 0 else { throw ValidationError("--oversampling and --power-iterations must be ≥ 0") }
        guard svEpsilon >= 0 else { throw ValidationError("--sv-epsilon must be ≥ 0") }
    }

    func run() throws {
        let start = Date()
        let baseModel = try ModelSource.open(base)
        let fineTuned = try ModelSource.open(finetuned)
        let options = LoRAExtraction.Options(
            maxRank: maxRank, distributeScale: distributeScale, embedLoRA: embedLora, modulesToSave: saveModule,
            excludeRegexes: excludeRegex, includeRegexes: includeRegex, svEpsilon: svEpsilon, skipUndecomposable: skipUndecomposable,
            svd: TruncatedSVD.Settings(oversampling: oversampling, powerIterations: powerIterations, seed: seed))
        let extraction = try LoRAExtraction(base: baseModel, fineTuned: fineTuned, options: options)
        for warning in extraction.warnings { printError("warning: " + warning) }
        let progress = ProgressDisplay(label: "extract-lora", enabled: !quiet)
        let report = try extraction.write(to: output, overwrite: overwrite) { p in
            progress.update(done: p.done, total: p.total, unit: "modules", detail: p.module)
        }
        progress.finish()
        if !quiet {
            printLine("module\trank\trelative error")
            for m in report.modules { printLine(String(format: "%@\t%d\t%.6f", m.module, m.rank, m.relativeError)) }
        }
        for m in report.droppedModules { printError("warning: \(m): every singular value ≤ --sv-epsilon \(svEpsilon); left out (PEFT rejects rank 0)") }
        let errors = report.modules.map(\.relativeError).sorted()
        let median = errors.isEmpty ? 0 : errors[errors.count / 2]
        printError(String(format: "extracted %d modules (r = %d, median relative error %.4f, max %.4f), saved %d whole (%@) in %.1f s into %@",
                          report.modules.count, report.rank, median, errors.last ?? 0,
                          extraction.items.filter { $0.action == .save }.count, report.savedModules.joined(separator: ", "),
                          Date().timeIntervalSince(start), output))
    }
}
