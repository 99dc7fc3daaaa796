import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import Foundation

/// A DAM run's folder: a `RunStore` (`RunFolder`, SQLite) holding the configuration (a resumed run must
/// match it, except `steps`), one record per step (the loss terms and the gradient norm) and three blobs —
/// `coefficients` (raw f32), `optimiser` (AdamW's moments and step) and `passes` (JSON) — all committed in
/// one transaction per checkpoint, so a kill at any moment leaves the previous checkpoint or the new one.
/// At the end `export` adds `coefficients.safetensors` (the raw coefficients, `<layer>.weight_coefficients`
/// `[N, in]` and `<layer>.bias_coefficients` `[N]`) and `model.safetensors` (the merged model).
///
/// A folder of the layout before the run store (`state.safetensors`, `optimiser.safetensors`,
/// `history.json`, `configuration.json`) is taken into the store on `--resume` (see `DAMLegacyRunFolder`).
public final class DAMRunFolder {
    /// The folder.
    public let path: String
    /// The run's store (this process holds the folder's claim while it lives).
    public let store: RunFolder
    /// The last step committed to the store.
    private var committed: Int

    /// The kind recorded in the store.
    public static let kind = "dam"

    /// What a checkpoint restores.
    struct State {
        var step: Int
        var coefficients: [Float]
        var history: [DAMLoss]
        var gradientNorms: [Double]
        var passes: DAMPassCount
    }

    struct Record: Codable {
        var loss: DAMLoss
        var gradientNorm: Double
    }

    /// Opens (creating it if needed) the run folder at `path` for `trainer`'s configuration. With `resume`,
    /// a saved state is loaded into `trainer`; without it, an existing state is an error (nothing is overwritten).
    public init<F: DAMFamily>(path: String, trainer: DAMTrainer<F>, resume: Bool) throws(DAMError) {
        self.path = path
        let legacy = DAMLegacyRunFolder(path: path)
        let imported: State?
        if legacy.isPresent && !RunFolder.exists(at: path) {
            guard resume else {
                throw .runFolder(path: path, reason: "holds a DAM run already: pass --resume to continue it or choose another folder")
            }
            imported = try legacy.load(into: trainer)
        } else {
            imported = nil
        }
        do throws(SearchError) {
            store = try RunFolder.openOrCreate(path: path, kind: Self.kind, durability: .process, resume: resume || imported != nil)
            try store.checkConfiguration(Self.configuration(trainer.configuration))
        } catch { throw Self.damError(error, path: path) }
        committed = 0
        if let imported {
            try trainer.restore(imported)
            try saveState(of: trainer)
            legacy.remove()
        } else if let step = try mapped({ () throws(SearchError) in try store.latestStep() }), step > 0 {
            try trainer.restore(loadState(step: step))
            let optimiser = try blob("optimiser")
            do throws(TrainingError) { try trainer.optimiser.adamw.restore(stateBytes: optimiser, source: path + " (blob `optimiser`)") } catch {
                throw .runFolder(path: path, reason: "\(error)")
            }
            guard trainer.optimiser.stepCount == trainer.step else {
                throw .runFolder(path: path, reason: "optimiser at step \(trainer.optimiser.stepCount), state at \(trainer.step): the run folder is damaged")
            }
            committed = step
        }
    }

    /// The configuration a resume must match: every setting but `steps`.
    static func configuration(_ c: DAMConfiguration) throws(SearchError) -> RunConfiguration {
        var configuration = try RunConfiguration(encoding: c)
        configuration.entries.removeAll { $0.key == "steps" }
        return configuration
    }

    /// Commits the trainer's state (coefficients, optimiser, passes, the records of the steps since the last
    /// commit) as one step of the store.
    public func saveState<F: DAMFamily>(of trainer: DAMTrainer<F>) throws(DAMError) {
        guard trainer.step > committed || trainer.step == 0 else { return }
        var records: [RunStep.Record] = []
        for step in (committed + 1)..<(trainer.step + 1) {
            records.append(RunStep.Record(step: step, json: Self.json(Record(loss: trainer.history[step - 1], gradientNorm: trainer.gradientNorms[step - 1]))))
        }
        let coefficients = trainer.coefficients.withUnsafeBytes { [UInt8]($0) }
        let step = RunStep(number: trainer.step, records: records, blobs: [
            "coefficients": coefficients, "optimiser": trainer.optimiser.adamw.stateBytes(), "passes": Array(Self.json(trainer.passes).utf8),
        ])
        try mapped { () throws(SearchError) in try store.commit(step) }
        committed = trainer.step
    }

