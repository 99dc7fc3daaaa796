import AmalgamCore

/// The hot loop of evolving a classifier: scoring one parameter vector on a fixed batch, fused per block
/// of rows (first layer, ReLU, second layer and arg-max never leave L1).
///
/// Rows are taken eight at a time, one per SIMD8 lane: a register-blocked kernel (8 hidden units, 8 AVX2
/// accumulators) runs the first layer over the features that are non-zero in at least one of the eight rows
/// (digits are half zeros, and neighbouring images share their empty borders), the bias as the
/// always-present last feature, and the second layer adds each unit into 10 outputs' vectors, so that no
/// lane is padding for the digits' 10 classes (a layout with outputs in the lanes pads 10 to 16).
/// Rows are grouped into blocks once, at set-up: in batch order, sorted by zero pattern, or grouped greedily
/// by shared non-zero features (`greedyGrouping`), whichever leaves the fewest features to visit. Each row's
/// sums run in a fixed order that depends only on the batch, so the scores are the same bytes for any number
/// of threads (and any grouping: a feature that is zero in a row adds an exact zero to its sums).
public struct MLPSparseScoring: Sendable {
    /// The classifier's shape (hidden a multiple of 16, at most 16 outputs).
    public let classifier: MLPClassifier
    /// Rows per block (the SIMD8 lanes).
    static let rows = 8
    /// Original row of each position, in block order.
    let order: [Int32]
    /// Label of each position.
    let labels: [Int32]
    /// `blockStart[b] ..< blockStart[b + 1]` index `features` and the 6-value groups of `values`.
    let blockStart: [Int32]
    /// Feature (row of `[W1; b1]`) of each entry.
    let features: [Int32]
    /// The eight rows' values of each entry (zero for a row without that feature, or past the batch).
    let values: [Float]

    /// Whether the fused path supports `classifier`'s shape.
    public static func supports(_ classifier: MLPClassifier) -> Bool {
        classifier.hidden % 16 == 0 && classifier.outputs <= 16 && classifier.outputs >= 1
    }

    /// The block structure of `batch` (its augmented ones column included).
    public init(classifier: MLPClassifier, batch: MLPBatch) {
        precondition(Self.supports(classifier) && batch.inputs == classifier.inputs,
                     "fused scoring needs hidden % 16 == 0, outputs ≤ 16 and the batch's feature count")
        self.classifier = classifier
        let width = batch.inputs + 1
        func entries(_ order: [Int]) -> Int {
            stride(from: 0, to: order.count, by: Self.rows).reduce(0) { total, first in
                total + (0..<width).filter { c in
                    order[first ..< min(first + Self.rows, order.count)].contains { batch.augmented[$0 * width + c] != 0 }
                }.count
            }
        }
        // Natural order, or sorted by zero pattern (stable): whichever visits fewer features.
        let natural = Array(0..<batch.count)
        let sorted = natural.sorted { a, b in
            for c in 0..<width {
                let za = batch.augmented[a * width + c] == 0, zb = batch.augmented[b * width + c] == 0
                if za != zb { return za }
            }
            return a < b
        }
        let order = [natural, sorted, Self.greedyGrouping(batch)].min { entries($0) < entries($1) }!
        var blockStart: [Int32] = [0], features: [Int32] = [], values: [Float] = []
        for first in stride(from: 0, to: order.count, by: Self.rows) {
            let members = order[first ..< min(first + Self.rows, order.count)]
            for c in 0..<width where members.contains(where: { batch.augmented[$0 * width + c] != 0 }) {
                features.append(Int32(c))
                for i in 0..<Self.rows {
                    values.append(i < members.count ? batch.augmented[members[first + i] * width + c] : 0)
                }
            }
            blockStart.append(Int32(features.count))
        }
        self.order = order.map { Int32($0) }
        labels = order.map { batch.labels[$0] }
        self.blockStart = blockStart
        self.features = features
        self.values = values
    }

    /// Rows grouped greedily into blocks that share their non-zero features: each block starts from the
    /// remaining row with the fewest non-zero features, then takes, seven times, the remaining row adding the
    /// fewest features the block does not have yet (ties: the row with more non-zero features, then the
    /// first). On the digits training set this visits 38.6 features per row against 42.5 for the sort by
    /// zero pattern (33.8 are non-zero). Only which rows share a block changes, not any row's sums.
    static func greedyGrouping(_ batch: MLPBatch) -> [Int] {
        let width = batch.inputs + 1, words = (width + 63) / 64, n = batch.count
        var masks = [UInt64](repeating: 0, count: n * words)
        for r in 0..<n {
            for c in 0..<width where batch.augmented[r * width + c] != 0 { masks[r * words + c / 64] |= 1 << UInt64(c % 64) }
        }
        let counts = (0..<n).map { r in (0..<words).reduce(0) { $0 + masks[r * words + $1].nonzeroBitCount } }
        var remaining = Array(0..<n), order: [Int] = []
        order.reserveCapacity(n)
        var union = [UInt64](repeating: 0, count: words)
        while !remaining.isEmpty {
            var pick = 0
            for i in 1..<remaining.count where counts[remaining[i]] < counts[remaining[pick]] { pick = i }
            var taken = 0
            for w in 0..<words { union[w] = 0 }
            while true {
                let r = remaining.remove(at: pick)
                order.append(r)
                for w in 0..<words { union[w] |= masks[r * words + w] }
                taken += 1
                if taken == Self.rows || remaining.isEmpty { break }
                var bestAdded = Int.max, bestCount = -1
                for (i, candidate) in remaining.enumerated() {
                    var added = 0
                    for w in 0..<words { added += (masks[candidate * words + w] & ~union[w]).nonzeroBitCount }
                    if added < bestAdded || (added == bestAdded && counts[candidate] > bestCount) {
                        bestAdded = added; bestCount = counts[candidate]; pick = i
                    }
                }
            }
        }
        return order
    }

