import AmalgamCheckpoint
import AmalgamCore
import AmalgamTokenizer
import Foundation

/// What can go wrong in a tokenizer transplant; each message names the model, tensor or option.
public enum TokenSurgeonError: Error, CustomStringConvertible {
    case checkpoint(CheckpointError)
    case tokenizer(TokenizerError)
    /// A model that cannot take part (no embedding, a matrix of the wrong rank, …).
    case model(path: String, reason: String)
    /// An option value that cannot work with these models.
    case option(name: String, reason: String)
    case output(path: String, reason: String)

    public var description: String {
        switch self {
        case let .checkpoint(e): return "\(e)"
        case let .tokenizer(e): return "\(e)"
        case let .model(path, reason): return "\(path): \(reason)"
        case let .option(name, reason): return "\(name): \(reason)"
        case let .output(path, reason): return "\(path): \(reason)"
        }
    }
}

/// A vocabulary keyed as mergekit-tokensurgeon compares tokens across tokenizers: a leading word-start
/// marker (`Ġ` or `▁`, by tokenizer class) is taken apart, and a special token (bos, eos, unk, sep, pad, cls,
/// mask in tokenizer_config.json) stands for its role, so `<s>` and `<|begin_of_text|>` are the same token.
public struct NormalizedVocabulary: Sendable {
    public enum Key: Hashable, Sendable {
        case plain(String)
        case wordStart(String)
        case special(String)
    }

    /// Normalised token → id. Two ids with one key: the larger id wins.
    public let ids: [Key: Int]
    /// The word-start marker assumed.
    public let wordStart: String

    /// The roles of tokenizer_config.json that make a token special, in transformers' order.
    static let roles = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]

    public init(tokenizer: Tokenizer, tokenizerConfig: JSONObject?) {
        var roleOf: [String: String] = [:]
        for role in Self.roles.reversed() {  // the first role in order wins
            guard let v = tokenizerConfig?[role] else { continue }
            if let s = v.stringValue ?? v["content"]?.stringValue { roleOf[s] = role }
        }
        let className = tokenizerConfig?["tokenizer_class"]?.stringValue ?? ""
        let base = className.hasSuffix("Fast") ? String(className.dropLast(4)) : className
        let marker: String
        if ["LlamaTokenizer", "T5Tokenizer", "GemmaTokenizer"].contains(base) {
            marker = tokenizer.id(of: "Ġhello") != nil ? "Ġ" : "▁"
        } else {
            marker = "Ġ"  // GPT-2 style, and mergekit's assumption for any other class
        }
        var ids: [Key: Int] = [:]
        for id in 0..<tokenizer.vocabularySize {
            guard let token = tokenizer.token(of: id) else { continue }
            ids[Self.key(token, marker: marker, roles: roleOf)] = id
        }
        self.ids = ids
        wordStart = marker
    }

    static func key(_ token: String, marker: String, roles: [String: String]) -> Key {
        if token.hasPrefix(marker) { return .wordStart(String(token.dropFirst(marker.count))) }
        if let role = roles[token] { return .special(role) }
        return .plain(token)
    }
}

/// Rebuilds a model's embedding and lm_head in a donor tokenizer's vocabulary and id order, as
/// mergekit-tokensurgeon does: a donor token the model also has keeps the model's row exactly; every other
/// token's row is approximated (`Method`). Every other tensor is the model's.
public struct TokenSurgeon: Sendable {
    /// How rows of tokens the model does not have are made.
    public enum Method: String, Sendable, CaseIterable {
        /// Orthogonal matching pursuit (mergekit's default): the donor's row as a combination of k donor rows of
        /// shared tokens, the same combination of the model's rows of those tokens.
        case omp
        /// The k shared tokens nearest in the donor's space, weighted by `WeightScheme`; the same weights on the
        /// model's rows of those tokens.
        case commonInterpolation = "common_interpolation"
        /// The model's rows of the token's text as the model's tokenizer splits it, combined by `SubwordMethod`.
        case subword
        /// The mean of the model's rows.
        case mean
        /// Zeros.
        case zero
        /// Standard normal draws from Amalgam's seeded generator (mergekit draws from torch's).
        case randn
        /// Draws from the Gaussian with the mean and covariance of the model's rows (seeded; mergekit: torch's).
        case johnHewitt = "john_hewitt"

        /// Whether the rows come from a random generator (then `seed` decides them).
        public var isRandom: Bool { self == .randn || self == .johnHewitt }
        /// Whether `k` shared tokens are combined.
        public var usesK: Bool { self == .omp || self == .commonInterpolation }
    }

