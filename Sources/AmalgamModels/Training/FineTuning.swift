import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// How a fine-tuning run trains.
public struct FineTuneSettings: Sendable, Equatable {
    /// Which tensors train.
    public var trainable: TrainableSelection = .all
    /// Peak learning rate.
    public var learningRate = 2e-5
    /// Floor of the cosine schedule.
    public var minimumLearningRate = 0.0
    /// Warm-up steps (linear from 0).
    public var warmupSteps = 0
    /// Cosine decay after warm-up; false: constant after warm-up.
    public var cosine = true
    /// Optimizer steps; nil: `epochs` passes over the data.
    public var steps: Int? = nil
    /// Passes over the data when `steps` is nil.
    public var epochs = 1.0
    /// Tokens per optimizer step (whole sequences: at least one).
    public var batchTokens = 8192
    /// Tokens per forward/backward pass (bounds activation memory; gradients accumulate over passes).
    public var microBatchTokens = 2048
    /// AdamW settings (weight decay applies to matrices only, not to norm weights or biases).
    public var optimizer = AdamWSettings(weightDecay: 0, clipNorm: 1)
    /// Seed of the data order.
    public var seed: UInt64 = 0

    /// The defaults.
    public init() {}

    /// The settings as text, saved with a checkpoint so a resumed run can check them.
    var text: String {
        "trainable=\(trainable) lr=\(learningRate) min_lr=\(minimumLearningRate) warmup=\(warmupSteps) cosine=\(cosine) steps=\(steps.map(String.init) ?? "none") epochs=\(epochs) batch_tokens=\(batchTokens) micro_batch_tokens=\(microBatchTokens) seed=\(seed)"
    }
}

/// One optimizer step's figures.
public struct FineTuneStep: Sendable {
    /// Steps done (1 after the first).
    public let step: Int
    /// Steps in the run.
    public let totalSteps: Int
    /// Mean next-token loss of the step's batch (before the update).
    public let loss: Double
    /// The learning rate used.
    public let learningRate: Double
    /// Gradient norm before clipping.
    public let gradientNorm: Double
    /// Tokens processed in this step.
    public let tokens: Int
    /// Epoch (0-based) the step's last sequence came from.
    public let epoch: Int
}

/// A fine-tuning run: next-token training of a `LlamaModel` on packed sequences with AdamW, resumable
/// bit for bit from a checkpoint (trainable weights, optimizer state, data position and the data-order
/// generator's state). The data order is a seeded shuffle per epoch.
public final class FineTuning: @unchecked Sendable {
    /// The trainer (the model and its trainable tensors).
    public let trainer: LlamaTrainer
    /// The optimizer.
    public let optimizer: AdamW
    /// The training sequences.
    public let data: PackedSequences
    /// The settings.
    public let settings: FineTuneSettings
    /// Steps in the run.
    public let totalSteps: Int
    /// The learning-rate schedule.
    public let schedule: LearningRateSchedule
    /// Steps done.
    public private(set) var step = 0
    /// Current epoch (0-based).
    public private(set) var epoch = 0
    /// Next index into the epoch's order.
    public private(set) var position = 0
    var order: [Int] = []
    var generator: SeededGenerator
    var epochStartState: (UInt64, UInt64, UInt64, UInt64)

    /// Sequences per optimizer step and per forward/backward pass.
    public var sequencesPerStep: Int { max(1, settings.batchTokens / data.length) }
    public var sequencesPerPass: Int { max(1, min(sequencesPerStep, settings.microBatchTokens / data.length)) }

    /// A run at step 0.
    public init(model: LlamaModel, data: PackedSequences, settings: FineTuneSettings) throws(TrainingError) {
        trainer = try LlamaTrainer(model: model, trainable: settings.trainable)
        guard !trainer.parameters.isEmpty else { throw .noTrainableTensors(pattern: "\(settings.trainable)") }
        optimizer = AdamW(parameters: trainer.parameters, settings: settings.optimizer,
                          decays: trainer.parameters.map { $0.shape.count >= 2 })
        self.data = data
        self.settings = settings
        let perStep = max(1, settings.batchTokens / data.length)
        totalSteps = settings.steps ?? max(1, Int((settings.epochs * Double(data.count) / Double(perStep)).rounded(.up)))
        guard totalSteps > 0 else { throw .invalidSetting(name: "--steps", reason: "must be positive") }
        schedule = settings.cosine
            ? .warmupCosine(peak: settings.learningRate, warmupSteps: settings.warmupSteps, totalSteps: totalSteps,
                            floor: settings.minimumLearningRate)
            : (settings.warmupSteps > 0
                ? .warmupCosine(peak: settings.learningRate, warmupSteps: settings.warmupSteps, totalSteps: Int.max / 2,
                                floor: settings.learningRate)
                : .constant(settings.learningRate))
        generator = SeededGenerator(seed: settings.seed)
        epochStartState = generator.state
        startEpoch()
    }

