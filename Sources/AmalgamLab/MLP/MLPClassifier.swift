import AmalgamCore
import AmalgamModels
import CAmalgamBLAS

/// A two-layer perceptron classifier `inputs → hidden (ReLU) → outputs` over one flat parameter vector
/// laid out `[W1 (inputs × hidden, row-major), b1, W2 (hidden × outputs), b2]`.
///
/// Because each bias follows its weight matrix, `[W1; b1]` is one `(inputs + 1) × hidden` matrix and
/// `[W2; b2]` one `(hidden + 1) × outputs` matrix: with a column of ones appended to the inputs and to the
/// hidden activations, each layer is ONE GEMM for a whole batch, bias included.
public struct MLPClassifier: Sendable, Equatable {
    /// Input features.
    public let inputs: Int
    /// Hidden units.
    public let hidden: Int
    /// Classes.
    public let outputs: Int

    /// The shape of the M2N2 digits experiment: 64 → 256 → 10.
    public static let digits = MLPClassifier(inputs: 64, hidden: 256, outputs: 10)

    /// A classifier of the given shape.
    public init(inputs: Int, hidden: Int, outputs: Int) {
        self.inputs = inputs
        self.hidden = hidden
        self.outputs = outputs
    }

    /// Length of the flat parameter vector: `(inputs + 1) · hidden + (hidden + 1) · outputs`.
    public var parameterCount: Int { (inputs + 1) * hidden + (hidden + 1) * outputs }
    /// Offset of `[W2; b2]` in the flat vector.
    var secondLayerOffset: Int { (inputs + 1) * hidden }

    /// Computes the logits of every example in `batch` into `workspace.logits` (`count × outputs`), keeping
    /// the ReLU activations in `workspace.activations` (whose last column stays 1, for the gradient).
    public func forward(parameters: UnsafePointer<Float>, batch: MLPBatch, workspace: MLPWorkspace) {
        precondition(batch.inputs == inputs && workspace.count == batch.count && workspace.hidden == hidden,
                     "MLP batch and workspace must match the classifier's shape")
        batch.augmented.withUnsafeBufferPointer { x in
            workspace.activations.withUnsafeMutableBufferPointer { a in
                workspace.logits.withUnsafeMutableBufferPointer { l in
                    forward(x: x.baseAddress!, xStride: inputs + 1, rows: batch.count, parameters: parameters,
                            hidden: a.baseAddress!, hiddenStride: hidden + 1, logits: l.baseAddress!)
                }
            }
        }
    }

    /// THE forward of the two-layer perceptron (every other forward calls it): `logits[N × outputs] =
    /// ReLU(x[N × inputs] · W1 + b1) · W2 + b2`, keeping the post-ReLU `hidden[N × hidden]` for a backward
    /// pass. Rows of `x` are `xStride` apart (≥ inputs; extra columns are ignored), rows of `hidden`
    /// `hiddenStride` apart (≥ hidden; extra columns are left alone). Each layer is one GEMM over the batch,
    /// accumulated onto the broadcast bias.
    public func forward(x: UnsafePointer<Float>, xStride: Int, rows: Int, parameters: UnsafePointer<Float>,
                        hidden h: UnsafeMutablePointer<Float>, hiddenStride: Int, logits: UnsafeMutablePointer<Float>) {
        precondition(xStride >= inputs && hiddenStride >= hidden, "row strides must cover the layer widths")
        guard rows > 0 else { return }
        let w1 = parameters, b1 = parameters + inputs * hidden
        let w2 = parameters + secondLayerOffset, b2 = w2 + hidden * outputs
        for n in 0..<rows { (h + n * hiddenStride).update(from: b1, count: hidden) }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(hidden), Int32(inputs),
                    1, x, Int32(xStride), w1, Int32(hidden), 1, h, Int32(hiddenStride))
        relu(h, rows: rows, columns: hidden, stride: hiddenStride)
        for n in 0..<rows { (logits + n * outputs).update(from: b2, count: outputs) }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(outputs), Int32(hidden),
                    1, h, Int32(hiddenStride), w2, Int32(outputs), 1, logits, Int32(outputs))
    }

    /// Writes 1 where the predicted class (first arg-max of the logits) equals the label, else 0.
    public func scoreCorrect(parameters: UnsafePointer<Float>, batch: MLPBatch, workspace: MLPWorkspace,
                             into scores: UnsafeMutableBufferPointer<Float>) {
        forward(parameters: parameters, batch: batch, workspace: workspace)
        workspace.logits.withUnsafeBufferPointer { l in
            for r in 0..<batch.count {
                scores[r] = argmax(l.baseAddress! + r * outputs, outputs) == Int(batch.labels[r]) ? 1 : 0
            }
        }
    }

    /// Fraction of the batch classified correctly.
    public func accuracy(parameters: [Float], batch: MLPBatch) -> Double {
        let workspace = MLPWorkspace(classifier: self, count: batch.count)
        var scores = [Float](repeating: 0, count: batch.count)
        parameters.withUnsafeBufferPointer { p in
            scores.withUnsafeMutableBufferPointer {
                scoreCorrect(parameters: p.baseAddress!, batch: batch, workspace: workspace, into: $0)
            }
        }
        return Double(scores.reduce(0, +)) / Double(max(batch.count, 1))
    }
}

