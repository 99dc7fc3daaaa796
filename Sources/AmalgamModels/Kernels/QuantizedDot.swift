import AmalgamCheckpoint
import AmalgamCore

/// Dot products of one block-quantized weight row (GGUF blocks, read in place) with rows of quantized
/// activations, block by block as ggml's `ggml_vec_dot_*` compute them:
///
/// - 32-blocks: Σ_b d_w·d_a·Σ_i w_i·a_i, plus m_w·s_a per block for Q4_1/Q5_1 (their min, against the
///   activation block's stored s = f16(d·Σa)).
/// - K-quants, per 256-superblock: d_a·d_w·Σ_j sc_j·Σ_{i∈j} u_i·a_i − d_a·dmin·Σ_j m_j·Σ_{i∈j} a_i
///   (Q6_K: d_a·d_w·Σ_g sc_g·Σ_{i∈g} (q_i − 32)·a_i).
///
/// The weight quants are widened to f32 and multiplied with the activation quants (integers, see
/// `QuantizedActivations`) with SIMD FMAs. Every lane of a block's (or superblock's) integer sum stays
/// below 2²⁴, so it is exact, the same integer ggml's int32 arithmetic gets; only the float
/// accumulation over blocks rounds. The bounds are noted per kernel.
///
/// Each kernel computes up to four tokens against one weight row, decoding each block once; the
/// operations for one token do not depend on how many share the call, so a token's result is the same
/// bit for bit whether it is decoded alone or in a prompt, and at any thread count.
public enum QuantizedDot {
    /// Whether the engine has a kernel for weights stored as `type`.
    public static func supports(_ type: GGMLType) -> Bool { QuantizedActivations.Format(weight: type) != nil }

    /// The dot product of one weight row (`cols` values of `type`) with activation row `token`.
    public static func dot(_ type: GGMLType, row: UnsafeRawPointer, _ a: QuantizedActivations, token: Int) -> Float {
        dot(type, row, a, token, 1)[0]
    }

    /// Dots of one weight row with activation rows t0..<t0+n (n ≤ 4), in lanes 0..<n.
    @inline(__always)
    static func dot(_ type: GGMLType, _ row: UnsafeRawPointer, _ a: QuantizedActivations, _ t0: Int, _ n: Int) -> SIMD4<Float> {
        switch type {
        case .q8_0: return dot32(Q8_0Block.self, row, a, t0, n)
        case .q4_0: return dot32(Q4_0Block.self, row, a, t0, n)
        case .q4_1: return dot32(Q4_1Block.self, row, a, t0, n)
        case .q5_0: return dot32(Q5_0Block.self, row, a, t0, n)
        case .q5_1: return dot32(Q5_1Block.self, row, a, t0, n)
        case .q4_K: return dotQ4Q5K(row, a, t0, n, fifthBit: false)
        case .q5_K: return dotQ4Q5K(row, a, t0, n, fifthBit: true)
        case .q6_K: return dotQ6K(row, a, t0, n)
        default: preconditionFailure("no quantized kernel for \(type.name)")
        }
    }

    // MARK: 32-value blocks

    /// Bound for Q8_0: a lane sums 2 products of |w|, |a| ≤ 127 (Q5_1: w ≤ 31): ≤ 32,258, exact.
    @inline(__always)
    static func dot32<B: Block32>(_: B.Type, _ row: UnsafeRawPointer, _ a: QuantizedActivations, _ t0: Int, _ n: Int) -> SIMD4<Float> {
        let cols = a.cols, blocks = cols / 32
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>(), acc2 = SIMD16<Float>(), acc3 = SIMD16<Float>()
        var min0: Float = 0, min1: Float = 0, min2: Float = 0, min3: Float = 0
        let q = a.quants + t0 * cols, d = a.scales + t0 * blocks, s = a.sums + t0 * blocks
        var p = row
        for b in 0..<blocks {
            let (lo, hi) = B.quants(p)
            let dw = B.scale(p), mw = B.hasMin ? B.minimum(p) : 0
            @inline(__always) func token(_ k: Int, _ acc: inout SIMD16<Float>, _ minAcc: inout Float) {
                let x = q + k * cols + b * 32
                var sum = lo * load16(x)
                sum.addProduct(hi, load16(x + 16))
                acc.addProduct(sum, SIMD16(repeating: dw * d[k * blocks + b]))
                if B.hasMin { minAcc += mw * s[k * blocks + b] }
            }
            token(0, &acc0, &min0)
            if n > 1 { token(1, &acc1, &min1) }
            if n > 2 { token(2, &acc2, &min2) }
            if n > 3 { token(3, &acc3, &min3) }
            p += B.byteSize
        }
        return SIMD4(acc0.sum() + min0, acc1.sum() + min1, acc2.sum() + min2, acc3.sum() + min3)
    }

