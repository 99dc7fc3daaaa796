import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import ArgumentParser
import Foundation

/// `amalgam merge CONFIG OUT_DIR`: run a mergekit-style merge config.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge models as a mergekit YAML config describes, streaming tensor by tensor.",
        discussion: "The output folder appears only when the merge is complete."
    )

    @Argument(help: "The merge config (mergekit YAML).")
    var config: String

    @Argument(help: "The output model folder.")
    var output: String?

    @Option(help: "Seed for random methods (dare, della, …). Same seed, same bytes.")
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp(
        "exact (default): compute in f32 and round once to the output dtype. mergekit: follow mergekit 0.1.5's arithmetic in the config's `dtype:` (bfloat16, float16), rounding every intermediate where torch does, to re-make a published merge from its mergekit_config.yml byte for byte. Which methods then give mergekit's bytes, which do only in part and why: docs/mergekit-differences.md.",
        valueName: "exact|mergekit"))
    var arithmetic = "exact"

    @Option(help: ArgumentHelp(
        "How the experts of Mixtral, Qwen2-MoE and Qwen3-MoE checkpoints are merged. fused (default): as mergekit 0.1.5 with transformers 5 does: one tensor per layer and projection, mlp.experts.gate_up_proj [experts, 2·intermediate, hidden] and mlp.experts.down_proj [experts, hidden, intermediate], so per-tensor statistics (TIES/breadcrumbs top-k, slerp and model_stock norms, DELLA ranks, ...) are taken over all experts together, and the output has these fused names. per-expert: each stored tensor (experts.N.w1.weight, ...) merged alone, statistics per expert, names as stored. docs/moe.md.",
        valueName: "fused|per-expert"))
    var moeExperts = "fused"

    @Flag(help: "Print the plan (inputs and parameters of every output tensor) without merging.")
    var dryRun = false

    @Flag(help: "Merge embeddings of different vocabulary sizes by cutting them to the common rows (mergekit's flag of the same name). Prefer tokenizer_source.")
    var unsafeTruncateEmbeddings = false

    @Flag(help: "No progress line.")
    var quiet = false

    @Option(help: "Output format: safetensors (a model folder) or gguf (one llama.cpp file; Llama models).")
    var outFormat = "safetensors"

    @Option(help: "Tensor type of a GGUF output: f32, f16, bf16 or q8_0.")
    var outType = "q8_0"

    @OptionGroup var out: ModelOutputOptions

    func validate() throws {
        guard ["safetensors", "gguf"].contains(outFormat) else { throw ValidationError("--out-format must be safetensors or gguf") }
        guard GGMLType(name: outType) != nil else { throw ValidationError("--out-type must be one of f32, f16, bf16, q8_0") }
        guard MergeArithmetic(rawValue: arithmetic) != nil else { throw ValidationError("--arithmetic must be exact or mergekit, not `\(arithmetic)`") }
        guard MoEExperts(rawValue: moeExperts) != nil else { throw ValidationError("--moe-experts must be fused or per-expert, not `\(moeExperts)`") }
    }

    func run() throws {
        // Keep freed tensor buffers in the heap for the next tensor instead of returning them to the
        // kernel: fresh pages fault on first touch, which costs more than the merge arithmetic here.
        _ = mallopt(mallocMmapThreshold, 1 << 30)
        _ = mallopt(mallocTrimThreshold, 1 << 30)
        let shardSize = try out.shardSize()
        let stages = try MergeConfig.stages(contentsOf: config)
        for warning in stages.flatMap(\.warnings) { printError("warning: " + warning) }
        for (i, stage) in stages.enumerated() {
            let isLast = i == stages.count - 1
            let destination = (isLast ? output : nil) ?? stage.outPath
            if !dryRun && destination == nil { throw ValidationError("give an output folder (or --dry-run)") }
            if stages.count > 1 { printError("stage \(i + 1)/\(stages.count)\(stage.name.map { " (\($0))" } ?? "") → \(destination ?? "-")") }
            let plan = try MergePlan(config: stage, seed: seed, truncateEmbeddings: unsafeTruncateEmbeddings,
                                     arithmetic: MergeArithmetic(rawValue: arithmetic)!, moeExperts: MoEExperts(rawValue: moeExperts)!)
            if dryRun {
                print(PlanReport.text(plan), terminator: "")
                continue
            }
            let progress = ProgressDisplay(label: "merge", enabled: !quiet)
            let start = Date()
            if outFormat == "gguf" {
                try mergeToGGUF(plan, destination: destination!, shardSize: shardSize, progress: progress)
            } else {
                var options = MergeOptions(outputPath: destination!, maxShardSize: shardSize, overwrite: out.overwrite)
                options.durability = out.durability
                options.progress = { p in progress.update(p) }
                try MergeExecutor(plan: plan).run(options)
                progress.finish()
            }
            let seconds = Date().timeIntervalSince(start)
            printError(String(format: "merged %d tensors (%@ read, %@ written) in %.1f s into %@",
                              plan.steps.count, formatBytes(plan.inputBytes), formatBytes(plan.outputBytes), seconds, destination!))
        }
    }
}

