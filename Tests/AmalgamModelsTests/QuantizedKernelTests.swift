import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import Foundation
import Testing

/// The quantized kernels against dequantize-then-dot on the same quantized activations.
///
/// Reference: the weight rows dequantized by `GGMLType.dequantize` (bit for bit gguf-py's, see
/// GGUFReaderTests), the activations as q·d, dotted in Double. For Q4_1/Q5_1 the kernel uses, as ggml
/// does, the activation block's stored s = f16(d·Σq) for the min term, so the reference swaps
/// m·d·Σq for m·s per block.
///
/// Tolerance: the kernel's block sums are exact integers (the bounds are in QuantizedDot), so it differs
/// from the exact value only by f32 rounding: one product d_w·d_a per block, one FMA per block into a
/// lane accumulator, the min terms, the final 16-lane sum, and the reference's own rounding of each
/// dequantized weight (d·u + m, d·sc·u − dmin·m). Each rounds by at most 2⁻²⁴ of a quantity bounded by
/// the sum of absolute block terms S, and at most (blocks + 24) of them chain, so
/// |kernel − reference| ≤ (blocks + 24)·2⁻²³·S.
private let kernelTypes: [GGMLType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K]

/// Byte offsets of the f16 scale fields of a block, and whether the second is a min (dmin).
private func scaleOffsets(_ type: GGMLType) -> [Int] {
    switch type {
    case .q8_0, .q4_0, .q5_0: return [0]
    case .q4_1, .q5_1, .q4_K, .q5_K: return [0, 2]
    case .q6_K: return [208]
    default: return []
    }
}

/// `rows` random rows of `cols` values of `type`: random quant bytes, random finite f16 scales.
private func randomBlocks(_ type: GGMLType, rows: Int, cols: Int, _ g: inout SeededGenerator) -> QuantizedTensor {
    let (per, size) = type.blockLayout
    let count = rows * cols / per * size
    let storage = TensorStorage(zeroedByteCount: count)
    let p = storage.mutableBase!.assumingMemoryBound(to: UInt8.self)
    for i in 0..<count { p[i] = UInt8.random(in: 0...255, using: &g) }
    for b in 0..<(rows * cols / per) {
        for o in scaleOffsets(type) {
            let v = Float16(Float.random(in: -0.05...0.05, using: &g)).bitPattern
            p[b * size + o] = UInt8(truncatingIfNeeded: v)
            p[b * size + o + 1] = UInt8(truncatingIfNeeded: v >> 8)
        }
    }
    return QuantizedTensor(type: type, shape: [rows, cols], storage: storage)
}

/// Activations with the spread of a real hidden state: mostly small, a few outliers.
private func randomActivations(_ count: Int, _ g: inout SeededGenerator) -> [Float] {
    (0..<count).map { _ in
        let v = Float.random(in: -1...1, using: &g)
        return Int.random(in: 0..<50, using: &g) == 0 ? v * 40 : v
    }
}

private func half(_ p: UnsafeRawPointer, _ offset: Int) -> Double {
    Double(Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))))
}

/// The exact value the kernel approximates, and the tolerance bound S·(blocks + 24)·2⁻²³.
private func reference(_ w: QuantizedTensor, row r: Int, _ a: QuantizedActivations, token t: Int) -> (value: Double, tolerance: Double) {
    let cols = w.shape[1], (per, size) = w.type.blockLayout
    var deq = [Float](repeating: 0, count: cols)
    let rowBytes = UnsafeRawPointer(w.storage.base! + r * w.rowByteCount)
    deq.withUnsafeMutableBufferPointer { w.type.dequantize(UnsafeRawBufferPointer(start: rowBytes, count: w.rowByteCount), into: $0) }
    let ab = a.format.blockSize
    var value = 0.0, magnitude = 0.0
    for i in 0..<cols {
        let x = Double(a.quant(t, i)) * Double(a.scale(t, block: i / ab))
        value += Double(deq[i]) * x
        magnitude += abs(Double(deq[i]) * x)
    }
    let blocks = cols / per
    for b in 0..<blocks {
        let block = rowBytes + b * size
        let absQ = (0..<per).reduce(0.0) { $0 + abs(Double(a.quant(t, b * per + $1))) }
        switch w.type {
        case .q4_1, .q5_1:
            let m = half(block, 2), d = Double(a.scale(t, block: b))
            let sumQ = (0..<32).reduce(0.0) { $0 + Double(a.quant(t, b * 32 + $1)) }
            value += m * (Double(a.sum(t, b)) - d * sumQ)
            magnitude += abs(m) * (abs(Double(a.sum(t, b))) + d * absQ)
        case .q4_K, .q5_K:
            magnitude += 2 * abs(half(block, 2)) * 63 * abs(Double(a.scale(t, block: b))) * absQ
        default: break
        }
    }
    return (value, magnitude * Double(blocks + 24) * pow(2, -23))
}

