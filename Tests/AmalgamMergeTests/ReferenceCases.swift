import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamTestSupport
import Foundation
import Testing

/// A scalar as `fixtures/merge/cases.json` writes it.
struct CaseScalar: Decodable {
    let value: ParameterValue

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { value = .bool(b) }
        else if let d = try? c.decode(Double.self) { value = .number(d) }
        else { value = .string(try c.decode(String.self)) }
    }
}

/// One mergekit run recorded by `scripts/fixtures/make_merge_fixtures.py`.
struct ReferenceCase: Decodable {
    struct Rule: Decodable {
        let filter: String
        let global: [String: CaseScalar]
        let models: [String: [String: CaseScalar]]
    }
    let method: String
    /// Dtype of the input models and of mergekit's output.
    let dtype: String
    /// The config's `dtype`, which mergekit computes in (nil in older records: same as `dtype`).
    let math: String?
    let models: [String]
    let base: String?
    let options: [String]
    let rules: [Rule]

    /// The first rule whose filter is part of the tensor name.
    func rule(for tensor: String) -> Rule {
        rules.first { $0.filter.isEmpty || tensor.contains($0.filter) }!
    }
}

/// Loads the cases, the input models and mergekit's outputs, and runs our methods on them.
enum Reference {
    static let root = URL(fileURLWithPath: fixturesDirectory).deletingLastPathComponent().path
    static let cases: [String: ReferenceCase] = {
        let url = URL(fileURLWithPath: fixturesDirectory + "/merge/cases.json")
        guard let data = try? Data(contentsOf: url) else { return [:] }
        return (try? JSONDecoder().decode([String: ReferenceCase].self, from: data)) ?? [:]
    }()

    static let models = ModelCache()

    final class ModelCache: @unchecked Sendable {
        private var folders: [String: ModelFolder] = [:]
        private let lock = NSLock()
        func folder(_ path: String) throws -> ModelFolder {
            lock.lock(); defer { lock.unlock() }
            if let f = folders[path] { return f }
            let f = try ModelFolder(path: Reference.root + "/" + path)
            folders[path] = f
            return f
        }
    }

    /// The largest error of one tensor and how many elements exceed the tolerance.
    struct Comparison: CustomStringConvertible {
        var tensor = ""
        var worst: Float = 0
        var worstOurs: Float = 0
        var worstExpected: Float = 0
        var failures = 0
        var count = 0
        var squaredError = 0.0
        var squaredExpected = 0.0
        /// ‖ours − mergekit‖ / ‖mergekit‖ over the tensor.
        var relativeNormError: Double { squaredExpected > 0 ? (squaredError / squaredExpected).squareRoot() : squaredError.squareRoot() }
        var description: String {
            "\(tensor): \(failures)/\(count) outside tolerance; worst ours \(worstOurs) vs mergekit \(worstExpected); "
                + "relative norm error \(relativeNormError)"
        }
    }

    /// One bf16 step at the magnitude of `x` (the spacing of bf16 values there).
    static func bf16Step(_ x: Float) -> Float {
        let m = abs(x)
        if m < Float.leastNormalMagnitude { return Float(bitPattern: 1 << 16) }
        return Float(sign: .plus, exponent: m.exponent - 7, significand: 1)
    }

    /// f32: |ours − mergekit| ≤ 1e-5·|mergekit| + 1e-6. bf16: ours rounded once (RNE) within one bf16
    /// step of mergekit's.
    static func compare(_ ours: [Float], _ expected: [Float], bf16: Bool, tensor: String) -> Comparison {
        var c = Comparison(tensor: tensor, count: expected.count)
        for (a0, b) in zip(ours, expected) {
            let a = bf16 ? BFloat16.round(a0) : a0
            let error = abs(a - b)
            let tolerance = bf16 ? bf16Step(max(abs(a), abs(b))) : 1e-5 * abs(b) + 1e-6
            let scaled = error / tolerance
            c.squaredError += Double(error) * Double(error)
            c.squaredExpected += Double(b) * Double(b)
            if !(error <= tolerance) { c.failures += 1 }
            if !(scaled <= c.worst) { c.worst = scaled; c.worstOurs = a; c.worstExpected = b }
        }
        return c
    }

    /// One tensor of a case: our inputs, our result and mergekit's.
    struct Output {
        let tensor: String
        let shape: [Int]
        let inputs: [MergeInput]
        let baseIndex: Int?
        let ours: [Float]
        let mergekit: [Float]
    }

