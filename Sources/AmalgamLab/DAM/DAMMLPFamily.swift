import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamModels
import AmalgamSearch

/// DAM over `MLPClassifier`s: layers `fc1` (W1, b1) and `fc2` (W2, b2). A weight is stored
/// `[inputs × outputs]`, so DAM's input column j (of PyTorch's `[out, in]`) is row j of ours: fc1 has 64
/// coefficients per source on digits, fc2 has 256.
public final class DAMMLPFamily: DAMFamily {
    /// The network's shape.
    public let classifier: MLPClassifier
    /// The source models' flat parameters.
    public let sources: [[Float]]
    /// The merged model's flat parameters after the last `merge(scales:)`.
    public private(set) var merged: [Float]
    private var workspaces: [Int: MLPWorkspace] = [:]
    private var gradient: [Float]

    /// The family of `sources` (flat parameters in `classifier`'s layout).
    public init(classifier: MLPClassifier, sources: [[Float]]) throws(DAMError) {
        guard sources.count >= 2 else { throw .invalidConfiguration(key: "sources", reason: "DAM needs at least two source models") }
        for (i, s) in sources.enumerated() where s.count != classifier.parameterCount {
            throw .sourceMismatch(what: "source \(i) has \(s.count) parameters, the classifier \(classifier.parameterCount)")
        }
        self.classifier = classifier
        self.sources = sources
        merged = sources[0]
        gradient = [Float](repeating: 0, count: classifier.parameterCount)
    }

    public var layers: [DAMLayer] {
        classifier.linearLayers.enumerated().map { DAMLayer(name: "fc\($0.offset + 1)", inputs: $0.element.inputs, hasBias: true) }
    }
    public var sourceCount: Int { sources.count }
    public var classCount: Int { classifier.outputs }
    private var layout: DAMLayout { DAMLayout(layers: layers, sourceCount: sourceCount) }

    public func merge(scales: [Float]) throws(DAMError) {
        let layout = self.layout
        guard scales.count == layout.count else {
            throw .invalidConfiguration(key: "scales", reason: "\(scales.count) values, the layout has \(layout.count)")
        }
        for i in merged.indices { merged[i] = 0 }
        for (l, layer) in classifier.linearLayers.enumerated() {
            for (k, source) in sources.enumerated() {
                let s = layout.weightRange(layer: l, model: k).lowerBound
                for j in 0..<layer.inputs {
                    let scale = scales[s + j], row = layer.weight + j * layer.outputs
                    for c in 0..<layer.outputs { merged[row + c] += scale * source[row + c] }
                }
                let c = scales[layout.biasIndex(layer: l, model: k)]
                for o in 0..<layer.outputs { merged[layer.bias + o] += c * source[layer.bias + o] }
            }
        }
    }

    public func distill(source: Int, batch: MLPBatch, temperature: Float, topK: Int?,
                        scaleGradient: inout [Float]) throws(DAMError) -> Double {
        let teacher = try teacherLogits(source: source, batch: batch)
        var term = 0.0
        _ = try mergedForwardBackward(batch: batch, scaleGradient: &scaleGradient) { student in
            let r = Losses.distillation(student: student, teacher: teacher, vocabulary: classCount, temperature: temperature, topK: topK)
            term = r.loss
            return r.gradient
        }
        return term
    }

    /// Source `source`'s logits on `batch` (the teacher: no gradient).
    public func teacherLogits(source: Int, batch: MLPBatch) throws(DAMError) -> [Float] {
        logits(of: sources[source], batch: batch)
    }

    public func mergedLogits(batch: MLPBatch) throws(DAMError) -> [Float] { logits(of: merged, batch: batch) }

    /// Runs the merged model on `batch`, hands its logits to `lossGradient` (which returns ∂L/∂logits of
    /// the same shape), and ADDS ∂L/∂scales to `scaleGradient`. Returns the number of logits rows.
    public func mergedForwardBackward(batch: MLPBatch, scaleGradient: inout [Float],
                                      lossGradient: ([Float]) -> [Float]) throws(DAMError) -> Int {
        let layout = self.layout
        let workspace = workspace(for: batch.count)
        merged.withUnsafeBufferPointer { classifier.forward(parameters: $0.baseAddress!, batch: batch, workspace: workspace) }
        let dLogits = lossGradient(workspace.logits)
        precondition(dLogits.count == workspace.logits.count, "the loss gradient must have the logits' shape")
        merged.withUnsafeBufferPointer { p in
            dLogits.withUnsafeBufferPointer { d in
                gradient.withUnsafeMutableBufferPointer { g in
                    classifier.backward(parameters: p.baseAddress!, batch: batch, workspace: workspace,
                                        dLogits: d.baseAddress!, gradient: g.baseAddress!)
                }
            }
        }
        gradient.withUnsafeBufferPointer { g in
            scaleGradient.withUnsafeMutableBufferPointer { out in
                for (l, layer) in classifier.linearLayers.enumerated() {
                    for (k, source) in sources.enumerated() {
                        source.withUnsafeBufferPointer { w in
                            MLPClassifier.accumulateRowScaleGradient(
                                dWeight: g.baseAddress! + layer.weight, source: w.baseAddress! + layer.weight,
                                inputs: layer.inputs, outputs: layer.outputs,
                                into: out.baseAddress! + layout.weightRange(layer: l, model: k).lowerBound)
                            out[layout.biasIndex(layer: l, model: k)] += MLPClassifier.biasScaleGradient(
                                dBias: g.baseAddress! + layer.bias, source: w.baseAddress! + layer.bias, count: layer.outputs)
                        }
                    }
                }
            }
        }
        return batch.count
    }

    /// `fc1.weight` `[inputs, hidden]`, `fc1.bias`, `fc2.weight` `[hidden, outputs]`, `fc2.bias`: the flat
    /// layout's blocks, weights stored `[in, out]` as `MLPClassifier` reads them (the transpose of PyTorch's).
    public func mergedTensors() -> [(name: String, tensor: Tensor)] {
        classifier.linearLayers.enumerated().flatMap { i, l in
            [(name: "fc\(i + 1).weight", tensor: Tensor(Array(merged[l.weight ..< l.weight + l.inputs * l.outputs]), shape: [l.inputs, l.outputs])),
             (name: "fc\(i + 1).bias", tensor: Tensor(Array(merged[l.bias ..< l.bias + l.outputs]), shape: [l.outputs]))]
        }
    }

    private func logits(of parameters: [Float], batch: MLPBatch) -> [Float] {
        let workspace = workspace(for: batch.count)
        parameters.withUnsafeBufferPointer { classifier.forward(parameters: $0.baseAddress!, batch: batch, workspace: workspace) }
        return workspace.logits
    }

    private func workspace(for count: Int) -> MLPWorkspace {
        if let w = workspaces[count] { return w }
        let w = MLPWorkspace(classifier: classifier, count: count)
        workspaces[count] = w
        return w
    }
}
