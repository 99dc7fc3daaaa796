import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// The rotary embedding's inverse frequencies, computed as transformers computes them (`default`,
/// `linear`, and Llama 3's `llama3` scaling), in f32.
public struct RotaryEmbedding: Sendable {
    /// Inverse frequency of each of the head's D/2 rotation pairs.
    public let inverseFrequencies: [Float]
    /// Multiplies cos and sin (`attention_factor`; 1 for the supported types).
    public let attentionScaling: Float

    /// From a Llama-family config; throws naming `rope_type` when it is not supported.
    public init(_ config: LlamaConfig, path: String) throws(ModelError) {
        let dim = config.headDim
        let base = Float(config.ropeTheta)
        // torch: 1 / base ** (arange(0, dim, 2).float() / dim), in f32
        var inv = (0..<(dim / 2)).map { i in 1 / Foundation.pow(base, Float(2 * i) / Float(dim)) }
        let kind = config.ropeScaling?["rope_type"]?.stringValue ?? config.ropeScaling?["type"]?.stringValue ?? "default"
        func number(_ key: String) throws(ModelError) -> Float {
            guard let v = config.ropeScaling?[key]?.doubleValue else {
                throw .unsupportedConfig(path: path, key: "rope_parameters.\(key)", reason: "missing; rope_type '\(kind)' needs it")
            }
            return Float(v)
        }
        switch kind {
        case "default":
            break
        case "linear":
            let factor = try number("factor")
            inv = inv.map { $0 / factor }
        case "llama3":
            let factor = try number("factor")
            let lowFreqFactor = try number("low_freq_factor")
            let highFreqFactor = try number("high_freq_factor")
            let oldContext = try number("original_max_position_embeddings")
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
            throw .unsupportedConfig(path: path, key: "rope_parameters.rope_type",
                                     reason: "'\(kind)' is not supported (supported: default, linear, llama3)")
        }
        inverseFrequencies = inv
        attentionScaling = 1
    }

    /// cos and sin [positions.count × D/2] for the given absolute positions.
    func tables(_ positions: [Int], cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        let half = inverseFrequencies.count
        for (n, p) in positions.enumerated() {
            for i in 0..<half {
                let angle = Float(p) * inverseFrequencies[i]
                cos[n * half + i] = Foundation.cos(angle) * attentionScaling
                sin[n * half + i] = Foundation.sin(angle) * attentionScaling
            }
        }
    }
}
