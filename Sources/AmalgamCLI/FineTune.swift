import AmalgamCheckpoint
import AmalgamCore
import AmalgamEval
import AmalgamJobs
import AmalgamModels
import AmalgamSearch
import AmalgamTokenizer
import ArgumentParser
import Foundation

/// `amalgam finetune MODEL DATA OUT`: next-token fine-tuning with AdamW, resumable bit for bit.
struct FineTune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Fine-tune a Llama-family model on text (next-token loss, AdamW), written as a Hugging Face folder.",
        discussion: """
            DATA is a .txt file (one document), a .jsonl file ({"text": ...} per line, or a language_modeling task
            file, whose header line is skipped) or a folder of them. --eval-data reads the same formats. Documents
            are tokenized with the model's tokenizer, joined with EOS after each and cut into sequences of --seq-len
            tokens. With --run-dir, a checkpoint (trainable weights, optimizer state, data position, generator state)
            is saved every --checkpoint-every steps; --resume continues from it exactly as if never interrupted.
            """
    )

    @Argument(help: "A Hugging Face model folder, a .safetensors file or a Llama .gguf file (read in place, dequantized to f32).")
    var model: String
    @Argument(help: "Training text: .txt, .jsonl, or a folder of them.")
    var data: String
    @Argument(help: "Output model folder (written when training ends).")
    var output: String

    @Option(help: "Tensors to train: 'all' or a regular expression over names (e.g. 'layers\\.(2[0-9])\\.mlp\\.').")
    var train = "all"
    @Option(help: "Peak learning rate.")
    var lr = 2e-5
    @Option(help: "Learning rate at the end of the cosine schedule.")
    var minLr = 0.0
    @Option(help: "Warm-up steps (linear from 0).")
    var warmup = 0
    @Option(help: "Schedule after warm-up: cosine or constant.")
    var schedule = "cosine"
    @Option(help: "Optimizer steps (default: --epochs passes over the data).")
    var steps: Int?
    @Option(help: "Passes over the data when --steps is not given.")
    var epochs = 1.0
    @Option(help: "Tokens per training sequence.")
    var seqLen = 512
    @Option(help: "Tokens per optimizer step (whole sequences).")
    var batchTokens = 8192
    @Option(help: "Tokens per forward/backward pass; gradients accumulate over passes (bounds memory).")
    var microBatchTokens = 2048
    @Option(help: "Decoupled weight decay of the weight matrices.")
    var weightDecay = 0.0
    @Option(help: "Global gradient-norm clipping (0: off).")
    var clip = 1.0
    @Option(help: "AdamW beta2.")
    var beta2 = 0.999
    @Option(help: "MoFO: update only this fraction of each tensor's entries (largest |momentum|) per step.")
    var mofo: Double?
    @Option(help: "Seed of the data order.")
    var seed: UInt64 = 0
    @Option(help: "Folder for checkpoints.")
    var runDir: String?
    @Option(help: "Save a checkpoint every N steps (with --run-dir; 0: only at the end).")
    var checkpointEvery = 50
    @Flag(help: "Continue from the checkpoint in --run-dir.")
    var resume = false
    @Option(help: "Stop after this step, saving a checkpoint, without writing OUT (resume later).")
    var stopAt: Int?
    @Option(help: "Held-out text: its loss and perplexity are reported before and after training.")
    var evalData: String?
    @Option(help: "At most this many held-out sequences.")
    var evalSequences = 32
    @Option(help: "Print a line every N steps.")
    var logEvery = 1
    @Flag(help: "Replace OUT if it exists.")
    var overwrite = false

    func validate() throws {
        guard ["cosine", "constant"].contains(schedule) else { throw ValidationError("--schedule must be cosine or constant") }
        guard seqLen >= 2, batchTokens >= 1, microBatchTokens >= 1 else { throw ValidationError("--seq-len, --batch-tokens and --micro-batch-tokens must be positive") }
        if let steps, steps <= 0 { throw ValidationError("--steps must be positive") }
        guard epochs > 0 else { throw ValidationError("--epochs must be positive") }
        if resume && runDir == nil { throw ValidationError("--resume needs --run-dir") }
        if stopAt != nil && runDir == nil { throw ValidationError("--stop-at needs --run-dir to save the checkpoint") }
        if let mofo, !(mofo > 0 && mofo <= 1) { throw ValidationError("--mofo must be in (0, 1]") }
    }

    func run() throws {
        relaunchWithOpenBLASCoreTypeIfNeeded()
        let start = Date()
        var job = FineTuneJob(model: model, data: data)
        job.evalData = evalData
        job.evalSequences = evalSequences
        job.sequenceLength = seqLen
        job.settings.trainable = train == "all" ? .all : .pattern(train)
        job.settings.learningRate = lr
        job.settings.minimumLearningRate = minLr
        job.settings.warmupSteps = warmup
        job.settings.cosine = schedule == "cosine"
        job.settings.steps = steps
        job.settings.epochs = epochs
        job.settings.batchTokens = batchTokens
        job.settings.microBatchTokens = microBatchTokens
        job.settings.optimizer = AdamWSettings(beta2: beta2, weightDecay: weightDecay, clipNorm: clip > 0 ? clip : nil, mofoFraction: mofo)
        job.settings.seed = seed
        job.runDirectory = runDir
        job.resume = resume
        job.checkpointEvery = checkpointEvery
        job.stopAt = stopAt

        // A line per --log-every steps on standard output; the live line only on a terminal.
        let progress = ProgressDisplay(label: "finetune", piped: false)
        let outcome = try job.run(output: output, overwrite: overwrite) { event in
            switch event {
            case let .data(documents, sequences, seconds):
                printError("data: \(documents) documents, \(sequences) sequences of \(seqLen) tokens (\(String(format: "%.1f", seconds)) s to tokenize)")
            case let .training(tensors, parameters, steps, sequencesPerStep):
                printError("training \(tensors) tensors (\(formatCount(parameters)) parameters), \(steps) steps of \(sequencesPerStep) sequences")
            case let .resumed(step, epoch, position):
                printError("resumed at step \(step) (epoch \(epoch), sequence \(position))")
            case let .heldOut(after, loss, tokens):
                progress.clear()
                printLine(String(format: "held-out %@: loss %.4f  perplexity %.3f  (%d tokens)", after ? "after" : "before", loss, exp(loss), tokens))
            case let .step(s, seconds, eta):
                let detail = String(format: "loss %.4f  lr %.3g  grad-norm %.3f  %.0f tok/s", s.loss, s.learningRate, s.gradientNorm,
                                    Double(s.tokens) / seconds)
                progress.update(done: s.step, total: s.totalSteps, unit: "steps", detail: detail, eta: eta)
                if s.step % max(1, logEvery) == 0 || s.step == s.totalSteps {
                    progress.clear()
                    printLine(String(format: "step %d/%d  %@  ETA %@", s.step, s.totalSteps, detail, formatDuration(eta)))
                }
            }
        }
        progress.clear()
        switch outcome {
        case let .stopped(step):
            printLine("stopped after step \(step); continue with --resume --run-dir \(runDir!)")
        case .finished:
            printLine("wrote \(output) (\(String(format: "%.1f", Date().timeIntervalSince(start))) s)")
        }
    }
}