    // MARK: K-quants

    /// Q4_K (144 bytes: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles) and
    /// Q5_K (176 bytes: the same with 32 bytes of fifth bits before the nibbles).
    /// Bound: a lane sums 2 products u·a ≤ 31·127, times sc ≤ 63, over 8 sub-blocks: ≤ 3.97·10⁶ < 2²⁴.
    @inline(__always)
    static func dotQ4Q5K(_ row: UnsafeRawPointer, _ a: QuantizedActivations, _ t0: Int, _ n: Int, fifthBit: Bool) -> SIMD4<Float> {
        let cols = a.cols, superblocks = cols / 256, groups = cols / 16
        let bytes = fifthBit ? 176 : 144
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>(), acc2 = SIMD16<Float>(), acc3 = SIMD16<Float>()
        var min0: Float = 0, min1: Float = 0, min2: Float = 0, min3: Float = 0
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: 256 + 16) { buffer in
            let w = buffer.baseAddress!, sc = w + 256, mn = w + 264
            for sb in 0..<superblocks {
                let p = row + sb * bytes
                let dw = half(p, 0), dmin = half(p, 2)
                let packed = (p + 4).assumingMemoryBound(to: UInt8.self)
                for j in 0..<8 {
                    let (s, m) = kScaleMin(packed, j)
                    sc[j] = Float(s)
                    mn[j] = Float(m)
                }
                let qs = p + (fifthBit ? 48 : 16)
                let qh0 = fifthBit ? (p + 16).loadUnaligned(as: SIMD16<UInt8>.self) : SIMD16()
                let qh1 = fifthBit ? (p + 32).loadUnaligned(as: SIMD16<UInt8>.self) : SIMD16()
                for g in 0..<4 {
                    let v0 = (qs + 32 * g).loadUnaligned(as: SIMD16<UInt8>.self)
                    let v1 = (qs + 32 * g + 16).loadUnaligned(as: SIMD16<UInt8>.self)
                    var l0 = v0 & 15, l1 = v1 & 15, h0 = v0 &>> 4, h1 = v1 &>> 4
                    if fifthBit {
                        let lowBit = UInt8(2 * g), highBit = UInt8(2 * g + 1)
                        l0 |= ((qh0 &>> lowBit) & 1) &<< 4
                        l1 |= ((qh1 &>> lowBit) & 1) &<< 4
                        h0 |= ((qh0 &>> highBit) & 1) &<< 4
                        h1 |= ((qh1 &>> highBit) & 1) &<< 4
                    }
                    store16(w + 64 * g, l0)
                    store16(w + 64 * g + 16, l1)
                    store16(w + 64 * g + 32, h0)
                    store16(w + 64 * g + 48, h1)
                }
                @inline(__always) func token(_ k: Int, _ acc: inout SIMD16<Float>, _ minAcc: inout Float) {
                    let x = a.quants + (t0 + k) * cols + sb * 256
                    let bsums = a.sums + (t0 + k) * groups + sb * 16
                    var sacc = SIMD16<Float>()
                    var minSum: Float = 0
                    for j in 0..<8 {
                        var sum = load16(w + 32 * j) * load16(x + 32 * j)
                        sum.addProduct(load16(w + 32 * j + 16), load16(x + 32 * j + 16))
                        sacc.addProduct(sum, SIMD16(repeating: sc[j]))
                        minSum += mn[j] * (bsums[2 * j] + bsums[2 * j + 1])
                    }
                    let da = a.scales[(t0 + k) * superblocks + sb]
                    acc.addProduct(sacc, SIMD16(repeating: da * dw))
                    minAcc -= da * dmin * minSum
                }
                token(0, &acc0, &min0)
                if n > 1 { token(1, &acc1, &min1) }
                if n > 2 { token(2, &acc2, &min2) }
                if n > 3 { token(3, &acc3, &min3) }
            }
            return SIMD4(acc0.sum() + min0, acc1.sum() + min1, acc2.sum() + min2, acc3.sum() + min3)
        }
    }

    /// Q6_K (210 bytes: 128 bytes of low nibbles, 64 bytes of high bit pairs, 16 signed scales, f16 d last).
    /// Bound: a lane holds one product |q − 32|·|a| ≤ 32·127, times |sc| ≤ 128, over 16 groups: ≤ 8.4·10⁶ < 2²⁴.
    @inline(__always)
    static func dotQ6K(_ row: UnsafeRawPointer, _ a: QuantizedActivations, _ t0: Int, _ n: Int) -> SIMD4<Float> {
        let cols = a.cols, superblocks = cols / 256
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>(), acc2 = SIMD16<Float>(), acc3 = SIMD16<Float>()
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: 256 + 16) { buffer in
            let w = buffer.baseAddress!, sc = w + 256
            for sb in 0..<superblocks {
                let p = row + sb * 210
                let dw = half(p, 208)
                let scales = (p + 192).assumingMemoryBound(to: Int8.self)
                for g in 0..<16 { sc[g] = Float(scales[g]) }
                for h in 0..<2 {
                    for c in 0..<2 {
                        let l = 16 * c
                        let lowA = (p + 64 * h + l).loadUnaligned(as: SIMD16<UInt8>.self)
                        let lowB = (p + 64 * h + l + 32).loadUnaligned(as: SIMD16<UInt8>.self)
                        let high = (p + 128 + 32 * h + l).loadUnaligned(as: SIMD16<UInt8>.self)
                        let out = w + 128 * h + l
                        store16(out, (lowA & 15) | ((high & 3) &<< 4), minus: 32)
                        store16(out + 32, (lowB & 15) | (((high &>> 2) & 3) &<< 4), minus: 32)
                        store16(out + 64, (lowA &>> 4) | (((high &>> 4) & 3) &<< 4), minus: 32)
                        store16(out + 96, (lowB &>> 4) | (((high &>> 6) & 3) &<< 4), minus: 32)
                    }
                }
                @inline(__always) func token(_ k: Int, _ acc: inout SIMD16<Float>) {
                    let x = a.quants + (t0 + k) * cols + sb * 256
                    var sacc = SIMD16<Float>()
                    for g in 0..<16 {
                        sacc.addProduct(load16(w + 16 * g) * load16(x + 16 * g), SIMD16(repeating: sc[g]))
                    }
                    acc.addProduct(sacc, SIMD16(repeating: a.scales[(t0 + k) * superblocks + sb] * dw))
                }
                token(0, &acc0)
                if n > 1 { token(1, &acc1) }
                if n > 2 { token(2, &acc2) }
                if n > 3 { token(3, &acc3) }
            }
            return SIMD4(acc0.sum(), acc1.sum(), acc2.sum(), acc3.sum())
        }
    }
}

