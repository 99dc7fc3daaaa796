import AmalgamCore
import AmalgamModels
import CAmalgamBLAS

extension MLPClassifier {
    /// Gradient of the flat parameters (`[dW1; db1; dW2; db2]`, written, not accumulated) given the gradient
    /// of the loss with respect to the logits, after `forward(parameters:batch:workspace:)` on the same
    /// parameters, batch and workspace (its ReLU activations are what the backward pass needs).
    ///
    /// Shapes: dLogits `count × outputs`; gradient `parameterCount`; scratch `count × hidden` is allocated.
    public func backward(parameters: UnsafePointer<Float>, batch: MLPBatch, workspace: MLPWorkspace,
                         dLogits: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>) {
        precondition(batch.inputs == inputs && workspace.count == batch.count && workspace.hidden == hidden,
                     "MLP batch and workspace must match the classifier's shape")
        let n = batch.count, h = hidden, o = outputs
        var dHidden = [Float](repeating: 0, count: n * h)
        workspace.activations.withUnsafeBufferPointer { a in
            // d[W2; b2] ((h+1) × o) = H̃ᵀ (h+1 × n) · dlogits (n × o); the ones column gives db2
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(h + 1), Int32(o), Int32(n),
                        1, a.baseAddress, Int32(h + 1), dLogits, Int32(o), 0, gradient + secondLayerOffset, Int32(o))
            // dH (n × h) = dlogits · W2ᵀ, then through the ReLU (zero where the activation was clipped)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(h), Int32(o),
                        1, dLogits, Int32(o), parameters + secondLayerOffset, Int32(o), 0, &dHidden, Int32(h))
            for r in 0..<n {
                for c in 0..<h where a[r * (h + 1) + c] <= 0 { dHidden[r * h + c] = 0 }
            }
        }
        // d[W1; b1] ((inputs+1) × h) = X̃ᵀ · dZ
        batch.augmented.withUnsafeBufferPointer { x in
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(inputs + 1), Int32(h), Int32(n),
                        1, x.baseAddress, Int32(inputs + 1), dHidden, Int32(h), 0, gradient, Int32(h))
        }
    }

    /// The two linear layers as `(weight offset, input rows, output columns, bias offset)` in the flat
    /// layout. A weight is stored `[inputs × outputs]`, so input column j of PyTorch's `[out, in]` weight
    /// is row j here.
    public var linearLayers: [(weight: Int, inputs: Int, outputs: Int, bias: Int)] {
        [(0, inputs, hidden, inputs * hidden), (secondLayerOffset, hidden, outputs, secondLayerOffset + hidden * outputs)]
    }

    /// Gradient of the loss with respect to per-input-row scales of one source's contribution to a merged
    /// layer, `W = Σᵢ sᵢ ⊙ Wᵢ` (row j of every `Wᵢ` scaled by `sᵢ[j]`): `∂L/∂sᵢ[j] = Σ_o dW[j, o] · Wᵢ[j, o]`,
    /// accumulated into `into` (`inputs` values). `dWeight` and `source` are `inputs × outputs`, row-major.
    public static func accumulateRowScaleGradient(dWeight: UnsafePointer<Float>, source: UnsafePointer<Float>,
                                                  inputs: Int, outputs: Int, into: UnsafeMutablePointer<Float>) {
        for j in 0..<inputs {
            let d = dWeight + j * outputs, w = source + j * outputs
            var s: Float = 0
            for c in 0..<outputs { s += d[c] * w[c] }
            into[j] += s
        }
    }

    /// Gradient of the loss with respect to one source's bias scale, `b = Σᵢ cᵢ bᵢ`: `∂L/∂cᵢ = Σ_o db[o] · bᵢ[o]`.
    public static func biasScaleGradient(dBias: UnsafePointer<Float>, source: UnsafePointer<Float>, count: Int) -> Float {
        var s: Float = 0
        for c in 0..<count { s += dBias[c] * source[c] }
        return s
    }
}
