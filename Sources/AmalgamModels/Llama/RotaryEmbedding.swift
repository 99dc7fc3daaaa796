import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// The rotary embedding's inverse frequencies, computed as transformers 5 computes them
/// (`modeling_rope_utils.py`) in f32: `default`, `linear`, `dynamic` (NTK), `yarn`, `longrope` and `llama3`.
public struct RotaryEmbedding: Sendable {
    /// Inverse frequency of each of the head's D/2 rotation pairs, as initialised (for sequences no
    /// longer than the original context; `dynamic` and `longrope` change them past it).
    public let inverseFrequencies: [Float]
    /// Multiplies cos and sin (`attention_factor` of yarn and longrope; 1 for the others).
    public let attentionScaling: Float
    /// The scaling types whose frequencies depend on the sequence length.
    enum LengthDependence: Sendable {
        case none
        /// NTK: a larger base once the sequence passes `max_position_embeddings`.
        case dynamic(base: Float, factor: Float, maxPositions: Int, dim: Int)
        /// The long factors once the sequence passes `original_max_position_embeddings`.
        case longrope(long: [Float], originalMaxPositions: Int)
    }
    let lengthDependence: LengthDependence

    /// The rope types this engine computes.
    public static let supportedTypes = ["default", "linear", "dynamic", "yarn", "longrope", "llama3"]

