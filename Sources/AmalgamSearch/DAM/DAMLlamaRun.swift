import AmalgamCheckpoint
import AmalgamCore
import AmalgamEval
import AmalgamMerge
import AmalgamModels
import AmalgamTokenizer
import Foundation

/// The YAML configuration of `amalgam dam` (README "DAM on language models" documents every key):
///
/// ```yaml
/// models:
///   - model: /work/specialists/shakespeare     # HF folder or Llama .gguf
///     data: tasks/train/shakespeare.jsonl      # .txt, .jsonl ({"text": …}) or a folder of them
///   - model: /work/specialists/milton
///     data: tasks/train/milton.jsonl
/// base_model: /work/specialists/base           # config.json and tokenizer of the output (default: first model)
/// steps: 100
/// batch_size: 2
/// seq_len: 256
/// train_embeddings: false                     # coefficients for the embedding too (default: the mean)
/// train_norms: false                          # and for every RMSNorm weight
/// ```
public struct DAMLlamaSettings: Sendable, Equatable {
    /// One source model and its dataset.
    public struct Source: Sendable, Equatable {
        /// A Hugging Face folder or a Llama `.gguf` file.
        public var model: String
        /// Its training text.
        public var data: String
    }

    /// The source models, each with its own data.
    public var sources: [Source] = []
    /// The folder whose config.json and tokenizer the output gets (default: the first model).
    public var baseModel: String?
    /// Tokens per sequence.
    public var sequenceLength = 256
    /// The run folder (default: `<OUT_DIR>.dam-run`).
    public var runDirectory: String?
    /// The optimisation settings (`batch_size` is sequences per source and step).
    public var dam = DAMConfiguration()

    /// Every key the top level accepts.
    public static let keys = [
        "models", "base_model", "seq_len", "run_dir", "steps", "batch_size", "temperature", "f", "top_k", "lr", "lambda_sim",
        "l1", "l2", "optimiser", "mofo_fraction", "clip", "weight_decay", "beta1", "beta2", "epsilon", "init", "seed",
        "checkpoint_every", "train_embeddings", "train_norms",
    ]
    /// Every key a `models` entry accepts.
    public static let modelKeys = ["model", "data"]

    /// Reads and checks a configuration file.
    public init(path: String) throws(DAMError) {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw .runFolder(path: path, reason: "cannot read the configuration file")
        }
        try self.init(yaml: text, path: path)
    }

    /// Parses YAML text (`path` names it in messages).
    public init(yaml: String, path: String) throws(DAMError) {
        let root = try ConfigValue<DAMError>(ConfigNode.parse(yaml: yaml, path: path, as: DAMError.self), path: path, keyPath: "")
            .mapping(accepting: Self.keys)
        guard let models = try root.value("models")?.items(), models.count >= 2 else {
            throw root.fail("models", "list at least two entries, each `model:` and `data:`")
        }
        for value in models {
            let m = try value.mapping(accepting: Self.modelKeys)
            guard let model = try m.string("model"), let data = try m.string("data") else {
                throw value.fail("needs both `model:` (folder or .gguf) and `data:` (.txt, .jsonl or folder)")
            }
            sources.append(Source(model: model, data: data))
        }
        baseModel = try root.string("base_model")
        runDirectory = try root.string("run_dir")
        if let v = try root.int("seq_len") { sequenceLength = v }
        var c = DAMConfiguration()
        if let v = try root.int("steps") { c.steps = v }
        if let v = try root.int("batch_size") { c.batchSize = v }
        if let v = try root.double("temperature") { c.temperature = v }
        if let v = try root.string("f") {
            guard let f = DAMScaleFunction(rawValue: v) else { throw root.fail("f", "`\(v)`: accepted tanh, identity") }
            c.scaleFunction = f
        }
        if let v = try root.int("top_k") { c.topK = v == 0 ? nil : v }
        if let v = try root.double("lr") { c.learningRate = v }
        if let v = try root.double("lambda_sim") { c.similarityWeight = v }
        if let v = try root.double("l1") { c.l1Weight = v }
        if let v = try root.double("l2") { c.l2Weight = v }
        if let v = try root.string("optimiser") {
            guard let o = DAMConfiguration.Optimiser(rawValue: v.lowercased()) else {
                throw root.fail("optimiser", "`\(v)`: accepted adamw, mofo")
            }
            c.optimiser = o
        }
        if let v = try root.double("mofo_fraction") { c.mofoFraction = v }
        if let v = try root.double("clip") { c.gradientClip = v == 0 ? nil : v }
        if let v = try root.double("weight_decay") { c.weightDecay = v }
        if let v = try root.double("beta1") { c.beta1 = v }
        if let v = try root.double("beta2") { c.beta2 = v }
        if let v = try root.double("epsilon") { c.epsilon = v }
        if let v = try root.string("init") {
            guard let i = DAMInitialisation(rawValue: v) else {
                throw root.fail("init", "`\(v)`: accepted uniform, softmax-random")
            }
            c.initialisation = i
        }
        if let v = try root.uint64("seed") { c.seed = v }
        if let v = try root.int("checkpoint_every") { c.checkpointEvery = v }
        if let v = try root.bool("train_embeddings") { c.trainEmbeddings = v }
        if let v = try root.bool("train_norms") { c.trainNorms = v }
        dam = c
        guard sequenceLength >= 2 else { throw .invalidConfiguration(key: "seq_len", reason: "\(sequenceLength) < 2") }
        try dam.validate()
    }
}