    /// How `common_interpolation` weights the k nearest shared tokens (mergekit's `--weight-scheme`).
    public enum WeightScheme: String, Sendable, CaseIterable {
        /// Inverse Euclidean distance, or the cosine similarity with `cosineSimilarity`; normalised to sum 1.
        case distanceProportional = "distance_proportional"
        /// The least-squares weights that sum to one.
        case barycentric
        /// The unconstrained least-squares weights.
        case leastSquares = "least_squares"
    }

    /// How `subword` combines the model's rows of a token's pieces (mergekit's `--subword-method`).
    public enum SubwordMethod: String, Sendable, CaseIterable {
        case mean
        case sum
        /// Weights 1…n, the largest on the last piece for the embedding, on the first for the lm_head.
        case weightedMean = "weighted_mean"
        /// The last piece's row for the embedding, the first's for the lm_head.
        case firstLast = "first_last"
    }

    public struct Options: Sendable {
        public var method: Method = .omp
        /// Shared tokens per new token (omp, common_interpolation).
        public var k: Int = 64
        /// common_interpolation: nearest by cosine similarity instead of Euclidean distance.
        public var cosineSimilarity = false
        public var weightScheme: WeightScheme = .distanceProportional
        public var subwordMethod: SubwordMethod = .mean
        /// Standard deviation of seeded Gaussian noise added to approximated rows (mergekit's -nvn).
        public var newVocabNoise: Double?
        /// Factor applied to approximated rows (mergekit's -nvs).
        public var newVocabScale: Double?
        public var seed: UInt64 = 0
        public init() {}
    }

    /// Counts for one rebuilt matrix.
    public struct MatrixReport: Sendable {
        public let tensor: String
        public let rows: Int
        public let exact: Int
        public let approximated: Int
        /// Anything the user should know about this matrix (a fallback taken).
        public var notes: [String] = []
    }

    public let model: ModelSource
    public let donor: ModelSource
    public let options: Options
    let modelVocabulary: NormalizedVocabulary
    let donorVocabulary: NormalizedVocabulary
    /// The model's tokenizer (subword splits new tokens' text with it).
    let modelTokenizer: Tokenizer

    static let embedName = "model.embed_tokens.weight"
    static let headName = "lm_head.weight"

    public init(model: ModelSource, donor: ModelSource, options: Options) throws(TokenSurgeonError) {
        self.model = model
        self.donor = donor
        self.options = options
        func vocabulary(_ source: ModelSource) throws(TokenSurgeonError) -> (NormalizedVocabulary, Tokenizer) {
            let tokenizer: Tokenizer
            do { tokenizer = try LanguageModel.tokenizer(of: source) } catch { throw .tokenizer(error) }
            var config: JSONObject?
            if let text = source.companionText("tokenizer_config.json") { config = (try? JSONValue.parse(text))?.objectValue }
            return (NormalizedVocabulary(tokenizer: tokenizer, tokenizerConfig: config), tokenizer)
        }
        (modelVocabulary, modelTokenizer) = try vocabulary(model)
        (donorVocabulary, _) = try vocabulary(donor)
        guard model.tensors.info(Self.embedName) != nil else {
            throw .model(path: model.path, reason: "no \(Self.embedName); tokensurgeon rebuilds a Llama-family model's embedding")
        }
        guard donor.tensors.info(Self.embedName) != nil else {
            throw .model(path: donor.path, reason: "no \(Self.embedName); the donor's embedding guides the new rows")
        }
        if options.method.usesK {
            guard options.k >= 1 else { throw .option(name: "-k", reason: "must be at least 1") }
            let shared = Set(modelVocabulary.ids.keys).intersection(donorVocabulary.ids.keys).count
            guard options.k <= shared else {
                throw .option(name: "-k", reason: "\(options.k) shared tokens per new token, but the two tokenizers share only \(shared) tokens; lower -k")
            }
        }
    }

    /// The number of rows of the rebuilt matrices: the donor tokenizer's ids (padding rows past it are not kept).
    public var outputRows: Int { max(donorVocabulary.ids.count, (donorVocabulary.ids.values.max() ?? -1) + 1) }

    /// Whether the model's output shares the embedding (no lm_head of its own): then only the embedding is rebuilt.
    public var modelIsTied: Bool { model.tensors.info(Self.headName) == nil }

