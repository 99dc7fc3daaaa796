import AmalgamCore
import AmalgamModels
import Foundation

extension MLPClassifier {
    /// Mean softmax cross-entropy over `batch` and its gradient, in the flat parameter layout.
    public func lossAndGradient(parameters: [Float], batch: MLPBatch) -> (loss: Double, gradient: [Float]) {
        let workspace = MLPWorkspace(classifier: self, count: batch.count)
        let n = batch.count, o = outputs
        var gradient = [Float](repeating: 0, count: parameterCount)
        var loss = 0.0
        parameters.withUnsafeBufferPointer { p in
            forward(parameters: p.baseAddress!, batch: batch, workspace: workspace)
            // dlogits (n × o) = (softmax − onehot) / n
            var dLogits = workspace.logits
            for r in 0..<n {
                let row = r * o
                let m = workspace.logits[row ..< row + o].max()!
                var total = 0.0
                for c in 0..<o { total += exp(Double(workspace.logits[row + c] - m)) }
                let label = Int(batch.labels[r])
                loss -= Double(workspace.logits[row + label] - m) - log(total)
                for c in 0..<o {
                    let q = exp(Double(workspace.logits[row + c] - m)) / total
                    dLogits[row + c] = Float((q - (c == label ? 1 : 0)) / Double(n))
                }
            }
            gradient.withUnsafeMutableBufferPointer { g in
                backward(parameters: p.baseAddress!, batch: batch, workspace: workspace, dLogits: dLogits, gradient: g.baseAddress!)
            }
        }
        return (loss / Double(n), gradient)
    }

    /// Full-batch training with Adam (β₁ 0.9, β₂ 0.999, ε 1e-8, as optax's defaults) for `steps` steps.
    public func trainAdam(parameters: [Float], batch: MLPBatch, steps: Int, learningRate: Double) -> [Float] {
        var p = parameters
        var m = [Double](repeating: 0, count: p.count), v = m
        let b1 = 0.9, b2 = 0.999, eps = 1e-8
        for t in 1...max(steps, 1) where steps > 0 {
            let g = lossAndGradient(parameters: p, batch: batch).gradient
            let c1 = 1 - Foundation.pow(b1, Double(t)), c2 = 1 - Foundation.pow(b2, Double(t))
            for i in p.indices {
                let gi = Double(g[i])
                m[i] = b1 * m[i] + (1 - b1) * gi
                v[i] = b2 * v[i] + (1 - b2) * gi * gi
                p[i] -= Float(learningRate * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps))
            }
        }
        return p
    }
}
