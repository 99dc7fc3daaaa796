import AmalgamModels
import Foundation

/// The terms of one evaluation of DAM's loss.
public struct DAMLoss: Sendable, Equatable, Codable {
    /// `T² · KL(softmax(z_k/T) ‖ softmax(z/T))` averaged over the rows of batch k, per source k.
    public var kl: [Double]
    /// `Σ_layers mean_{a<b} cos(m_a, m_b)` (before λ_sim).
    public var similarity: Double
    /// `Σ |m|₁` over weight coefficients (before λ₁).
    public var l1: Double
    /// `Σ |m|₂²` over weight coefficients (before λ₂).
    public var l2: Double
    /// The total: `Σ_k KL_k + λ_sim · similarity + λ₁ · l1 + λ₂ · l2`.
    public var total: Double
}

/// DAM's loss and its gradient with respect to the raw coefficients, for any family.
///
/// `L = Σ_k T²·KL(softmax(z_k/T) ‖ softmax(z/T)) + λ_sim Σ_layers mean_{a<b} cos(m_a, m_b) + λ₁ Σ|m| + λ₂ Σ m²`
/// where z_k is source k's logits on batch k and z the merged model's on the same batch. The cosine and
/// the norms are taken over the raw weight coefficients (before f); bias scalars enter only through the
/// KL terms (a cosine between scalars is ±1 and carries nothing).
public struct DAMObjective: Sendable {
    /// The settings the loss reads (temperature, λs, top-k, f).
    public var configuration: DAMConfiguration

    /// An objective with these settings.
    public init(configuration: DAMConfiguration) { self.configuration = configuration }

    /// The loss at `coefficients` on `batches` (batch k for source k) and its gradient (layout order).
    /// Merges the family at those coefficients as a side effect.
    public func evaluate<F: DAMFamily>(family: F, coefficients m: [Float],
                                       batches: [F.Batch]) throws(DAMError) -> (loss: DAMLoss, gradient: [Float]) {
        let layout = DAMLayout(layers: family.layers, sourceCount: family.sourceCount)
        guard m.count == layout.count, batches.count == family.sourceCount else {
            throw .invalidConfiguration(key: "coefficients", reason: "\(m.count) coefficients and \(batches.count) batches "
                + "for a layout of \(layout.count) and \(family.sourceCount) sources")
        }
        let f = configuration.scaleFunction
        try family.merge(scales: layout.scales(of: m, f: f))
        var scaleGradient = [Float](repeating: 0, count: layout.count)
        var kl: [Double] = []
        for (k, batch) in batches.enumerated() {
            kl.append(try family.distill(source: k, batch: batch, temperature: Float(configuration.temperature),
                                         topK: configuration.topK, scaleGradient: &scaleGradient))
        }
        // chain rule through f for weight coefficients; bias scalars are used as they are
        var gradient = scaleGradient
        let bias = layout.biasMask
        for i in gradient.indices where !bias[i] { gradient[i] *= f.derivative(m[i]) }
        let (similarity, l1, l2) = addRegularisers(layout: layout, coefficients: m, gradient: &gradient)
        let c = configuration
        let total = kl.reduce(0, +) + c.similarityWeight * similarity + c.l1Weight * l1 + c.l2Weight * l2
        return (DAMLoss(kl: kl, similarity: similarity, l1: l1, l2: l2, total: total), gradient)
    }

    /// Adds the similarity, L1 and L2 terms' gradients (weighted) and returns the unweighted terms.
    func addRegularisers(layout: DAMLayout, coefficients m: [Float],
                         gradient: inout [Float]) -> (similarity: Double, l1: Double, l2: Double) {
        let c = configuration, n = layout.sourceCount
        var similarity = 0.0, l1 = 0.0, l2 = 0.0
        for l in layout.layers.indices {
            let ranges = (0..<n).map { layout.weightRange(layer: l, model: $0) }
            if c.l1Weight != 0 || c.l2Weight != 0 {
                for r in ranges {
                    for i in r {
                        l1 += Double(abs(m[i])); l2 += Double(m[i] * m[i])
                        gradient[i] += Float(c.l1Weight) * (m[i] > 0 ? 1 : m[i] < 0 ? -1 : 0) + Float(2 * c.l2Weight) * m[i]
                    }
                }
            }
            guard n >= 2 else { continue }
            let norms = ranges.map { r in r.reduce(0.0) { $0 + Double(m[$1] * m[$1]) }.squareRoot() }
            let pairs = Double(n * (n - 1) / 2)
            for a in 0..<n {
                for b in (a + 1)..<n {
                    // cos = a·b / max(|a||b|, 1e-8); ∂cos/∂a = b/(|a||b|) − cos · a/|a|²
                    let dot = zip(ranges[a], ranges[b]).reduce(0.0) { $0 + Double(m[$1.0] * m[$1.1]) }
                    let denominator = max(norms[a] * norms[b], 1e-8)
                    let cosine = dot / denominator
                    similarity += cosine / pairs
                    guard c.similarityWeight != 0 else { continue }
                    let w = c.similarityWeight / pairs
                    for (i, j) in zip(ranges[a], ranges[b]) {
                        let ga = Double(m[j]) / denominator - cosine * Double(m[i]) / max(norms[a] * norms[a], 1e-16)
                        let gb = Double(m[i]) / denominator - cosine * Double(m[j]) / max(norms[b] * norms[b], 1e-16)
                        gradient[i] += Float(w * ga)
                        gradient[j] += Float(w * gb)
                    }
                }
            }
        }
        return (similarity, l1, l2)
    }
}