    /// Where a write is: a matrix being rebuilt (nothing written yet), then each tensor written, of `total`.
    public struct WriteProgress: Sendable {
        public var done: Int
        public var total: Int
        /// The tensor written, or what is being rebuilt.
        public var item: String
    }

    /// Writes the transplanted model into `output` (a folder that appears only when complete): the weights,
    /// config.json with the donor's vocab size and special token ids, and the donor's tokenizer files.
    /// `durability`: what the finished folder survives (see `Durability`).
    public func write(to output: String, overwrite: Bool, maxShardSize: Int = 5_000_000_000, durability: Durability = .machine,
                      progress: (WriteProgress) -> Void = { _ in }) throws(TokenSurgeonError) -> [MatrixReport] {
        let out: AtomicOutput
        do {
            out = try AtomicOutput(path: output, overwrite: overwrite)
            try out.makeWorkingDirectory()
        } catch { throw .output(path: output, reason: "\(error)") }
        do {
            let reports = try writeFolder(out.workingPath, maxShardSize: maxShardSize, durability: durability, progress: progress)
            try out.commit()
            return reports
        } catch let error as TokenSurgeonError {
            out.abandon()
            throw error
        } catch let error as CheckpointError {
            out.abandon()
            throw .checkpoint(error)
        } catch {
            out.abandon()
            throw .output(path: output, reason: "\(error)")
        }
    }

    private func writeFolder(_ folder: String, maxShardSize: Int, durability: Durability, progress: (WriteProgress) -> Void) throws -> [MatrixReport] {
        let tensorCount = model.tensors.tensorInfos.count
        var rebuilt: [String: Tensor] = [:]
        var reports: [MatrixReport] = []
        for name in [Self.embedName] + (modelIsTied ? [] : [Self.headName]) {
            // A tied donor's output rows are its embedding.
            let donorName = name == Self.headName && donor.tensors.info(name) == nil ? Self.embedName : name
            progress(WriteProgress(done: 0, total: tensorCount, item: "rebuilding \(name)"))
            let (tensor, report) = try rebuild(name, donorTensor: donorName)
            rebuilt[name] = tensor
            reports.append(report)
        }
        var infos: [TensorInfo] = []
        for info in model.tensors.tensorInfos {
            if let t = rebuilt[info.name] {
                infos.append(TensorInfo(name: info.name, dtype: t.dtype, shape: t.shape))
            } else {
                infos.append(info)
            }
        }
        let writer = try CheckpointWriter(directory: folder, tensors: infos, maxShardSize: maxShardSize, durability: durability)
        for (i, info) in infos.enumerated() {
            if let t = rebuilt[info.name] {
                try writer.write(info.name, tensor: t)
            } else {
                try writer.write(info.name, tensor: try model.tensors.tensor(info.name))
                model.tensors.release(info.name)
            }
            progress(WriteProgress(done: i + 1, total: tensorCount, item: info.name))
        }
        try writer.finish()
        try writeFileAtomically(JSONValue.object(outputConfig()).pythonText() + "\n", to: folder + "/config.json")
        try donor.writeCompanions(into: folder, skipping: ["config.json"])
        return reports
    }

    /// config.json: the model's, with `vocab_size` = the new rows and the donor's special token ids and
    /// padding side where the donor's config.json has them.
    func outputConfig() -> JSONObject {
        var c = model.config.raw
        c["vocab_size"] = .int(outputRows)
        let donorConfig = donor.config.raw
        for key in ["pad_token_id", "eos_token_id", "bos_token_id", "unk_token_id", "mask_token_id", "padding_side"] {
            if let v = donorConfig[key] { c[key] = v }
        }
        return c
    }