extension Merge {
    /// Merges into a folder, then converts it tensor by tensor into the GGUF at `destination`. Both are
    /// written inside the GGUF's one working folder, so a kill at any moment leaves a single leftover,
    /// which the next run into `destination` removes.
    func mergeToGGUF(_ plan: MergePlan, destination: String, shardSize: Int, progress: ProgressDisplay) throws {
        let gguf = try AtomicOutput(path: destination, overwrite: out.overwrite, kind: .file)
        do {
            let folder = gguf.workingFolder + "/merged"
            var options = MergeOptions(outputPath: folder, maxShardSize: shardSize, overwrite: false)
            // The folder is deleted after: only the GGUF needs to reach the disk.
            options.durability = .process
            options.progress = { p in progress.update(p) }
            try MergeExecutor(plan: plan).run(options)
            progress.finish()
            let name = ((destination as NSString).lastPathComponent as NSString).deletingPathExtension
            // A GGUF tokenizer donor keeps its tokenizer.ggml.pre; a folder's tokenizer is identified as llama.cpp does.
            let donor = plan.models[plan.vocabulary?.tokenizerDonor ?? plan.donor]
            let pre = try llamaCppPreTokenizer(folder: folder, kept: try ggufPreTokenizer(of: donor.path))
            try GGUFLlamaConvert.toGGUF(folder: folder, output: gguf.workingPath, type: GGMLType(name: outType)!, name: name,
                                        preTokenizer: pre, overwrite: true)
            try gguf.commit()
        } catch {
            gguf.abandon()
            // A full disk is reported for the file the user named, not the working copy.
            if case .checkpoint(.file(.noSpace)) = error as? MergeError {
                throw FileError.noSpace(path: gguf.finalPath, needed: nil, free: freeBytes(near: gguf.finalPath))
            }
            if case .file(.noSpace) = error as? CheckpointError {
                throw FileError.noSpace(path: gguf.finalPath, needed: nil, free: freeBytes(near: gguf.finalPath))
            }
            throw error
        }
    }
}

/// The plan as `--dry-run` prints it.
enum PlanReport {
    static func text(_ plan: MergePlan) -> String {
        var out = "method: \(plan.method.name)\n"
        out += "models:\n"
        for (i, m) in plan.models.enumerated() { out += "  [\(i)] \(m.reference)\(i == plan.donor ? "  (config and tokenizer donor)" : "")\n" }
        out += "output: \(plan.steps.count) tensors, \(formatBytes(plan.outputBytes)); reads \(formatBytes(plan.inputBytes))\n"
        for s in plan.steps {
            out += "\(s.outputName) \(s.outputDType.rawValue) \(s.outputShape)"
            if !s.parameters.values.isEmpty { out += "  {" + describe(s.parameters) + "}" }
            out += "\n"
            for (j, input) in s.inputs.enumerated() {
                out += "    ← [\(input.model)] \(input.tensorName)"
                if input.segments.count > 1 { out += " (fused from \(input.segments.count) tensors: \(input.segments[0]), …)" }
                if j == s.baseIndex { out += " (base)" }
                if !input.parameters.values.isEmpty { out += "  {" + describe(input.parameters) + "}" }
                out += "\n"
            }
        }
        return out
    }

    private static func describe(_ p: Parameters) -> String {
        p.values.keys.sorted().map { "\($0): \(p.values[$0]!)" }.joined(separator: ", ")
    }
}

extension ProgressDisplay {
    /// A merge's progress: tensors done, bytes written and their rate; the ETA from the bytes left.
    func update(_ p: MergeProgress) {
        let rate = p.secondsElapsed > 0 ? Double(p.bytesDone) / p.secondsElapsed : 0
        update(done: p.tensorsDone, total: p.tensorsTotal, unit: "tensors",
               detail: "\(formatBytes(p.bytesDone)) / \(formatBytes(p.bytesTotal)) · \(formatBytes(Int(rate)))/s",
               eta: rate > 0 ? Double(p.bytesTotal - p.bytesDone) / rate : nil)
    }
}

func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}

/// glibc's `mallopt` (not exported by the Glibc module) and its parameters from <malloc.h>.
@_silgen_name("mallopt") private func mallopt(_ parameter: Int32, _ value: Int32) -> Int32
private let mallocTrimThreshold: Int32 = -1
private let mallocMmapThreshold: Int32 = -3
