import AmalgamCore

/// The hot loop of evolving a classifier: scoring one parameter vector on a fixed batch, fused per example.
///
/// Digits features are half zeros, so the first layer runs over each example's non-zero features only
/// (a row of `[W1; b1]` per non-zero, the bias as the always-present last feature); logits never leave registers. Each example is computed alone, in a
/// fixed order, so the scores are the same bytes for any split of the batch across threads. On this
/// work it does about half the multiply-adds of the two GEMMs and avoids their packing passes.
public struct MLPSparseScoring: Sendable {
    /// The classifier's shape (hidden a multiple of 64, at most 16 outputs).
    public let classifier: MLPClassifier
    /// The batch's labels.
    let labels: [Int32]
    /// CSR of the augmented features: `start[r] ..< start[r + 1]` index `columns` and `values`.
    let start: [Int32]
    let columns: [Int32]
    let values: [Float]

    /// Whether the fused path supports `classifier`'s shape.
    public static func supports(_ classifier: MLPClassifier) -> Bool {
        classifier.hidden % 64 == 0 && classifier.outputs <= 16 && classifier.outputs >= 1
    }

    /// The non-zero structure of `batch` (its augmented ones column included).
    public init(classifier: MLPClassifier, batch: MLPBatch) {
        precondition(Self.supports(classifier) && batch.inputs == classifier.inputs,
                     "fused scoring needs hidden % 64 == 0, outputs ≤ 16 and the batch's feature count")
        self.classifier = classifier
        labels = batch.labels
        var start: [Int32] = [0], columns: [Int32] = [], values: [Float] = []
        let width = batch.inputs + 1
        for r in 0..<batch.count {
            for c in 0..<width where batch.augmented[r * width + c] != 0 {
                columns.append(Int32(c))
                values.append(batch.augmented[r * width + c])
            }
            start.append(Int32(columns.count))
        }
        self.start = start
        self.columns = columns
        self.values = values
    }

    /// Examples in the batch.
    public var count: Int { labels.count }