    /// One matrix in the donor's id order.
    func rebuild(_ name: String, donorTensor donorName: String) throws -> (Tensor, MatrixReport) {
        let modelTensor = try model.tensors.tensor(name)
        let donorTensor = try donor.tensors.tensor(donorName)
        guard modelTensor.shape.count == 2 else { throw TokenSurgeonError.model(path: model.path, reason: "\(name) is \(modelTensor.shape), not a matrix") }
        guard donorTensor.shape.count == 2 else { throw TokenSurgeonError.model(path: donor.path, reason: "\(donorName) is \(donorTensor.shape), not a matrix") }
        let modelRows = modelTensor.shape[0], C = modelTensor.shape[1]
        let donorRows = donorTensor.shape[0], D = donorTensor.shape[1]
        let orig = modelTensor.converted(to: .f32).floats()
        let donorValues = donorTensor.converted(to: .f32).floats()
        let safeOrig = modelVocabulary.ids.filter { $0.value < modelRows }
        let safeDonor = donorVocabulary.ids.filter { $0.value < donorRows }

        let rows = outputRows
        var result = [Float](repeating: 0, count: rows * C)
        var newTokens: [(key: NormalizedVocabulary.Key, id: Int)] = []
        var exact = 0
        for (key, donorId) in donorVocabulary.ids where donorId < donorRows {
            if let o = safeOrig[key] {
                for j in 0..<C { result[donorId * C + j] = orig[o * C + j] }
                exact += 1
            } else {
                newTokens.append((key, donorId))
            }
        }
        newTokens.sort { $0.id < $1.id }
        var notes: [String] = []
        if !newTokens.isEmpty {
            var rowsOut: [[Float]]
            switch options.method {
            case .zero:
                rowsOut = Array(repeating: [Float](repeating: 0, count: C), count: newTokens.count)
            case .mean:
                var mean = [Float](repeating: 0, count: C)
                for r in 0..<modelRows { for j in 0..<C { mean[j] += orig[r * C + j] } }
                for j in 0..<C { mean[j] /= Float(modelRows) }
                rowsOut = Array(repeating: mean, count: newTokens.count)
            case .omp, .commonInterpolation:
                // The shared tokens in donor id order: their donor rows guide, their model rows are combined.
                let shared = safeOrig.keys.filter { safeDonor[$0] != nil }.sorted { safeDonor[$0]! < safeDonor[$1]! }
                guard options.k <= shared.count else {
                    throw TokenSurgeonError.option(name: "-k", reason: "\(options.k) shared tokens per new token, but only \(shared.count) shared tokens have rows in both \(name) matrices")
                }
                var atoms = [Double](repeating: 0, count: shared.count * D)
                var values = [Double](repeating: 0, count: shared.count * C)
                for (i, key) in shared.enumerated() {
                    let d = safeDonor[key]!, o = safeOrig[key]!
                    for j in 0..<D { atoms[i * D + j] = Double(donorValues[d * D + j]) }
                    for j in 0..<C { values[i * C + j] = Double(orig[o * C + j]) }
                }
                let targets = newTokens.map { t in (0..<D).map { Double(donorValues[t.id * D + $0]) } }
                let fit: @Sendable ([Double]) -> (chosen: [Int], weights: [Double])
                if options.method == .omp {
                    let pursuit = MatchingPursuit(atoms: atoms, count: shared.count, dimension: D, k: options.k)
                    fit = { t in let (c, w) = pursuit.fit(t); return (c, w) }
                } else {
                    let interpolation = CommonInterpolation(atoms: atoms, count: shared.count, dimension: D, k: options.k,
                                                            cosine: options.cosineSimilarity, scheme: options.weightScheme)
                    fit = { t in interpolation.fit(t) }
                }
                let modelRowsOfShared = values
                let flat = OutputRows(count: newTokens.count * C)
                defer { flat.pointer.deallocate() }
                // Each token's fit is independent: same values at any thread count.
                DispatchQueue.concurrentPerform(iterations: newTokens.count) { i in
                    let (chosen, weights) = fit(targets[i])
                    var row = [Double](repeating: 0, count: C)
                    for (a, w) in zip(chosen, weights) { for j in 0..<C { row[j] += w * modelRowsOfShared[a * C + j] } }
                    for j in 0..<C { flat.pointer[i * C + j] = Float(row[j]) }
                }
                rowsOut = (0..<newTokens.count).map { Array(UnsafeBufferPointer(start: flat.pointer + $0 * C, count: C)) }
            case .subword:
                rowsOut = []
                for t in newTokens {
                    let ids = modelTokenizer.encode(Self.text(of: t.key), addSpecialTokens: false)
                    if let bad = ids.first(where: { $0 >= modelRows }) {
                        throw TokenSurgeonError.model(path: model.path, reason: "its tokenizer gives id \(bad) for the text of donor token \(t.id), but \(name) has only \(modelRows) rows")
                    }
                    rowsOut.append(SubwordCombination.combine(ids: ids, method: options.subwordMethod, isHead: name == Self.headName,
                                                              columns: C) { orig[($0 * C)..<(($0 + 1) * C)] })
                }
            case .randn, .johnHewitt:
                var rng = SeededGenerator(seed: SeedDerivation.seed(run: options.seed, tensor: name + "/" + options.method.rawValue))
                var drawn: [[Float]]? = nil
                if options.method == .johnHewitt {
                    drawn = Self.johnHewittRows(values: orig, rows: modelRows, columns: C, count: newTokens.count, generator: &rng)
                    if drawn == nil {
                        notes.append("the covariance of the model's rows is not positive definite: drew 0.02 × standard normal rows instead (mergekit's intended fallback)")
                    }
                }
                if let drawn {
                    rowsOut = drawn
                } else {
                    let scale: Float = options.method == .randn ? 1 : 0.02
                    rowsOut = []
                    for _ in newTokens { rowsOut.append((0..<C).map { _ in scale * rng.normal() }) }
                }
            }
            if options.newVocabNoise != nil || options.newVocabScale != nil {
                var rng = SeededGenerator(seed: SeedDerivation.seed(run: options.seed, tensor: name))
                for i in rowsOut.indices {
                    if let s = options.newVocabNoise { rowsOut[i].withUnsafeMutableBufferPointer { rng.addNormals(scale: Float(s), to: $0) } }
                    if let s = options.newVocabScale { for j in 0..<C { rowsOut[i][j] *= Float(s) } }
                }
            }
            for (i, t) in newTokens.enumerated() { for j in 0..<C { result[t.id * C + j] = rowsOut[i][j] } }
        }
        let tensor = Tensor(result, shape: [rows, C]).converted(to: modelTensor.dtype)
        model.tensors.release(name)
        donor.tensors.release(donorName)
        return (tensor, MatrixReport(tensor: name, rows: rows, exact: exact, approximated: newTokens.count, notes: notes))
    }

