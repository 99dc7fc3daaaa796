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

    /// Commits the run's state as one step.
    public func save(_ run: FineTuning) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(run.checkpointPosition), as: UTF8.self)
        try store.commit(RunStep(number: run.step, records: [RunStep.Record(step: run.step, json: json)],
                                 blobs: ["trainable": run.trainableBytes(), "optimizer": run.optimizer.stateBytes()]))
    }
}