/// A DAM run over Llama-family models as `amalgam dam` performs it: sources opened as `ModelSource`s (a
/// GGUF read in place, dequantized to f32 as `eval` and `score` read it), every dataset tokenized with the
/// base model's tokenizer and packed into sequences, the trainer and its resumable run folder, and the
/// export of a Hugging Face folder.
public final class DAMLlamaRun {
    /// The settings.
    public let settings: DAMLlamaSettings
    /// The source models.
    public let sources: [ModelSource]
    /// The model whose config and tokenizer the output gets.
    public let base: ModelSource
    /// The family (source and merged models).
    public let family: DAMLlamaFamily
    /// The trainer.
    public let trainer: DAMTrainer<DAMLlamaFamily>
    /// The run folder.
    public let runFolder: DAMRunFolder
    /// Sequences in each source's dataset.
    public let sequenceCounts: [Int]

    /// Tokens through the merged model per step (all sources).
    public var tokensPerStep: Int { settings.sources.count * settings.dam.batchSize * settings.sequenceLength }

    /// Prepares a run writing to `output` (the run folder defaults to `<output>.dam-run`). With `resume`,
    /// a saved state continues; without it, an existing state is an error. `log` receives setup messages.
    public init(settings: DAMLlamaSettings, output: String, resume: Bool, log: (String) -> Void = { _ in }) throws(DAMError) {
        self.settings = settings
        let runPath = settings.runDirectory ?? output + ".dam-run"
        do { try FileManager.default.createDirectory(atPath: runPath, withIntermediateDirectories: true) } catch {
            throw .runFolder(path: runPath, reason: "cannot create the folder: \(error.localizedDescription)")
        }
        func open(_ path: String) throws(DAMError) -> ModelSource {
            do { return try ModelSource.open(path) } catch { throw .source(path: path, reason: error.description) }
        }
        var sources: [ModelSource] = []
        for s in settings.sources { sources.append(try open(s.model)) }
        self.sources = sources
        base = try settings.baseModel.map { (b) throws(DAMError) in try open(b) } ?? sources[0]
        family = try DAMLlamaFamily(sources: sources.map { (config: $0.config, weights: $0.kind == .gguf ? KeptTensors($0.tensors) : $0.tensors) },
                                    trainEmbeddings: settings.dam.trainEmbeddings, trainNorms: settings.dam.trainNorms)

        let tokenizer: Tokenizer
        do { tokenizer = try LanguageModel.tokenizer(of: base) } catch { throw .source(path: base.path, reason: "no usable tokenizer: \(error)") }
        guard let eos = family.merged.eosTokenIds.first ?? tokenizer.eosTokenId else {
            throw .source(path: base.path, reason: "no eos_token_id in config.json or the tokenizer; documents need an end token")
        }
        var datasets: [DAMDataset<TokenBatch>] = [], counts: [Int] = []
        for s in settings.sources {
            let packed: PackedSequences
            do {
                let docs = try TrainingText.documents(at: s.data)
                packed = try PackedSequences(documents: tokenizer.encodeBatch(docs), eos: eos, length: settings.sequenceLength, source: s.data)
            } catch { throw .source(path: s.data, reason: "\(error)") }
            counts.append(packed.count)
            log("data \(s.data): \(packed.count) sequences of \(settings.sequenceLength) tokens")
            // sequences of seq_len ≥ 2 tokens always make a valid batch
            datasets.append(DAMDataset(count: packed.count) { indices in try! TokenBatch(indices.map { packed[$0] }) })
        }
        sequenceCounts = counts
        trainer = try DAMTrainer(configuration: settings.dam, family: family, datasets: datasets)
        runFolder = try DAMRunFolder(path: runPath, trainer: trainer, resume: resume)
    }

