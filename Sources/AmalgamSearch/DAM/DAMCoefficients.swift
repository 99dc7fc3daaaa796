import AmalgamCore
import Foundation

/// One linear layer DAM learns coefficients for.
public struct DAMLayer: Sendable, Equatable, Codable {
    /// Name used in exported files (`fc1`, `model.layers.0.self_attn.q_proj`).
    public var name: String
    /// Input columns of the weight (`in_features`): one coefficient per source model and column.
    public var inputs: Int
    /// Whether the layer has a bias (one scalar per source model).
    public var hasBias: Bool

    /// A layer description.
    public init(name: String, inputs: Int, hasBias: Bool) {
        self.name = name
        self.inputs = inputs
        self.hasBias = hasBias
    }
}

/// Where each coefficient lives in DAM's one flat vector: layer by layer, the weight coefficients
/// `m_0 … m_{N−1}` (each `inputs` long), then the bias scalars `c_0 … c_{N−1}` when the layer has a bias.
/// Coefficients, their gradients, the scales `f(m)` and the optimiser's moments all share this layout.
public struct DAMLayout: Sendable, Equatable {
    /// The layers, in order.
    public let layers: [DAMLayer]
    /// Number of source models N.
    public let sourceCount: Int
    /// Offset of each layer's block.
    public let layerOffsets: [Int]
    /// Length of the flat vector.
    public let count: Int

    /// The layout of `layers` for `sourceCount` models.
    public init(layers: [DAMLayer], sourceCount: Int) {
        self.layers = layers
        self.sourceCount = sourceCount
        var offsets: [Int] = [], at = 0
        for l in layers {
            offsets.append(at)
            at += sourceCount * l.inputs + (l.hasBias ? sourceCount : 0)
        }
        layerOffsets = offsets
        count = at
    }

    /// Range of model `model`'s weight coefficients in layer `layer`.
    public func weightRange(layer: Int, model: Int) -> Range<Int> {
        let start = layerOffsets[layer] + model * layers[layer].inputs
        return start ..< start + layers[layer].inputs
    }

    /// Index of model `model`'s bias scalar in layer `layer` (the layer must have a bias).
    public func biasIndex(layer: Int, model: Int) -> Int {
        layerOffsets[layer] + sourceCount * layers[layer].inputs + model
    }

    /// For each flat index, whether it is a bias scalar (else a weight coefficient).
    public var biasMask: [Bool] {
        var flags = [Bool](repeating: false, count: count)
        for (l, layer) in layers.enumerated() where layer.hasBias {
            for k in 0..<sourceCount { flags[biasIndex(layer: l, model: k)] = true }
        }
        return flags
    }
}

/// The map from raw weight coefficients to the scales that multiply the source weights' input columns.
public enum DAMScaleFunction: String, Sendable, Codable, CaseIterable {
    /// `tanh(m)`, as the released training code applies.
    case tanh
    /// `m` itself.
    case identity

    /// f(m).
    @inline(__always) public func apply(_ m: Float) -> Float { self == .tanh ? Foundation.tanh(m) : m }
    /// f′(m).
    @inline(__always) public func derivative(_ m: Float) -> Float {
        if self == .identity { return 1 }
        let t = Foundation.tanh(m)
        return 1 - t * t
    }
}

/// How the coefficients start.
public enum DAMInitialisation: String, Sendable, Codable, CaseIterable {
    /// Every weight coefficient 1/N (the released default).
    case uniform
    /// For each layer and input column, a softmax over the N models of standard normal draws (seeded).
    case softmaxRandom = "softmax-random"
}

extension DAMLayout {
    /// Initial coefficients: weight coefficients by `initialisation`, bias scalars all `biasValue`.
    public func initialCoefficients(_ initialisation: DAMInitialisation, biasValue: Float,
                                    seed: UInt64) -> [Float] {
        var values = [Float](repeating: 1 / Float(sourceCount), count: count)
        var g = SeededGenerator(seed: seed, stream: 11)
        for (l, layer) in layers.enumerated() {
            if initialisation == .softmaxRandom {
                for j in 0..<layer.inputs {
                    let z = (0..<sourceCount).map { _ in Double(g.normal()) }
                    let top = z.max()!, e = z.map { exp($0 - top) }, total = e.reduce(0, +)
                    for k in 0..<sourceCount { values[weightRange(layer: l, model: k).lowerBound + j] = Float(e[k] / total) }
                }
            }
            if layer.hasBias { for k in 0..<sourceCount { values[biasIndex(layer: l, model: k)] = biasValue } }
        }
        return values
    }

    /// The scales the merge uses: f(m) for weight coefficients, bias scalars as they are.
    public func scales(of coefficients: [Float], f: DAMScaleFunction) -> [Float] {
        let bias = biasMask
        return coefficients.indices.map { bias[$0] ? coefficients[$0] : f.apply(coefficients[$0]) }
    }

    /// The coefficients as named tensors: `<layer>.weight_coefficients` `[N, inputs]` and
    /// `<layer>.bias_coefficients` `[N]`.
    public func namedTensors(_ coefficients: [Float]) -> [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = []
        for (l, layer) in layers.enumerated() {
            let start = layerOffsets[l]
            out.append((layer.name + ".weight_coefficients",
                        Tensor(Array(coefficients[start ..< start + sourceCount * layer.inputs]), shape: [sourceCount, layer.inputs])))
            if layer.hasBias {
                let b = biasIndex(layer: l, model: 0)
                out.append((layer.name + ".bias_coefficients", Tensor(Array(coefficients[b ..< b + sourceCount]), shape: [sourceCount])))
            }
        }
        return out
    }
}