    func loadState(step: Int) throws(DAMError) -> State {
        let bytes = try blob("coefficients")
        let coefficients = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        guard let passes = try? JSONDecoder().decode(DAMPassCount.self, from: Data(try blob("passes"))) else {
            throw .runFolder(path: path, reason: "the blob `passes` is unreadable; the run folder is damaged")
        }
        let records = try mapped { () throws(SearchError) in try store.records(in: 1...step) }
        var history: [DAMLoss] = [], norms: [Double] = []
        for r in records {
            guard let record = try? JSONDecoder().decode(Record.self, from: Data(r.json.utf8)) else {
                throw .runFolder(path: path, reason: "the record of step \(r.step) is unreadable; the run folder is damaged")
            }
            history.append(record.loss)
            norms.append(record.gradientNorm)
        }
        guard records.map(\.step) == Array(1...step) else {
            throw .runFolder(path: path, reason: "holds \(records.count) step records for step \(step); the run folder is damaged")
        }
        return State(step: step, coefficients: coefficients, history: history, gradientNorms: norms, passes: passes)
    }

    private func blob(_ name: String) throws(DAMError) -> [UInt8] {
        guard let bytes = try mapped({ () throws(SearchError) in try store.blob(name) }) else {
            throw .runFolder(path: path, reason: "the blob `\(name)` is missing; the run folder is damaged")
        }
        return bytes
    }

    private func mapped<T>(_ body: () throws(SearchError) -> T) throws(DAMError) -> T {
        do { return try body() } catch { throw Self.damError(error, path: path) }
    }

    /// A store's error as DAM's, naming the same path.
    static func damError(_ error: SearchError, path: String) -> DAMError {
        if case let .runFolder(p, reason) = error { return .runFolder(path: p, reason: reason) }
        return .runFolder(path: path, reason: error.description)
    }

    /// The run's loss terms per committed step, and the exported coefficients (`coefficients.safetensors`,
    /// where the store's outputs name it) as the mean coefficient of each tensor per source.
    public static func history(in store: any RunStore) throws(SearchError) -> DAMHistory {
        var history = DAMHistory()
        if let last = try store.latestStep(), last >= 1 {
            for r in try store.records(in: 1...last) {
                guard let record = r.decoded(as: Record.self) else { continue }
                history.steps.append(DAMHistory.Step(step: r.step, loss: record.loss, gradientNorm: record.gradientNorm))
            }
        }
        let outputs = try store.outputs()
        let candidates = [outputs["coefficients"], outputs["model"].map { $0 + "/coefficients.safetensors" }].compactMap { $0 }
        guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else { return history }
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: path) } catch { throw SearchError.badData(path: path, reason: error.description) }
        for info in file.tensorInfos where info.name.hasSuffix(".weight_coefficients") && info.shape.count == 2 {
            let values: [Float]
            do { values = try file.tensor(info.name).floats() } catch { throw SearchError.badData(path: path, reason: error.description) }
            let sources = info.shape[0], columns = info.shape[1]
            let means = (0..<sources).map { k in values[(k * columns)..<((k + 1) * columns)].reduce(0.0) { $0 + Double($1) } / Double(max(columns, 1)) }
            history.coefficients.append(DAMHistory.TensorCoefficients(tensor: String(info.name.dropLast(".weight_coefficients".count)), meanPerSource: means))
        }
        history.coefficientsPath = path
        history.scaleFunction = file.metadata.first { $0.key == "dam_scale_function" }?.value
        return history
    }

    /// Writes the raw coefficients and the merged model (`tensors`, e.g. `DAMMLPFamily.mergedTensors()`).
    public func export<F: DAMFamily>(trainer: DAMTrainer<F>, merged tensors: [(name: String, tensor: Tensor)]) throws(DAMError) {
        let coefficientsPath = path + "/coefficients.safetensors", modelPath = path + "/model.safetensors"
        let (coefficients, metadata) = Self.coefficientsFile(trainer: trainer)
        do {
            try SafetensorsWriter.save(coefficients, to: coefficientsPath, metadata: metadata)
            try SafetensorsWriter.save(tensors, to: modelPath)
        } catch { throw .runFolder(path: path, reason: error.description) }
        try recordOutputs(["coefficients": coefficientsPath, "model": modelPath], step: trainer.step)
    }

    /// Notes outputs written whole (through `AtomicOutput`) at `step` in the store.
    public func recordOutputs(_ outputs: [String: String], step: Int) throws(DAMError) {
        try mapped { () throws(SearchError) in try store.commit(RunStep(number: step, outputs: outputs)) }
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

    static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// What a DAM run recorded: its loss terms per step and its learned coefficients.
public struct DAMHistory: Sendable {
    /// One committed step.
    public struct Step: Sendable {
        public var step: Int
        public var loss: DAMLoss
        public var gradientNorm: Double
    }
    /// The mean raw weight coefficient of one merged tensor, per source model.
    public struct TensorCoefficients: Sendable {
        /// The tensor's name without `.weight_coefficients` (`model.layers.3.mlp.up_proj`).
        public var tensor: String
        public var meanPerSource: [Double]
    }
    public var steps: [Step] = []
    /// Empty until the run exported its coefficients.
    public var coefficients: [TensorCoefficients] = []
    /// The file they were read from, and the scale function f the run applies to them.
    public var coefficientsPath: String?
    public var scaleFunction: String?
}