    /// Shuffles the sequences for the current epoch (Fisher–Yates from the run's generator).
    func startEpoch() {
        epochStartState = generator.state
        order = Array(0..<data.count)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, generator.integer(below: i + 1)) }
        position = 0
    }

    /// The next `n` sequences in the data order (crossing into the next epoch when needed).
    func nextSequences(_ n: Int) -> [[Int]] {
        var out: [[Int]] = []
        for _ in 0..<n {
            if position == order.count {
                epoch += 1
                startEpoch()
            }
            out.append(data[order[position]])
            position += 1
        }
        return out
    }

    /// Whether every step has been taken.
    public var isFinished: Bool { step >= totalSteps }

    /// One optimizer step over the next batch.
    public func trainStep() throws(TrainingError) -> FineTuneStep {
        let sequences = nextSequences(sequencesPerStep)
        let counted = sequences.reduce(0) { $0 + $1.count - 1 }
        trainer.zeroGradients()
        var total = LossTotal(sum: 0, count: 0)
        var start = 0
        while start < sequences.count {
            let part = Array(sequences[start..<min(start + sequencesPerPass, sequences.count)])
            do {
                total = total + (try trainer.accumulateGradients(TokenBatch(part), gradientScale: 1 / Float(counted)))
            } catch { throw .model(error) }
            start += part.count
        }
        let lr = schedule.learningRate(atStep: step)
        let norm = optimizer.step(learningRate: lr)
        step += 1
        return FineTuneStep(step: step, totalSteps: totalSteps, loss: total.mean, learningRate: lr, gradientNorm: norm,
                            tokens: sequences.count * data.length, epoch: epoch)
    }

    /// Mean next-token loss over sequences (no update), in passes of `sequencesPerPass`.
    public func evaluate(_ sequences: [[Int]]) throws(TrainingError) -> LossTotal {
        var total = LossTotal(sum: 0, count: 0)
        var start = 0
        while start < sequences.count {
            let part = Array(sequences[start..<min(start + sequencesPerPass, sequences.count)])
            do { total = total + (try trainer.loss(TokenBatch(part))) } catch { throw .model(error) }
            start += part.count
        }
        return total
    }
}

/// Where a fine-tuning run stands, besides its weights and optimiser: what a run store's step record holds.
public struct FineTunePosition: Sendable, Equatable, Codable {
    /// Steps done.
    public var step: Int
    /// Epoch (0-based).
    public var epoch: Int
    /// Next index into the epoch's order.
    public var position: Int
    /// The data-order generator's state at the epoch's start (four words, as decimal text).
    public var generator: [String]
}

extension FineTuning {
    /// What a resumed run must share with the saved one: the settings, the data (and sequence length) and
    /// the trained tensors.
    public var checkpointConfiguration: [(String, String)] {
        [("settings", settings.text), ("data", data.fingerprint), ("total_steps", String(totalSteps)),
         ("trainable", trainer.parameters.map { "\($0.name)\($0.shape)" }.joined(separator: ","))]
    }

    /// The run's position (step, epoch, data position, generator state).
    public var checkpointPosition: FineTunePosition {
        let s = epochStartState
        return FineTunePosition(step: step, epoch: epoch, position: position, generator: [s.0, s.1, s.2, s.3].map { String($0) })
    }

