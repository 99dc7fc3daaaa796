import AmalgamCore
import AmalgamModels

/// The digits-style MLP as a `LogitsModel` (the engine's model abstraction): in → hidden (ReLU) → out logits, over one flat parameter vector laid
/// out as [W1 (in × hidden, row-major), b1 (hidden), W2 (hidden × out, row-major), b2 (out)] — the
/// layout model-merging searches (M2N2) operate on. Its forward is `MLPClassifier`'s (one implementation).
public struct MLPLogitsModel: LogitsModel {
    /// Features per example.
    public let inputCount: Int
    /// Hidden units.
    public let hiddenCount: Int
    /// Classes.
    public let outputCount: Int
    /// The flat parameters in the layout above.
    public var parameters: [Float]

    /// Parameters a network of these sizes has.
    public static func parameterCount(input: Int, hidden: Int, output: Int) -> Int {
        input * hidden + hidden + hidden * output + output
    }

    /// A classifier over existing parameters; throws if their number does not fit the sizes.
    public init(inputCount: Int, hiddenCount: Int, outputCount: Int, parameters: [Float]) throws(ModelError) {
        let expected = Self.parameterCount(input: inputCount, hidden: hiddenCount, output: outputCount)
        guard parameters.count == expected else {
            throw .parameterCount(expected: expected, actual: parameters.count,
                                  layout: "[W1 \(inputCount)×\(hiddenCount), b1 \(hiddenCount), W2 \(hiddenCount)×\(outputCount), b2 \(outputCount)]")
        }
        self.inputCount = inputCount
        self.hiddenCount = hiddenCount
        self.outputCount = outputCount
        self.parameters = parameters
    }

    /// Offsets of W1, b1, W2, b2 in `parameters`.
    public var offsets: (w1: Int, b1: Int, w2: Int, b2: Int) {
        let b1 = inputCount * hiddenCount
        let w2 = b1 + hiddenCount
        return (0, b1, w2, w2 + hiddenCount * outputCount)
    }

    /// Logits [rows × out] for feature rows [rows × in].
    public func logits(_ batch: Matrix) throws(ModelError) -> Matrix {
        guard batch.cols == inputCount else { throw .inputSize(expected: inputCount, actual: batch.cols) }
        var hidden = [Float](repeating: 0, count: batch.rows * hiddenCount)
        var out = [Float](repeating: 0, count: batch.rows * outputCount)
        batch.values.withUnsafeBufferPointer { x in
            parameters.withUnsafeBufferPointer { p in
                hidden.withUnsafeMutableBufferPointer { h in
                    out.withUnsafeMutableBufferPointer { o in
                        Self.forward(o.baseAddress!, hidden: h.baseAddress!, x.baseAddress!, rows: batch.rows,
                                     parameters: p.baseAddress!, input: inputCount, hiddenCount: hiddenCount, output: outputCount)
                    }
                }
            }
        }
        return Matrix(rows: batch.rows, cols: outputCount, values: out)
    }

    /// Fraction of rows whose largest logit is the label.
    public func accuracy(_ batch: Matrix, labels: [Int]) throws(ModelError) -> Double {
        let predicted = try logits(batch).argmaxPerRow()
        let correct = zip(predicted, labels).filter { $0 == $1 }.count
        return batch.rows == 0 ? 0 : Double(correct) / Double(batch.rows)
    }

    /// out[N × O] = relu(x[N × I] · W1 + b1) · W2 + b2; keeps the post-ReLU hidden[N × H] for a backward pass.
    public static func forward(_ out: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>,
                               _ x: UnsafePointer<Float>, rows N: Int, parameters p: UnsafePointer<Float>,
                               input I: Int, hiddenCount H: Int, output O: Int) {
        MLPClassifier(inputs: I, hidden: H, outputs: O)
            .forward(x: x, xStride: I, rows: N, parameters: p, hidden: hidden, hiddenStride: H, logits: out)
    }
}
