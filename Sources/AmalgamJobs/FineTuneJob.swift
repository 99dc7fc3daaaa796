import AmalgamCheckpoint
import AmalgamCore
import AmalgamEval
import AmalgamModels
import AmalgamSearch
import Foundation

/// `amalgam finetune` as a job: opens the model (any source: folder, `.safetensors`, `.gguf` read in place),
/// tokenizes and packs the text, trains, checkpoints into a run folder and resumes from it, and writes the
/// trained model. It reports what happens through `Event`s; the command renders them.
public struct FineTuneJob {
    /// The model (a path or Hugging Face reference, opened by `ModelSource`).
    public var model: String
    /// Training text: a `.txt`, a `.jsonl` or a folder of them (`TrainingText`).
    public var data: String
    /// Held-out text, scored before and after training; at most `evalSequences` sequences of it.
    public var evalData: String?
    public var evalSequences = 32
    /// Tokens per training (and held-out) sequence.
    public var sequenceLength = 512
    public var settings = FineTuneSettings()
    /// The run folder (checkpoints), if any; `resume` continues the run it holds.
    public var runDirectory: String?
    public var resume = false
    /// A checkpoint every this many steps (0: only at the end, and at `stopAt`).
    public var checkpointEvery = 50
    /// Stop after this step, with a checkpoint, without writing the model (a later run resumes).
    public var stopAt: Int?

    /// What the job tells while it runs.
    public enum Event {
        /// The training text: documents read and the sequences packed from them, with the seconds it took.
        case data(documents: Int, sequences: Int, seconds: Double)
        /// What trains: tensors, their parameters, the steps and the sequences per step.
        case training(tensors: Int, parameters: Int, steps: Int, sequencesPerStep: Int)
        /// The run folder's state was restored: training continues after `step`.
        case resumed(step: Int, epoch: Int, position: Int)
        /// Mean next-token loss over the held-out tokens, before or after training.
        case heldOut(after: Bool, loss: Double, tokens: Int)
        /// A step done, its seconds, and the estimated seconds left.
        case step(FineTuneStep, seconds: Double, eta: Double)
    }

    /// How a run ended.
    public enum Outcome: Equatable {
        /// Training finished and the model was written.
        case finished
        /// Stopped at `stopAt` with a checkpoint; the model was not written.
        case stopped(step: Int)
    }

    public init(model: String, data: String) {
        self.model = model
        self.data = data
    }

    /// Runs the job, writing the model into `output` (a folder that appears only when complete) when training ends.
    public func run(output: String, overwrite: Bool, event: (Event) -> Void) throws -> Outcome {
        let source = try ModelSource.open(model)
        let lm = try LlamaModel(source: source)
        let tokenizer = try LanguageModel.tokenizer(of: source)
        guard let eos = lm.eosTokenIds.first ?? tokenizer.eosTokenId else {
            throw TrainingError.badData(path: model, reason: "no eos_token_id in config.json or the tokenizer; documents need an end token")
        }
        let start = Date()
        let docs = try TrainingText.documents(at: data)
        let packed = try PackedSequences(documents: tokenizer.encodeBatch(docs), eos: eos, length: sequenceLength, source: data)
        event(.data(documents: docs.count, sequences: packed.count, seconds: Date().timeIntervalSince(start)))

        let run = try FineTuning(model: lm, data: packed, settings: settings)
        event(.training(tensors: run.trainer.parameters.count, parameters: run.trainer.parameters.reduce(0) { $0 + $1.count },
                        steps: run.totalSteps, sequencesPerStep: run.sequencesPerStep))
        // The run folder's store; one process at a time continues it (another one still running is named and refused).
        let folder = try runDirectory.map { try FineTuneRunFolder(path: $0, run: run, resume: resume) }
        defer { withExtendedLifetime(folder) {} }
        if let folder, folder.resumed {
            event(.resumed(step: run.step, epoch: run.epoch, position: run.position))
        }

        var heldOut: [[Int]] = []
        if let evalData {
            let evalDocs = try TrainingText.documents(at: evalData)
            let evalPacked = try PackedSequences(documents: tokenizer.encodeBatch(evalDocs), eos: eos, length: sequenceLength, source: evalData)
            heldOut = (0..<min(evalSequences, evalPacked.count)).map { evalPacked[$0] }
            if run.step == 0 {
                let total = try run.evaluate(heldOut)
                event(.heldOut(after: false, loss: total.mean, tokens: total.count))
            }
        }

        let began = Date()
        let firstStep = run.step
        while !run.isFinished {
            let stepStart = Date()
            let s = try run.trainStep()
            folder?.note(s)
            let eta = Date().timeIntervalSince(began) / Double(s.step - firstStep) * Double(s.totalSteps - s.step)
            event(.step(s, seconds: Date().timeIntervalSince(stepStart), eta: eta))
            let stopping = stopAt.map { s.step >= $0 } ?? false
            if let folder, (checkpointEvery > 0 && s.step % checkpointEvery == 0) || run.isFinished || stopping {
                try folder.save(run)
            }
            if stopping && !run.isFinished { return .stopped(step: s.step) }
        }
        if !heldOut.isEmpty {
            let total = try run.evaluate(heldOut)
            event(.heldOut(after: true, loss: total.mean, tokens: total.count))
        }
        try run.writeModel(to: output, from: source, overwrite: overwrite)
        return .finished
    }
}