    /// The text mergekit's `unnormalize_token` gives a normalised token: a word-start token's text with a
    /// leading space, a special token's role name (`bos_token`, …), any other token as it is.
    static func text(of key: NormalizedVocabulary.Key) -> String {
        switch key {
        case let .plain(t): return t
        case let .wordStart(t): return " " + t
        case let .special(role): return role
        }
    }
}

/// Rows written by concurrent workers, each to its own range.
private struct OutputRows: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(count: Int) {
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }
}

/// Greedy orthogonal matching pursuit in f64: k times, the unused atom most correlated (in absolute value) with
/// the residual, orthogonalised against those chosen (Gram–Schmidt, twice for stability); the residual is the
/// target minus its projection on them; the coefficients are the least-squares fit on the chosen atoms (R·c = Qᵀt).
struct MatchingPursuit: Sendable {
    let atoms: [Double]  // [count × dimension]
    let count: Int
    let dimension: Int
    let k: Int

    func fit(_ target: [Double]) -> (chosen: [Int], coefficients: [Double]) {
        let D = dimension
        var residual = target
        var used = [Bool](repeating: false, count: count)
        var chosen: [Int] = []
        var q: [[Double]] = []
        var r = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)  // r[row][col], upper triangular
        for t in 0..<k {
            var best = -1
            var bestValue = -Double.infinity
            for a in 0..<count where !used[a] {
                var dot = 0.0
                for j in 0..<D { dot += residual[j] * atoms[a * D + j] }
                if abs(dot) > bestValue { bestValue = abs(dot); best = a }
            }
            used[best] = true
            chosen.append(best)
            var v = Array(atoms[(best * D)..<((best + 1) * D)])
            for pass in 0..<2 {
                for (i, qi) in q.enumerated() {
                    var p = 0.0
                    for j in 0..<D { p += qi[j] * v[j] }
                    for j in 0..<D { v[j] -= p * qi[j] }
                    if pass == 0 { r[i][t] = p } else { r[i][t] += p }
                }
            }
            let norm = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-8)
            r[t][t] = norm
            q.append(v.map { $0 / norm })
            // residual = target − Q Qᵀ target
            residual = target
            for qi in q {
                var p = 0.0
                for j in 0..<D { p += qi[j] * target[j] }
                for j in 0..<D { residual[j] -= p * qi[j] }
            }
        }
        // R c = Qᵀ t by back substitution.
        var rhs = q.map { qi in zip(qi, target).reduce(0.0) { $0 + $1.0 * $1.1 } }
        var c = [Double](repeating: 0, count: k)
        for i in stride(from: k - 1, through: 0, by: -1) {
            var s = rhs[i]
            for j in (i + 1)..<k { s -= r[i][j] * c[j] }
            c[i] = s / r[i][i]
            rhs[i] = s
        }
        return (chosen, c)
    }
}
