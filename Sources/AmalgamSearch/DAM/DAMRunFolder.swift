import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// A DAM run's folder, every file written under a temporary name and renamed:
///
/// - `configuration.json`: the settings (a resumed run must match them, except `steps`);
/// - `state.safetensors`: `coefficients`, with `step` in the metadata; `optimiser.safetensors`: AdamW's
///   moments and step (written first: a state whose step differs from the optimiser's is refused);
/// - `history.json`: per step, the loss terms and the gradient norm; the pass counts;
/// - at the end, `coefficients.safetensors` (the raw coefficients, `<layer>.weight_coefficients` `[N, in]`
///   and `<layer>.bias_coefficients` `[N]`) and `model.safetensors` (the merged model, a normal checkpoint).
public struct DAMRunFolder: Sendable {
    /// The folder.
    public let path: String
    /// This process's claim on the folder: one process at a time continues a run.
    private let claim: FolderClaim

    /// What a checkpoint restores.
    struct State {
        var step: Int
        var coefficients: [Float]
        var history: [DAMLoss]
        var gradientNorms: [Double]
        var passes: DAMPassCount
    }

    private struct History: Codable {
        var step: Int
        var loss: [DAMLoss]
        var gradientNorms: [Double]
        var passes: DAMPassCount
    }

    /// Opens (creating it if needed) the run folder at `path` for `configuration`. With `resume`, a saved
    /// state is loaded into `trainer`; without it, an existing state is an error (nothing is overwritten).
    public init<F: DAMFamily>(path: String, trainer: DAMTrainer<F>, resume: Bool) throws(DAMError) {
        self.path = path
        let fm = FileManager.default
        do { try fm.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw .runFolder(path: path, reason: "cannot create the folder: \(error.localizedDescription)")
        }
        do throws(FileError) { claim = try FolderClaim.take(path) } catch {
            throw .runFolder(path: path, reason: String(error.description.dropFirst(path.count + 2)))
        }
        let configPath = path + "/configuration.json"
        if fm.fileExists(atPath: statePath) {
            guard resume else {
                throw .runFolder(path: path, reason: "holds a DAM run already: pass --resume to continue it or choose another folder")
            }
            guard let data = fm.contents(atPath: configPath), var saved = Self.savedConfiguration(data) else {
                throw .runFolder(path: configPath, reason: "missing or unreadable; the run cannot be resumed")
            }
            saved.steps = trainer.configuration.steps
            guard saved == trainer.configuration else {
                throw .runFolder(path: configPath, reason: "the run was started with other settings (only --steps may change on resume)")
            }
            try trainer.restore(loadState())
            try trainer.optimiser.load(from: optimiserPath)
            guard trainer.optimiser.stepCount == trainer.step else {
                throw .runFolder(path: optimiserPath, reason: "optimiser at step \(trainer.optimiser.stepCount), state at \(trainer.step): the last checkpoint was interrupted")
            }
        }
        try write(Self.json(trainer.configuration), to: configPath)
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

    private var statePath: String { path + "/state.safetensors" }
    private var optimiserPath: String { path + "/optimiser.safetensors" }

    /// Writes the trainer's state (coefficients, optimiser, step) and history.
    public func saveState<F: DAMFamily>(of trainer: DAMTrainer<F>) throws(DAMError) {
        try trainer.optimiser.save(to: optimiserPath)
        let tensors = [(name: "coefficients", tensor: Tensor(trainer.coefficients, shape: [trainer.coefficients.count]))]
        do {
            try SafetensorsWriter.save(tensors, to: statePath,
                                       metadata: [("format", "amalgam-dam"), ("step", String(trainer.step))])
        } catch { throw .runFolder(path: statePath, reason: error.description) }
        let history = History(step: trainer.step, loss: trainer.history, gradientNorms: trainer.gradientNorms, passes: trainer.passes)
        try write(Self.json(history), to: path + "/history.json")
    }

    func loadState() throws(DAMError) -> State {
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: statePath) } catch { throw .runFolder(path: statePath, reason: error.description) }
        guard let stepText = file.metadata.first(where: { $0.key == "step" })?.value, let step = Int(stepText),
              let coefficients = try? file.tensor("coefficients").floats()
        else { throw .runFolder(path: statePath, reason: "no `step` metadata or `coefficients` tensor: not a DAM state file") }
        let historyPath = path + "/history.json"
        guard let data = FileManager.default.contents(atPath: historyPath),
              let history = try? JSONDecoder().decode(History.self, from: data), history.step == step
        else { throw .runFolder(path: historyPath, reason: "missing, unreadable, or not at step \(step) like state.safetensors") }
        return State(step: step, coefficients: coefficients, history: history.loss,
                     gradientNorms: history.gradientNorms, passes: history.passes)
    }

    /// Writes the raw coefficients and the merged model (`tensors`, e.g. `DAMMLPFamily.mergedTensors()`).
    public func export<F: DAMFamily>(trainer: DAMTrainer<F>, merged tensors: [(name: String, tensor: Tensor)]) throws(DAMError) {
        let coefficientsPath = path + "/coefficients.safetensors", modelPath = path + "/model.safetensors"
        let (coefficients, metadata) = Self.coefficientsFile(trainer: trainer)
        do {
            try SafetensorsWriter.save(coefficients, to: coefficientsPath, metadata: metadata)
            try SafetensorsWriter.save(tensors, to: modelPath)
        } catch { throw .runFolder(path: path, reason: error.description) }
    }

    /// The tensors and metadata of `coefficients.safetensors`: `<layer>.weight_coefficients` `[N, in]`,
    /// `<layer>.bias_coefficients` `[N]`, with f, the step and N in the metadata.
    public static func coefficientsFile<F: DAMFamily>(trainer: DAMTrainer<F>)
        -> (tensors: [(name: String, tensor: Tensor)], metadata: [(key: String, value: String)]) {
        let metadata: [(key: String, value: String)] = [
            ("format", "pt"), ("dam_scale_function", trainer.configuration.scaleFunction.rawValue),
            ("dam_step", String(trainer.step)), ("dam_sources", String(trainer.layout.sourceCount)),
        ]
        return (trainer.layout.namedTensors(trainer.coefficients), metadata)
    }

    private func write(_ text: String, to file: String) throws(DAMError) {
        do { try writeFileAtomically(text, to: file) } catch { throw .runFolder(path: file, reason: error.description) }
    }

    private static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