// MARK: block decoding

/// A 32-value GGUF block type: its quants as integer-valued floats (elements 0–15 and 16–31), its scale
/// d and, for the types with one, its min m (value = d·q + m).
protocol Block32 {
    static var byteSize: Int { get }
    static var hasMin: Bool { get }
    static func quants(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>)
    static func scale(_ p: UnsafeRawPointer) -> Float
    static func minimum(_ p: UnsafeRawPointer) -> Float
}

extension Block32 {
    static var hasMin: Bool { false }
    @inline(__always) static func scale(_ p: UnsafeRawPointer) -> Float { half(p, 0) }
    @inline(__always) static func minimum(_ p: UnsafeRawPointer) -> Float { 0 }
}

/// Q8_0: f16 d | 32 signed bytes.
enum Q8_0Block: Block32 {
    static let byteSize = 34
    @inline(__always) static func quants(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        (float((p + 2).loadUnaligned(as: SIMD16<Int8>.self)), float((p + 18).loadUnaligned(as: SIMD16<Int8>.self)))
    }
}

/// Q4_0: f16 d | 16 bytes of nibbles (low: elements 0–15, high: 16–31); q = u − 8.
enum Q4_0Block: Block32 {
    static let byteSize = 18
    @inline(__always) static func quants(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let v = (p + 2).loadUnaligned(as: SIMD16<UInt8>.self)
        return (float(v & 15, minus: 8), float(v &>> 4, minus: 8))
    }
}