    /// Examples in the batch.
    public var count: Int { labels.count }

    /// Multiply-adds of one scoring, as the kernel runs it (first layer over visited features, second
    /// layer in groups of 10 outputs: none padded for the digits' 10).
    public var multiplyAdds: Int {
        let groups = (classifier.outputs + Self.outputGroup - 1) / Self.outputGroup
        return features.count * Self.rows * classifier.hidden
            + (blockStart.count - 1) * Self.rows * (classifier.hidden + 1) * groups * Self.outputGroup
    }

    /// Outputs per pass of the second layer (its register tile: 10 accumulators of 8 rows).
    static let outputGroup = 10

    /// Writes 1 where the first arg-max of the logits equals the label, else 0.
    ///
    /// The kernel works on the transposed problem: each SIMD8 lane is one of the block's eight rows. `[W1; b1]`
    /// is first repacked unit-chunk-major (8 hidden units × every input, 2 KB per chunk, contiguous) and
    /// `[W2; b2]` cut into groups of 10 outputs (the last padded with zeros). Each thread then takes its
    /// blocks one chunk of 8 hidden units at a time: the chunk's slab of `[W1; b1]` stays in L1 while every
    /// block of the thread's range computes its 8 units' values for its 8 rows (one vector per unit) and adds
    /// them into its rows' logits (one vector per output), kept in memory between chunks. The logits thus
    /// accumulate over hidden units in order 0, 1, …, 255 exactly as a row at a time would: the same bytes,
    /// whatever the loop order or the thread count.
    public func scoreCorrect(parameters: UnsafePointer<Float>, into scores: UnsafeMutableBufferPointer<Float>) {
        let h = classifier.hidden, o = classifier.outputs, width = classifier.inputs + 1
        let g = Self.outputGroup, groups = (o + g - 1) / g
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: width * h + groups * (h + 1) * g)
        defer { packed.deallocate() }
        // [W1; b1] as h/8 slabs of `width` rows of 8 units.
        for f in 0..<width {
            let row = parameters + f * h
            for chunk in stride(from: 0, to: h, by: 8) {
                (packed + chunk * width + f * 8).update(from: row + chunk, count: 8)
            }
        }
        // [W2; b2] as `groups` blocks of h + 1 rows of 10 outputs, unused lanes zero (never read by the arg-max).
        let second = packed + width * h
        second.initialize(repeating: 0, count: groups * (h + 1) * g)
        let w2 = parameters + classifier.secondLayerOffset
        for j in 0...h { for c in 0..<o { second[(c / g * (h + 1) + j) * g + c % g] = w2[j * o + c] } }
        let blocks = blockStart.count - 1
        let w1p = SendableConstPointer(UnsafePointer(packed)), w2p = SendableConstPointer(UnsafePointer(second))
        let out = SendablePointer(scores.baseAddress!)
        blockStart.withUnsafeBufferPointer { bs in
            features.withUnsafeBufferPointer { fs in
                values.withUnsafeBufferPointer { vs in
                    order.withUnsafeBufferPointer { os in
                        labels.withUnsafeBufferPointer { ls in
                            let (bsp, fsp, vsp, osp, lsp) = (SendableConstPointer(bs.baseAddress!), SendableConstPointer(fs.baseAddress!),
                                                             SendableConstPointer(vs.baseAddress!), SendableConstPointer(os.baseAddress!),
                                                             SendableConstPointer(ls.baseAddress!))
                            let n = count
                            ParallelTeam.shared.chunks(blocks, minimumChunk: 6) { range in
                                // Logits of block i of the range, group k: vectors (i · groups + k) · 10 ..< +10.
                                withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: range.count * groups * g) { logits in
                                    for i in 0..<range.count {
                                        for k in 0..<groups {
                                            for c in 0..<g { logits[(i * groups + k) * g + c] = SIMD8(repeating: w2p.base[(k * (h + 1) + h) * g + c]) }
                                        }
                                    }
                                    withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: 8) { tile in
                                        for chunk in stride(from: 0, to: h, by: 8) {
                                            let slab = w1p.base + chunk * width
                                            for (i, b) in range.enumerated() {
                                                let lo = Int(bsp.base[b]), hi = Int(bsp.base[b + 1])
                                                firstLayer(entries: lo..<hi, slab: slab, features: fsp.base, values: vsp.base, tile: tile.baseAddress!)
                                                for k in 0..<groups {
                                                    secondLayer(tile: tile.baseAddress!, w2: w2p.base + (k * (h + 1) + chunk) * g,
                                                                logits: logits.baseAddress! + (i * groups + k) * g)
                                                }
                                            }
                                        }
                                    }
                                    for (i, b) in range.enumerated() {
                                        let guess = argmax(logits.baseAddress! + i * groups * g, o)
                                        for r in 0..<Self.rows where b * Self.rows + r < n {
                                            let position = b * Self.rows + r
                                            out.base[Int(osp.base[position])] = guess[r] == lsp.base[position] ? 1 : 0
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// ReLU(x̃ · [W1; b1]) of the block's eight rows for one chunk of 8 hidden units into `tile` (8 vectors:
    /// unit u's values of the eight rows), from the chunk's slab (`width` rows of 8 units, contiguous).
    @inline(__always)
    private func firstLayer(entries: Range<Int>, slab: UnsafePointer<Float>, features: UnsafePointer<Int32>,
                            values: UnsafePointer<Float>, tile: UnsafeMutablePointer<SIMD8<Float>>) {
        let zero = SIMD8<Float>()
        var a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero, a6 = zero, a7 = zero
        for e in entries {
            let w = slab + Int(features[e]) * 8
            let x = UnsafeRawPointer(values + e * 8).loadUnaligned(as: SIMD8<Float>.self)
            a0 = a0.addingProduct(x, SIMD8(repeating: w[0])); a1 = a1.addingProduct(x, SIMD8(repeating: w[1]))
            a2 = a2.addingProduct(x, SIMD8(repeating: w[2])); a3 = a3.addingProduct(x, SIMD8(repeating: w[3]))
            a4 = a4.addingProduct(x, SIMD8(repeating: w[4])); a5 = a5.addingProduct(x, SIMD8(repeating: w[5]))
            a6 = a6.addingProduct(x, SIMD8(repeating: w[6])); a7 = a7.addingProduct(x, SIMD8(repeating: w[7]))
        }
        tile[0] = relu(a0); tile[1] = relu(a1); tile[2] = relu(a2); tile[3] = relu(a3)
        tile[4] = relu(a4); tile[5] = relu(a5); tile[6] = relu(a6); tile[7] = relu(a7)
    }

    /// Adds the chunk's 8 hidden units of the block's eight rows (`tile`) into the rows' logits of one group
    /// of 10 outputs (10 vectors, output c's eight rows at c), unit after unit (dense: a branch per ReLU zero
    /// costs more than the multiply-add). `w2` is the chunk's 8 rows of the group's `[W2]` (10 floats each).
    @inline(__always)
    private func secondLayer(tile: UnsafePointer<SIMD8<Float>>, w2: UnsafePointer<Float>, logits: UnsafeMutablePointer<SIMD8<Float>>) {
        var l0 = logits[0], l1 = logits[1], l2 = logits[2], l3 = logits[3], l4 = logits[4]
        var l5 = logits[5], l6 = logits[6], l7 = logits[7], l8 = logits[8], l9 = logits[9]
        for j in 0..<8 {
            let u = tile[j], w = w2 + j * 10
            l0 = l0.addingProduct(u, SIMD8(repeating: w[0])); l1 = l1.addingProduct(u, SIMD8(repeating: w[1]))
            l2 = l2.addingProduct(u, SIMD8(repeating: w[2])); l3 = l3.addingProduct(u, SIMD8(repeating: w[3]))
            l4 = l4.addingProduct(u, SIMD8(repeating: w[4])); l5 = l5.addingProduct(u, SIMD8(repeating: w[5]))
            l6 = l6.addingProduct(u, SIMD8(repeating: w[6])); l7 = l7.addingProduct(u, SIMD8(repeating: w[7]))
            l8 = l8.addingProduct(u, SIMD8(repeating: w[8])); l9 = l9.addingProduct(u, SIMD8(repeating: w[9]))
        }
        logits[0] = l0; logits[1] = l1; logits[2] = l2; logits[3] = l3; logits[4] = l4
        logits[5] = l5; logits[6] = l6; logits[7] = l7; logits[8] = l8; logits[9] = l9
    }
}

/// Per lane (row), the first index of the largest of the first `count` outputs, whose vectors are
/// `logits[c / 10 · 10 + c % 10]` (groups of 10): a strict `>` keeps the first of equal values.
@inline(__always)
private func argmax(_ logits: UnsafePointer<SIMD8<Float>>, _ count: Int) -> SIMD8<Int32> {
    var best = logits[0], index = SIMD8<Int32>()
    for c in 1..<max(count, 1) {
        let v = logits[c], larger = v .> best
        best.replace(with: v, where: larger)
        index.replace(with: Int32(c), where: larger)
    }
    return index
}

/// max(v, 0) per lane, as one compare and blend.
@inline(__always)
private func relu(_ v: SIMD8<Float>) -> SIMD8<Float> { v.replacing(with: 0, where: v .< 0) }
