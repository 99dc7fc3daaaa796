import AmalgamCore
import AmalgamModels
import Foundation

/// The run folder of `amalgam finetune --run-dir`: a `RunStore` whose steps hold the run's position (step
/// record) and two blobs, `trainable` (the trained weights, f32) and `optimizer` (AdamW's moments and
/// step), committed in one transaction per checkpoint. A `checkpoint/` folder of the layout before the
/// run store (amalgam up to main at d184d06) is taken in on `--resume` and then removed.
public final class FineTuneRunFolder {
    /// The folder.
    public let path: String
    /// The run's store (this process holds the folder's claim while it lives).
    public let store: RunFolder
    /// Whether a saved state was restored into the run.
    public private(set) var resumed = false

    /// The kind recorded in the store.
    public static let kind = "finetune"

    /// Opens (creating it if needed) the run folder at `path` for `run`. With `resume`, the saved state
    /// (or an old `checkpoint/` folder) is restored into `run`; without it, a folder holding steps is refused.
    public init(path: String, run: FineTuning, resume: Bool) throws {
        self.path = path
        let legacy = path + "/checkpoint"
        let hasLegacy = FileManager.default.fileExists(atPath: legacy + "/state.json") && !RunFolder.exists(at: path)
        if hasLegacy && !resume {
            throw SearchError.runFolder(path: path, reason: "holds a finetune checkpoint already: pass --resume to continue it, or choose another folder")
        }
        store = try RunFolder.openOrCreate(path: path, kind: Self.kind, durability: .process, resume: resume)
        try store.checkConfiguration(RunConfiguration(run.checkpointConfiguration))
        if hasLegacy {
            try run.resume(from: legacy)
            try save(run)
            try? FileManager.default.removeItem(atPath: legacy)
            resumed = true
        } else if let step = try store.latestStep(), step > 0 {
            guard let record = try store.records(in: step...step).first,
                  let position = try? JSONDecoder().decode(FineTunePosition.self, from: Data(record.json.utf8)),
                  let trainable = try store.blob("trainable"), let optimizer = try store.blob("optimizer") else {
                throw SearchError.runFolder(path: path, reason: "the state of step \(step) is incomplete; the run folder is damaged")
            }
            try run.restore(position: position, trainable: trainable, optimizer: optimizer, source: path)
            resumed = true
        }
    }

    /// Steps trained since the last commit, kept for the run's history.
    private var pending: [FineTuneStepRecord] = []

    /// Notes a step's figures; the next `save` commits them with the state.
    public func note(_ step: FineTuneStep) {
        pending.append(FineTuneStepRecord(step: step.step, loss: step.loss, learningRate: step.learningRate, gradientNorm: step.gradientNorm))
    }

    /// Commits the run's state as one step: a record per noted step (loss, learning rate, gradient norm), the
    /// last one also holding the run's position, which a resume reads.
    public func save(_ run: FineTuning) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let position = run.checkpointPosition
        var last = pending.last { $0.step == run.step } ?? FineTuneStepRecord(step: run.step)
        last.epoch = position.epoch
        last.position = position.position
        last.generator = position.generator
        var records = pending.filter { $0.step < run.step }.map { RunStep.Record(step: $0.step, json: String(decoding: (try? encoder.encode($0)) ?? Data(), as: UTF8.self)) }
        records.append(RunStep.Record(step: run.step, json: String(decoding: try encoder.encode(last), as: UTF8.self)))
        try store.commit(RunStep(number: run.step, records: records,
                                 blobs: ["trainable": run.trainableBytes(), "optimizer": run.optimizer.stateBytes()]))
        pending.removeAll()
    }

    /// The loss, learning rate and gradient norm of each committed step that recorded them (runs made
    /// before amalgam recorded them hold only positions: none).
    public static func history(in store: any RunStore) throws(SearchError) -> [FineTuneStepRecord] {
        guard let last = try store.latestStep(), last >= 1 else { return [] }
        return try store.records(in: 1...last).compactMap { $0.decoded(as: FineTuneStepRecord.self) }.filter { $0.loss != nil }
    }
}

/// One fine-tuning step as the run's store records it; the record of a checkpoint's step also holds the
/// run's position (`FineTunePosition`'s keys), so a resume decodes it as one.
public struct FineTuneStepRecord: Sendable, Codable, Equatable {
    public var step: Int
    /// Mean next-token loss of the step's batch, the learning rate, the gradient norm before clipping.
    public var loss: Double?
    public var learningRate: Double?
    public var gradientNorm: Double?
    var epoch: Int?
    var position: Int?
    var generator: [String]?

    init(step: Int, loss: Double? = nil, learningRate: Double? = nil, gradientNorm: Double? = nil) {
        self.step = step
        self.loss = loss
        self.learningRate = learningRate
        self.gradientNorm = gradientNorm
    }

    enum CodingKeys: String, CodingKey {
        case step, loss, epoch, position, generator
        case learningRate = "learning_rate", gradientNorm = "gradient_norm"
    }
}