@Test("each quantized kernel equals dequantize-then-dot on the same quantized activations",
      arguments: kernelTypes)
func quantizedKernelMatchesDequantizedDot(type: GGMLType) throws {
    var g = SeededGenerator(seed: 1900 + UInt64(type.rawValue))
    let per = type.blockLayout.elements
    // One block, several blocks, an odd number of blocks; rows that are not a multiple of the tile.
    for (rows, blocks) in [(1, 1), (5, 3), (19, 7)] {
        let cols = blocks * per
        let w = randomBlocks(type, rows: rows, cols: cols, &g)
        let weight = try WeightMatrix(quantized: w, name: "w", path: "test", rows: rows, cols: cols)
        // 6 tokens: one tile of four and a remainder of two.
        let T = 6
        let x = randomActivations(T * cols, &g)
        var out = [Float](repeating: .nan, count: T * rows)
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { MatMul.forward($0.baseAddress!, xp.baseAddress!, rows: T, weight: weight, bias: nil, scratch: nil) }
        }
        let format = try #require(QuantizedActivations.Format(weight: type))
        let a = x.withUnsafeBufferPointer { QuantizedActivations($0.baseAddress!, rows: T, cols: cols, format: format) }
        for t in 0..<T {
            for r in 0..<rows {
                let (value, tolerance) = reference(w, row: r, a, token: t)
                let got = out[t * rows + r]
                #expect(abs(Double(got) - value) <= tolerance, "\(type.name) \(rows)×\(cols) token \(t) row \(r): \(got) vs \(value) (tolerance \(tolerance))")
                // A token's value does not depend on the tokens computed beside it.
                let single = QuantizedDot.dot(type, row: w.storage.base! + r * w.rowByteCount, a, token: t)
                #expect(single == got, "\(type.name) token \(t) row \(r): alone \(single), in a tile \(got)")
            }
        }
    }
}

@Test("activations are quantized to Q8_0 blocks exactly as gguf-py quantizes Q8_0, with Q8_1's s = f16(d·Σq)")
func activationQuantizationMatchesQ8_0() throws {
    var g = SeededGenerator(seed: 19)
    let cols = 96, rows = 3
    var x = randomActivations(rows * cols, &g)
    x[64..<96] = ArraySlice(repeating: 0, count: 32)  // an all-zero block
    let a = x.withUnsafeBufferPointer { QuantizedActivations($0.baseAddress!, rows: rows, cols: cols, format: .q8_1) }
    let bytes = x.withUnsafeBufferPointer { GGMLType.q8_0.quantize($0) }
    for r in 0..<rows {
        for b in 0..<(cols / 32) {
            let block = (r * cols / 32 + b) * 34
            let d = Float(Float16(bitPattern: UInt16(bytes[block]) | UInt16(bytes[block + 1]) << 8))
            #expect(a.scale(r, block: b) == d)
            var sum: Float = 0
            for j in 0..<32 {
                #expect(a.quant(r, b * 32 + j) == Float(Int8(bitPattern: bytes[block + 2 + j])), "row \(r) block \(b) value \(j)")
                sum += a.quant(r, b * 32 + j)
            }
            // s uses the unrounded d = amax/127.
            let amax = x[(r * cols + b * 32)..<(r * cols + b * 32 + 32)].map(abs).max()!
            #expect(a.sum(r, b) == Float(Float16(amax / 127 * sum)))
        }
    }
}

@Test("Q8_K activations: d = −max/127 of the largest-magnitude value, quants within ±127, group sums of 16")
func activationQuantizationQ8_K() throws {
    var g = SeededGenerator(seed: 20)
    let cols = 512
    var x = randomActivations(cols, &g)
    x[3] = -90  // the largest magnitude: it quantizes to −127 (d = −max/127, here positive)
    let a = x.withUnsafeBufferPointer { QuantizedActivations($0.baseAddress!, rows: 1, cols: cols, format: .q8_K) }
    #expect(a.scale(0, block: 0) == 1 / (-127 / Float(-90)))
    #expect(a.quant(0, 3) == -127)
    for b in 0..<2 {
        let d = a.scale(0, block: b)
        for i in (b * 256)..<(b * 256 + 256) {
            let q = a.quant(0, i)
            #expect(q == q.rounded() && abs(q) <= 127)
            #expect(abs(q * d - x[i]) <= abs(d) * 0.5 + 1e-6, "value \(i)")
        }
    }
    for group in 0..<(cols / 16) {
        #expect(a.sum(0, group) == (0..<16).reduce(Float(0)) { $0 + a.quant(0, group * 16 + $1) })
    }
}