    /// Runs `name` through our method tensor by tensor, in `arithmetic` (mergekit's: rounded to the case's
    /// working dtype, `math`).
    static func outputs(_ name: String, seed: UInt64 = 0, arithmetic: MergeArithmetic = .exact) throws -> [Output] {
        let c = try #require(cases[name], "missing case \(name): run scripts/fixtures/make_merge_fixtures.py")
        let method = try #require(MergeMethods.named(c.method))
        let expected = try SafetensorsFile(path: fixturesDirectory + "/merge/expected/\(name)/model.safetensors")
        // mergekit appends the base to the inputs when the config does not list it among `models`.
        let paths = c.base.map { c.models.contains($0) ? c.models : c.models + [$0] } ?? c.models
        let folders = try paths.map { try models.folder($0) }
        let truncate = c.options.contains("--unsafe-truncate-embeddings")
        let baseIndex = c.base.flatMap { paths.firstIndex(of: $0) }
        var results: [Output] = []
        for info in expected.tensorInfos {
            let rule = c.rule(for: info.name)
            var inputs: [MergeInput] = []
            for (path, folder) in zip(paths, folders) {
                let t = try folder.weights.tensor(info.name)
                let params = (rule.models[path] ?? [:]).mapValues(\.value)
                // mergekit converts the inputs to the config's dtype first (f16 math on f32 models).
                let values = c.math == "f16" ? t.floats().map { Float(Float16($0)) } : t.floats()
                inputs.append(MergeInput(model: path, values: values, shape: t.shape, parameters: Parameters(params)))
            }
            let context = MergeContext(
                tensorName: info.name, baseIndex: baseIndex,
                parameters: Parameters(rule.global.mapValues(\.value)),
                seed: SeedDerivation.seed(run: seed, tensor: info.name),
                isEmbedding: truncate && TensorName(info.name).role.isEmbeddingLike,
                rounding: Rounding(arithmetic, workingDType: ["bf16": .bf16, "f16": .f16][c.math ?? c.dtype] ?? .f32))
            let (values, shape) = try method.merge(inputs, context: context)
            #expect(shape == info.shape, "\(name) \(info.name): shape \(shape), mergekit \(info.shape)")
            results.append(Output(tensor: info.name, shape: info.shape, inputs: inputs, baseIndex: baseIndex,
                                  ours: values, mergekit: try expected.tensor(info.name).floats()))
        }
        return results
    }

    /// Runs `name` and compares every tensor with mergekit's.
    static func run(_ name: String) throws -> [Comparison] {
        let bf16 = cases[name]?.dtype == "bf16"
        return try outputs(name).map { compare($0.ours, $0.mergekit, bf16: bf16, tensor: $0.tensor) }
    }

    /// Expects every element of every tensor of the case within tolerance, except at most
    /// `allowedFraction` of each tensor's elements.
    static func expectMatches(_ name: String, allowedFraction: Double = 0,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let results = try run(name)
        #expect(!results.isEmpty, sourceLocation: sourceLocation)
        for r in results where Double(r.failures) > allowedFraction * Double(r.count) {
            Issue.record("\(name): \(r)", sourceLocation: sourceLocation)
        }
    }

    /// For merges mergekit computes in bf16 (every intermediate rounded): our once-rounded result stays
    /// within `relativeNorm` of mergekit's in the L2 sense, tensor by tensor.
    static func expectClose(_ name: String, relativeNorm: Double, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let results = try run(name)
        #expect(!results.isEmpty, sourceLocation: sourceLocation)
        for r in results where !(r.relativeNormError <= relativeNorm) {
            Issue.record("\(name): \(r)", sourceLocation: sourceLocation)
        }
    }
}

/// A quick input for hand-built cases.
func input(_ model: String, _ values: [Float], shape: [Int]? = nil, _ parameters: [String: ParameterValue] = [:]) -> MergeInput {
    MergeInput(model: model, values: values, shape: shape ?? [values.count], parameters: Parameters(parameters))
}

/// A context for hand-built cases.
func context(base: Int? = nil, _ parameters: [String: ParameterValue] = [:],
             tensor: String = "model.layers.0.mlp.up_proj.weight", seed: UInt64 = 1, embedding: Bool = false) -> MergeContext {
    MergeContext(tensorName: tensor, baseIndex: base, parameters: Parameters(parameters), seed: seed, isEmbedding: embedding)
}
