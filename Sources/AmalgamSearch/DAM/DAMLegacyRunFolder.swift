import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// A DAM run folder of the layout before the run store (amalgam up to main at d184d06): `configuration.json`,
/// `state.safetensors` (`coefficients`, `step` in the metadata), `optimiser.safetensors` and `history.json`,
/// each renamed into place on its own. `--resume` takes a consistent one into the store; one whose files
/// are at different steps (the old code killed between two renames) is refused, saying what to do.
struct DAMLegacyRunFolder {
    let path: String

    private struct History: Codable {
        var step: Int
        var loss: [DAMLoss]
        var gradientNorms: [Double]
        var passes: DAMPassCount
    }

    static let files = ["configuration.json", "state.safetensors", "optimiser.safetensors", "history.json"]

    var statePath: String { path + "/state.safetensors" }
    var optimiserPath: String { path + "/optimiser.safetensors" }
    var historyPath: String { path + "/history.json" }
    var configPath: String { path + "/configuration.json" }

    /// Whether a checkpoint of the old layout is here.
    var isPresent: Bool {
        [statePath, optimiserPath, historyPath].contains { FileManager.default.fileExists(atPath: $0) }
    }

    private func refuse(_ why: String) -> DAMError {
        .runFolder(path: path, reason: "was made by an older amalgam (state.safetensors, optimiser.safetensors, history.json) and "
            + "\(why); it cannot be resumed: start a new run in another folder (or delete this one)")
    }

    /// The saved state, checked against `trainer`'s configuration (all but `steps`); the optimiser's
    /// moments are loaded into the trainer's optimiser.
    func load<F: DAMFamily>(into trainer: DAMTrainer<F>) throws(DAMError) -> DAMRunFolder.State {
        guard let data = FileManager.default.contents(atPath: configPath), var saved = Self.savedConfiguration(data) else {
            throw refuse("its configuration.json is missing or unreadable")
        }
        saved.steps = trainer.configuration.steps
        guard saved == trainer.configuration else {
            throw .runFolder(path: configPath, reason: "the run was started with other settings (only --steps may change on resume)")
        }
        guard let file = try? SafetensorsFile(path: statePath),
              let stepText = file.metadata.first(where: { $0.key == "step" })?.value, let step = Int(stepText),
              let coefficients = try? file.tensor("coefficients").floats()
        else { throw refuse("its state.safetensors is missing or not a DAM state") }
        guard let historyData = FileManager.default.contents(atPath: historyPath),
              let history = try? JSONDecoder().decode(History.self, from: historyData) else {
            throw refuse("its history.json is missing or unreadable")
        }
        guard history.step == step else { throw refuse("its history.json is at step \(history.step), state.safetensors at \(step) (a checkpoint was interrupted)") }
        do { try trainer.optimiser.adamw.load(from: optimiserPath) } catch { throw refuse("its optimiser.safetensors cannot be read (\(error))") }
        guard trainer.optimiser.stepCount == step else {
            throw refuse("its optimiser.safetensors is at step \(trainer.optimiser.stepCount), state.safetensors at \(step) (a checkpoint was interrupted)")
        }
        return DAMRunFolder.State(step: step, coefficients: coefficients, history: history.loss,
                                  gradientNorms: history.gradientNorms, passes: history.passes)
    }

    /// A saved configuration.json. Folders written before `trainEmbeddings` / `trainNorms` existed lack
    /// them: those runs trained neither.
    static func savedConfiguration(_ data: Data) -> DAMConfiguration? {
        if let c = try? JSONDecoder().decode(DAMConfiguration.self, from: data) { return c }
        guard var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        for key in ["trainEmbeddings", "trainNorms"] where object[key] == nil { object[key] = false }
        guard let patched = try? JSONSerialization.data(withJSONObject: object) else { return nil }
        return try? JSONDecoder().decode(DAMConfiguration.self, from: patched)
    }

    /// Deletes the old files (after their state was committed to the store).
    func remove() {
        for file in Self.files { unlink(path + "/" + file) }
    }
}