/// Index of the first largest of `count` values.
@inline(__always)
func argmax(_ p: UnsafePointer<Float>, _ count: Int) -> Int {
    var best = 0
    for i in 1..<count where p[i] > p[best] { best = i }
    return best
}

/// In-place ReLU over the first `columns` of each of `rows` rows.
@inline(__always)
func relu(_ p: UnsafeMutablePointer<Float>, rows: Int, columns: Int, stride: Int) {
    for r in 0..<rows {
        let row = p + r * stride
        for c in 0..<columns { row[c] = max(row[c], 0) }
    }
}

/// Examples prepared for the classifier: features with a column of ones appended, and labels.
public struct MLPBatch: Sendable {
    /// Features per example (without the ones column).
    public let inputs: Int
    /// Number of examples.
    public let count: Int
    /// `count × (inputs + 1)`, row-major, last column 1.
    public let augmented: [Float]
    /// Class of each example.
    public let labels: [Int32]

    /// A batch from row-major features (`labels.count × inputs`) and labels.
    public init(features: [Float], inputs: Int, labels: [Int32]) {
        precondition(features.count == labels.count * inputs, "features must be labels.count × inputs")
        self.inputs = inputs
        count = labels.count
        self.labels = labels
        var a = [Float](repeating: 1, count: count * (inputs + 1))
        for r in 0..<count {
            for c in 0..<inputs { a[r * (inputs + 1) + c] = features[r * inputs + c] }
        }
        augmented = a
    }

    /// The examples whose label satisfies `keep`, in order.
    public func filter(_ keep: (Int32) -> Bool) -> MLPBatch {
        var features: [Float] = [], labels: [Int32] = []
        for r in 0..<count where keep(self.labels[r]) {
            features += augmented[r * (inputs + 1) ..< r * (inputs + 1) + inputs]
            labels.append(self.labels[r])
        }
        return MLPBatch(features: features, inputs: inputs, labels: labels)
    }
}

/// Buffers reused across forward passes of one batch size (not shared between threads).
public final class MLPWorkspace {
    /// Examples per pass.
    public let count: Int
    /// Hidden units.
    public let hidden: Int
    /// `count × (hidden + 1)`: ReLU activations and a last column of ones.
    public var activations: [Float]
    /// `count × outputs`.
    public var logits: [Float]

    /// Buffers for `count` examples of `classifier`.
    public init(classifier: MLPClassifier, count: Int) {
        self.count = count
        hidden = classifier.hidden
        activations = [Float](repeating: 1, count: count * (classifier.hidden + 1))
        logits = [Float](repeating: 0, count: count * classifier.outputs)
    }
}