/// Q4_1: f16 d | f16 m | 16 bytes of nibbles; value = d·u + m.
enum Q4_1Block: Block32 {
    static let byteSize = 20
    static let hasMin = true
    @inline(__always) static func minimum(_ p: UnsafeRawPointer) -> Float { half(p, 2) }
    @inline(__always) static func quants(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let v = (p + 4).loadUnaligned(as: SIMD16<UInt8>.self)
        return (float(v & 15, minus: 0), float(v &>> 4, minus: 0))
    }
}

/// Q5_0: f16 d | u32 fifth bits (bit i for element i) | 16 bytes of nibbles; q = u + 16h − 16.
enum Q5_0Block: Block32 {
    static let byteSize = 22
    @inline(__always) static func quants(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let (lo, hi) = fiveBit(p + 2, p + 6)
        return (float(lo, minus: 16), float(hi, minus: 16))
    }
}

/// Q5_1: f16 d | f16 m | u32 fifth bits | 16 bytes of nibbles; value = d·(u + 16h) + m.
enum Q5_1Block: Block32 {
    static let byteSize = 24
    static let hasMin = true
    @inline(__always) static func minimum(_ p: UnsafeRawPointer) -> Float { half(p, 2) }
    @inline(__always) static func quants(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let (lo, hi) = fiveBit(p + 4, p + 8)
        return (float(lo, minus: 0), float(hi, minus: 0))
    }
}

/// The 5-bit unsigned quants of a Q5_0/Q5_1 block from its fifth-bit word and its nibbles.
@inline(__always)
private func fiveBit(_ qhPointer: UnsafeRawPointer, _ qsPointer: UnsafeRawPointer) -> (SIMD16<UInt8>, SIMD16<UInt8>) {
    let qh = UInt32(littleEndian: qhPointer.loadUnaligned(as: UInt32.self))
    let v = qsPointer.loadUnaligned(as: SIMD16<UInt8>.self)
    var lowBits = SIMD16<UInt8>(), highBits = SIMD16<UInt8>()
    for i in 0..<16 {
        lowBits[i] = UInt8(truncatingIfNeeded: (qh >> UInt32(i)) & 1) << 4
        highBits[i] = UInt8(truncatingIfNeeded: (qh >> UInt32(i + 16)) & 1) << 4
    }
    return ((v & 15) | lowBits, (v &>> 4) | highBits)
}

@inline(__always) func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

// Integer-to-float widening written lane by lane: LLVM vectorizes these loops (vpmovzxbd/vpmovsxbd +
// vcvtdq2ps), while the generic SIMD conversions `SIMD16<Int32>(truncatingIfNeeded:)` and
// `SIMD16<Float>(_:)` compile to calls into the standard library.
@inline(__always) private func float(_ v: SIMD16<UInt8>, minus bias: Int32) -> SIMD16<Float> {
    var r = SIMD16<Float>()
    for i in 0..<16 { r[i] = Float(Int32(v[i]) - bias) }
    return r
}

@inline(__always) private func float(_ v: SIMD16<Int8>) -> SIMD16<Float> {
    var r = SIMD16<Float>()
    for i in 0..<16 { r[i] = Float(v[i]) }
    return r
}

@inline(__always) func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always) private func store16(_ p: UnsafeMutablePointer<Float>, _ v: SIMD16<UInt8>, minus bias: Int32 = 0) {
    UnsafeMutableRawPointer(p).storeBytes(of: float(v, minus: bias), as: SIMD16<Float>.self)
}

/// Sub-block `j`'s 6-bit scale and min from a Q4_K/Q5_K block's 12 packed bytes (ggml's `get_scale_min_k4`).
@inline(__always) private func kScaleMin(_ s: UnsafePointer<UInt8>, _ j: Int) -> (UInt8, UInt8) {
    if j < 4 { return (s[j] & 0x3F, s[j + 4] & 0x3F) }
    return ((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
}