    /// Writes 1 where the first arg-max of the logits equals the label, else 0.
    public func scoreCorrect(parameters: UnsafePointer<Float>, into scores: UnsafeMutableBufferPointer<Float>) {
        let h = classifier.hidden, o = classifier.outputs
        // [W2; b2] padded to 16 lanes per hidden unit, so each row is one aligned SIMD16 load.
        var second = [SIMD16<Float>](repeating: .zero, count: h + 1)
        let w2 = parameters + classifier.secondLayerOffset
        for j in 0...h { for c in 0..<o { second[j][c] = w2[j * o + c] } }
        for c in o..<16 { second[h][c] = -.infinity }  // unused lanes never win the arg-max
        let p = SendableConstPointer(parameters), out = SendablePointer(scores.baseAddress!)
        second.withUnsafeBufferPointer { s in
            let w2p = SendableConstPointer(s.baseAddress!)
            start.withUnsafeBufferPointer { st in
                columns.withUnsafeBufferPointer { cols in
                    values.withUnsafeBufferPointer { vals in
                        let (stp, cp, vp) = (SendableConstPointer(st.baseAddress!), SendableConstPointer(cols.baseAddress!),
                                             SendableConstPointer(vals.baseAddress!))
                        parallelChunks(count, minimumChunk: 256) { rows in
                            let block = Self.rowBlock
                            withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: block * h / 8) { hidden in
                                for first in stride(from: rows.lowerBound, to: rows.upperBound, by: block) {
                                    let last = min(first + block, rows.upperBound)
                                    firstLayer(rows: first..<last, w1: p.base, start: stp.base, columns: cp.base,
                                               values: vp.base, hidden: hidden.baseAddress!)
                                    for r in first..<last {
                                        let predicted = secondLayer(hidden: hidden.baseAddress! + (r - first) * (h / 8), w2: w2p.base)
                                        out.base[r] = predicted == Int(labels[r]) ? 1 : 0
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Rows whose hidden activations are computed together, so a 64-unit slice of `[W1; b1]`
    /// (65 × 64 floats) stays in L1 across them.
    static let rowBlock = 16

    /// ReLU(x̃ · [W1; b1]) for each row in `rows`, into `hidden` (row-major, `hidden / 8` vectors per row).
    @inline(__always)
    private func firstLayer(rows: Range<Int>, w1: UnsafePointer<Float>, start: UnsafePointer<Int32>,
                            columns: UnsafePointer<Int32>, values: UnsafePointer<Float>,
                            hidden: UnsafeMutablePointer<SIMD8<Float>>) {
        let h = classifier.hidden
        let zero = SIMD8<Float>()
        for chunk in stride(from: 0, to: h, by: 64) {
            for r in rows {
                let lo = Int(start[r]), hi = Int(start[r + 1])
                var a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero, a6 = zero, a7 = zero
                for e in lo..<hi {
                    let x = SIMD8<Float>(repeating: values[e])
                    let row = UnsafeRawPointer(w1 + Int(columns[e]) * h + chunk)
                    a0 = a0.addingProduct(x, row.loadUnaligned(fromByteOffset: 0, as: SIMD8<Float>.self))
                    a1 = a1.addingProduct(x, row.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
                    a2 = a2.addingProduct(x, row.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
                    a3 = a3.addingProduct(x, row.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
                    a4 = a4.addingProduct(x, row.loadUnaligned(fromByteOffset: 128, as: SIMD8<Float>.self))
                    a5 = a5.addingProduct(x, row.loadUnaligned(fromByteOffset: 160, as: SIMD8<Float>.self))
                    a6 = a6.addingProduct(x, row.loadUnaligned(fromByteOffset: 192, as: SIMD8<Float>.self))
                    a7 = a7.addingProduct(x, row.loadUnaligned(fromByteOffset: 224, as: SIMD8<Float>.self))
                }
                let out = hidden + (r - rows.lowerBound) * (h / 8) + chunk / 8
                out[0] = relu(a0); out[1] = relu(a1); out[2] = relu(a2); out[3] = relu(a3)
                out[4] = relu(a4); out[5] = relu(a5); out[6] = relu(a6); out[7] = relu(a7)
            }
        }
    }

    /// The predicted class from one row of hidden activations: first arg-max of b2 + Σ_j h_j · W2[j, :],
    /// dense (a branch per ReLU zero costs more than the multiply-add), four accumulators against latency.
    @inline(__always)
    private func secondLayer(hidden: UnsafeMutablePointer<SIMD8<Float>>, w2: UnsafePointer<SIMD16<Float>>) -> Int {
        let h = classifier.hidden
        var l0 = w2[h], l1 = SIMD16<Float>(), l2 = SIMD16<Float>(), l3 = SIMD16<Float>()
        let units = UnsafeRawPointer(hidden).assumingMemoryBound(to: Float.self)
        for j in stride(from: 0, to: h, by: 4) {
            l0 = l0.addingProduct(SIMD16<Float>(repeating: units[j]), w2[j])
            l1 = l1.addingProduct(SIMD16<Float>(repeating: units[j + 1]), w2[j + 1])
            l2 = l2.addingProduct(SIMD16<Float>(repeating: units[j + 2]), w2[j + 2])
            l3 = l3.addingProduct(SIMD16<Float>(repeating: units[j + 3]), w2[j + 3])
        }
        let logits = (l0 + l1) + (l2 + l3)
        var best = 0
        for c in 1..<classifier.outputs where logits[c] > logits[best] { best = c }
        return best
    }
}

/// max(v, 0) per lane, as one compare and blend.
@inline(__always)
private func relu(_ v: SIMD8<Float>) -> SIMD8<Float> { v.replacing(with: 0, where: v .< 0) }