    /// Writes the merged model as a Hugging Face folder at `output` (atomically; replaced when `overwrite`):
    /// every tensor in the first source's dtype (f32 for a GGUF's quantized tensors, as read), config.json
    /// and tokenizer files of the base model, plus `coefficients.safetensors` (the raw coefficients, as in
    /// the run folder).
    public func export(to output: String, overwrite: Bool) throws(DAMError) {
        try trainer.mergeCurrent()
        let out: AtomicOutput
        do {
            out = try AtomicOutput(path: output, overwrite: overwrite)
            try out.makeWorkingDirectory()
        } catch { throw .runFolder(path: output, reason: "\(error)") }
        do {
            let first = sources[0].tensors
            let merged = Dictionary(uniqueKeysWithValues: family.mergedTensors().map { ($0.name, $0.tensor) })
            let infos = first.tensorInfos
            let writer = try CheckpointWriter(directory: out.workingPath, tensors: infos)
            for info in infos {
                let t = merged[info.name]!
                try writer.write(info.name, tensor: t.dtype == info.dtype ? t : t.converted(to: info.dtype))
            }
            try writer.finish()
            let (tensors, metadata) = DAMRunFolder.coefficientsFile(trainer: trainer)
            try SafetensorsWriter.save(tensors, to: out.workingPath + "/coefficients.safetensors", metadata: metadata)
            try base.writeConfig(into: out.workingPath)
            try base.writeCompanions(into: out.workingPath)
            try out.commit()
        } catch {
            out.abandon()
            throw .runFolder(path: output, reason: "\(error)")
        }
        try runFolder.recordOutputs(["model": output], step: trainer.step)
    }
}

/// A source whose tensors are read once and kept: the family reads each source weight twice (its source
/// model and its DAM layer), and a GGUF's tensors are dequantized copies, not views of the mapped file.
private final class KeptTensors: TensorSource, @unchecked Sendable {
    let base: any TensorSource
    private var kept: [String: Tensor] = [:]
    private let lock = Lock()

    init(_ base: any TensorSource) { self.base = base }

    var path: String { base.path }
    var tensorInfos: [TensorInfo] { base.tensorInfos }
    func info(_ name: String) -> TensorInfo? { base.info(name) }

    func tensor(_ name: String) throws(CheckpointError) -> Tensor {
        if let t = lock.withLock({ kept[name] }) { return t }
        let t = try base.tensor(name)
        return lock.withLock {
            if let first = kept[name] { return first }
            kept[name] = t
            return t
        }
    }
}