    /// From a Llama-family config; throws naming config.json and the key when the rope type is unknown or
    /// a field it needs is missing or malformed. `topLevelOriginalMaxPositions` is config.json's own
    /// `original_max_position_embeddings`, which transformers prefers over the one in the rope parameters.
    public init(_ config: LlamaConfig, path: String, section: String = "rope_parameters",
                topLevelOriginalMaxPositions: Int? = nil) throws(ModelError) {
        let dim = config.headDim
        let base = Float(config.ropeTheta)
        let parameters = config.ropeScaling ?? JSONObject()
        let kind = parameters["rope_type"]?.stringValue ?? parameters["type"]?.stringValue ?? "default"
        func fail(_ key: String, _ reason: String) -> ModelError {
            .unsupportedConfig(path: path, key: "\(section).\(key)", reason: reason)
        }
        func optionalNumber(_ key: String) throws(ModelError) -> Double? {
            guard let v = parameters[key], !v.isNull else { return nil }
            guard let d = v.doubleValue else { throw fail(key, "must be a number, is \(v.compactText())") }
            return d
        }
        func number(_ key: String) throws(ModelError) -> Double {
            guard let d = try optionalNumber(key) else { throw fail(key, "missing; rope_type '\(kind)' needs it") }
            return d
        }
        func factors(_ key: String) throws(ModelError) -> [Float] {
            guard let list = parameters[key]?.arrayValue else { throw fail(key, "missing; rope_type '\(kind)' needs a list of \(dim / 2) numbers") }
            let values = list.compactMap(\.doubleValue).map(Float.init)
            guard values.count == list.count, values.count == dim / 2 else {
                throw fail(key, "must be a list of \(dim / 2) numbers (head_dim / 2), has \(list.count) entries")
            }
            return values
        }
        // transformers' standardisation: config.json's top-level value first, then the rope parameters',
        // then max_position_embeddings
        func originalMaxPositions() throws(ModelError) -> Int {
            if let top = topLevelOriginalMaxPositions { return top }
            guard let v = try optionalNumber("original_max_position_embeddings") else { return config.maxPositionEmbeddings }
            guard v > 0, v.rounded() == v else { throw fail("original_max_position_embeddings", "must be a positive integer") }
            return Int(v)
        }
        let exponents = (0..<(dim / 2)).map { Float(2 * $0) / Float(dim) }
        // torch: 1 / base ** (arange(0, dim, 2).float() / dim), in f32
        var inv = exponents.map { 1 / Foundation.pow(base, $0) }
        var scaling: Float = 1
        var dependence = LengthDependence.none
        switch kind {
        case "default":
            break
        case "linear":
            let factor = Float(try number("factor"))
            inv = inv.map { $0 / factor }
        case "dynamic":
            dependence = .dynamic(base: base, factor: Float(try number("factor")), maxPositions: config.maxPositionEmbeddings, dim: dim)
        case "yarn":
            let original = try originalMaxPositions()
            guard parameters["factor"] != nil else { throw fail("factor", "missing; rope_type 'yarn' needs it (null means max_position_embeddings / original_max_position_embeddings)") }
            let factor = try optionalNumber("factor") ?? Double(config.maxPositionEmbeddings) / Double(original)
            func mscale(_ scale: Double, _ m: Double = 1) -> Double { scale <= 1 ? 1 : 0.1 * m * Foundation.log(scale) + 1 }
            if let given = try optionalNumber("attention_factor") {
                scaling = Float(given)
            } else if let m = try optionalNumber("mscale"), let all = try optionalNumber("mscale_all_dim"), m != 0, all != 0 {
                scaling = Float(mscale(factor, m) / mscale(factor, all))
            } else {
                scaling = Float(mscale(factor))
            }
            let betaFast = try optionalNumber("beta_fast").flatMap { $0 == 0 ? nil : $0 } ?? 32
            let betaSlow = try optionalNumber("beta_slow").flatMap { $0 == 0 ? nil : $0 } ?? 1
            let truncate = parameters["truncate"]?.boolValue ?? true
            func correctionDim(_ rotations: Double) -> Double {
                Double(dim) * Foundation.log(Double(original) / (rotations * 2 * Double.pi)) / (2 * Foundation.log(Double(base)))
            }
            var low = correctionDim(betaFast), high = correctionDim(betaSlow)
            if truncate { low = low.rounded(.down); high = high.rounded(.up) }
            low = max(low, 0)
            high = min(high, Double(dim - 1))
            if low == high { high += 0.001 }
            let positionFrequencies = exponents.map { Foundation.pow(base, $0) }
            let f = Float(factor), span = Float(high - low), lowF = Float(low)
            inv = positionFrequencies.enumerated().map { i, p in
                let extrapolation = 1 / p, interpolation = 1 / (f * p)
                let ramp = min(max((Float(i) - lowF) / span, 0), 1)
                let extrapolationFactor = 1 - ramp
                return interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor
            }
        case "longrope":
            let original = try originalMaxPositions()
            let short = try factors("short_factor"), long = try factors("long_factor")
            let factor = try optionalNumber("factor") ?? Double(config.maxPositionEmbeddings) / Double(original)
            if let given = try optionalNumber("attention_factor") {
                scaling = Float(given)
            } else {
                scaling = factor <= 1 ? 1 : Float((1 + Foundation.log(factor) / Foundation.log(Double(original))).squareRoot())
            }
            let powers = exponents.map { Foundation.pow(base, $0) }
            inv = zip(short, powers).map { 1 / ($0 * $1) }
            dependence = .longrope(long: zip(long, powers).map { 1 / ($0 * $1) }, originalMaxPositions: original)
        case "llama3":
            let factor = Float(try number("factor"))
            let lowFreqFactor = Float(try number("low_freq_factor"))
            let highFreqFactor = Float(try number("high_freq_factor"))
            let oldContext = Float(try originalMaxPositions())
            let lowFreqWavelen = oldContext / lowFreqFactor
            let highFreqWavelen = oldContext / highFreqFactor
            inv = inv.map { f in
                let wavelen = 2 * Float.pi / f
                let scaled = wavelen > lowFreqWavelen ? f / factor : f
                guard !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen) else { return scaled }
                let smooth = (oldContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor)
                return (1 - smooth) * scaled / factor + smooth * scaled
            }
        default:
            throw fail("rope_type", "'\(kind)' is not supported (supported: \(RotaryEmbedding.supportedTypes.joined(separator: ", ")))")
        }
        inverseFrequencies = inv
        attentionScaling = scaling
        lengthDependence = dependence
    }

    /// The inverse frequencies transformers uses for a forward pass whose positions reach
    /// `sequenceLength - 1`: dynamic NTK recomputes its base past `max_position_embeddings`, longrope takes
    /// its long factors past `original_max_position_embeddings`. (transformers keeps the dynamic frequencies
    /// of its longest call so far; for one call, or calls of growing length as in generation, the two agree.)
    public func inverseFrequencies(sequenceLength: Int) -> [Float] {
        switch lengthDependence {
        case .none:
            return inverseFrequencies
        case let .dynamic(base, factor, maxPositions, dim):
            guard sequenceLength > maxPositions else { return inverseFrequencies }
            let ratio = factor * Float(sequenceLength) / Float(maxPositions) - (factor - 1)
            let scaledBase = base * Foundation.pow(ratio, Float(Double(dim) / Double(dim - 2)))
            return (0..<(dim / 2)).map { 1 / Foundation.pow(scaledBase, Float(2 * $0) / Float(dim)) }
        case let .longrope(long, original):
            return sequenceLength > original ? long : inverseFrequencies
        }
    }

    /// cos and sin [positions.count × D/2] for the given absolute positions of one forward pass.
    func tables(_ positions: [Int], cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        let frequencies = inverseFrequencies(sequenceLength: (positions.max() ?? 0) + 1)
        let half = frequencies.count
        for (n, p) in positions.enumerated() {
            for i in 0..<half {
                let angle = Float(p) * frequencies[i]
                cos[n * half + i] = Foundation.cos(angle) * attentionScaling
                sin[n * half + i] = Foundation.sin(angle) * attentionScaling
            }
        }
    }
}