    /// The trainable weights as one blob: raw little-endian f32 of each tensor, in parameter order.
    public func trainableBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(4 * trainer.parameters.reduce(0) { $0 + $1.count })
        for t in trainer.parameters { out.append(contentsOf: UnsafeRawBufferPointer(start: t.value, count: t.count * 4)) }
        return out
    }

    /// Restores a state saved as `checkpointPosition`, `trainableBytes()` and the optimizer's `stateBytes()`;
    /// throws naming `source` when it does not fit this run.
    public func restore(position p: FineTunePosition, trainable: [UInt8], optimizer bytes: [UInt8], source: String) throws(TrainingError) {
        let g = p.generator.compactMap { UInt64($0) }
        guard g.count == 4 else { throw .runState(path: source, reason: "the generator state is not four 64-bit words") }
        guard trainable.count == 4 * trainer.parameters.reduce(0, { $0 + $1.count }) else {
            throw .runState(path: source, reason: "holds \(trainable.count) bytes of trained weights, this run trains \(trainer.parameters.reduce(0) { $0 + $1.count }) f32")
        }
        try optimizer.restore(stateBytes: bytes, source: source)
        var offset = 0
        trainable.withUnsafeBytes { raw in
            for t in trainer.parameters {
                UnsafeMutableRawPointer(t.value).copyMemory(from: raw.baseAddress! + offset, byteCount: t.count * 4)
                offset += t.count * 4
            }
        }
        generator = SeededGenerator(state: (g[0], g[1], g[2], g[3]))
        epoch = p.epoch
        startEpoch()
        position = p.position
        step = p.step
    }

    /// Saves a checkpoint folder atomically (the layout before the run store): `trainable.safetensors` (f32), `optimizer.safetensors`,
    /// `state.json` (step, epoch, position, the generator state at the epoch's start, settings, data
    /// fingerprint).
    public func saveCheckpoint(to path: String) throws(TrainingError) {
        let out: AtomicOutput
        do {
            out = try AtomicOutput(path: path, overwrite: true)
            try out.makeWorkingDirectory()
        } catch { throw .file(error) }
        do {
            try SafetensorsWriter.save(trainer.parameters.map { ($0.name, $0.storage) }, to: out.workingPath + "/trainable.safetensors")
            try optimizer.save(to: out.workingPath + "/optimizer.safetensors")
            let s = epochStartState
            let state = JSONValue.object(JSONObject([
                ("step", .int(step)), ("epoch", .int(epoch)), ("position", .int(position)),
                ("generator", .array([s.0, s.1, s.2, s.3].map { .string(String($0)) })),
                ("settings", .string(settings.text)), ("total_steps", .int(totalSteps)),
                ("data", .string(data.fingerprint)),
            ]))
            try writeFileAtomically(state.pythonText() + "\n", to: out.workingPath + "/state.json")
            try out.commit()
        } catch let error as TrainingError {
            out.abandon()
            throw error
        } catch let error as CheckpointError {
            out.abandon()
            throw .checkpoint(error)
        } catch let error as FileError {
            out.abandon()
            throw .file(error)
        } catch {
            out.abandon()
            throw .runState(path: path, reason: "\(error)")
        }
    }

    /// Restores a checkpoint saved by `saveCheckpoint(to:)`; throws when it belongs to other settings,
    /// other data or other tensors.
    public func resume(from path: String) throws(TrainingError) {
        let statePath = path + "/state.json"
        guard let bytes = FileManager.default.contents(atPath: statePath), let json = try? JSONValue.parse([UInt8](bytes)) else {
            throw .runState(path: statePath, reason: "missing or not JSON; start without --resume")
        }
        guard json["settings"]?.stringValue == settings.text else {
            throw .runState(path: statePath, reason: "saved with '\(json["settings"]?.stringValue ?? "?")', this run has '\(settings.text)'")
        }
        guard json["data"]?.stringValue == data.fingerprint else {
            throw .runState(path: statePath, reason: "the training data (or --seq-len) differ from the saved run's")
        }
        guard let s = json["step"]?.intValue, let e = json["epoch"]?.intValue, let p = json["position"]?.intValue,
              let g = json["generator"]?.arrayValue?.compactMap({ $0.stringValue.flatMap { UInt64($0) } }), g.count == 4 else {
            throw .runState(path: statePath, reason: "step, epoch, position or generator missing")
        }
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: path + "/trainable.safetensors") } catch { throw .checkpoint(error) }
        for t in trainer.parameters {
            guard let info = file.info(t.name), info.dtype == .f32, info.shape == t.shape else {
                throw .runState(path: file.path, reason: "tensor '\(t.name)' is missing or not F32 \(t.shape)")
            }
            let saved: Tensor
            do { saved = try file.tensor(t.name) } catch { throw .checkpoint(error) }
            saved.withUnsafeBytes { b in UnsafeMutableRawPointer(t.value).copyMemory(from: b.baseAddress!, byteCount: b.count) }
        }
        try optimizer.load(from: path + "/optimizer.safetensors")
        generator = SeededGenerator(state: (g[0], g[1], g[2], g[3]))
        epoch = e
        startEpoch()
        position = p
        step = s
    }

    /// Writes the model as a Hugging Face folder at `output` (atomically): every tensor of `source` in its
    /// own dtype (a GGUF's quantized ones in f32, as read), trained ones rounded once from f32, plus
    /// config.json and the tokenizer and generation files (copied, or for a GGUF made from its metadata).
    public func writeModel(to output: String, from source: ModelSource, overwrite: Bool) throws(TrainingError) {
        let out: AtomicOutput
        do {
            out = try AtomicOutput(path: output, overwrite: overwrite)
            try out.makeWorkingDirectory()
        } catch { throw .file(error) }
        let trained = Dictionary(uniqueKeysWithValues: trainer.parameters.map { ($0.name, $0) })
        do {
            let infos = source.tensors.tensorInfos
            let writer = try CheckpointWriter(directory: out.workingPath, tensors: infos)
            for info in infos {
                if let t = trained[info.name] {
                    try writer.write(info.name, tensor: t.storage)
                } else {
                    // a GGUF's un-permuted q/k come back in f32 whatever their stored type
                    var weight = try source.tensors.tensor(info.name)
                    if weight.dtype != info.dtype { weight = weight.converted(to: info.dtype) }
                    try weight.withUnsafeBytes { (b) throws(CheckpointError) in try writer.write(info.name, bytes: b) }
                }
            }
            try writer.finish()
            try source.writeConfig(into: out.workingPath)
            try source.writeCompanions(into: out.workingPath)
            try out.commit()
        } catch let error as CheckpointError {
            out.abandon()
            throw .checkpoint(error)
        } catch let error as FileError {
            out.abandon()
            throw .file(error)
        } catch {
            out.abandon()
            throw .file(.cannotWrite(path: output, reason: "\(error)"))
        }
    }
}
