import AmalgamCore

// Dequantization of ggml block types to f32: the hot loops of reading a quantized GGUF. Each block
// function decodes one block exactly as gguf-py's `quants.py` does (same operations in the same order,
// so results match it bit for bit); `dequantize` runs them in parallel over contiguous runs of blocks.

extension GGMLType {
    /// Whether `dequantize` handles this type.
    public var canDequantize: Bool {
        switch self {
        case .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: return true
        default: return false
        }
    }

    /// Decodes `source` (whole blocks of this type) into `out.count` floats, in parallel over blocks.
    public func dequantize(_ source: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        precondition(canDequantize, "\(name) cannot be dequantized")
        let (per, size) = blockLayout
        let blocks = out.count / per
        precondition(out.count % per == 0 && source.count >= blocks * size, "\(name): \(source.count) bytes for \(out.count) values")
        guard blocks > 0, let s = source.baseAddress, let d = out.baseAddress else { return }
        switch self {
        case .f32, .f16, .bf16:
            let dtype = plainDType!
            let src = SendableConstPointer(s.assumingMemoryBound(to: UInt8.self))
            let dst = SendablePointer(d)
            parallelChunks(blocks, minimumChunk: 1 << 18) { r in
                Convert.toFloat32(UnsafeRawBufferPointer(start: src.base + r.lowerBound * size, count: r.count * size),
                                  from: dtype, into: UnsafeMutableBufferPointer(start: dst.base + r.lowerBound, count: r.count))
            }
            return
        default: break
        }
        let kernel: @Sendable (UnsafeRawPointer, UnsafeMutablePointer<Float>) -> Void
        switch self {
        case .q4_0: kernel = dequantizeQ4_0
        case .q4_1: kernel = dequantizeQ4_1
        case .q5_0: kernel = dequantizeQ5_0
        case .q5_1: kernel = dequantizeQ5_1
        case .q8_0: kernel = dequantizeQ8_0
        case .q2_K: kernel = dequantizeQ2_K
        case .q3_K: kernel = dequantizeQ3_K
        case .q4_K: kernel = dequantizeQ4_K
        case .q5_K: kernel = dequantizeQ5_K
        case .q6_K: kernel = dequantizeQ6_K
        default: fatalError("unreachable")
        }
        let src = SendableConstPointer(s.assumingMemoryBound(to: UInt8.self))
        let dst = SendablePointer(d)
        // About 64 KiB of output per chunk at least, so small tensors stay on one thread.
        parallelChunks(blocks, minimumChunk: max(1, 16384 / per)) { r in
            var inp = UnsafeRawPointer(src.base + r.lowerBound * size)
            var o = dst.base + r.lowerBound * per
            for _ in r {
                kernel(inp, o)
                inp += size
                o += per
            }
        }
    }
}

@inline(__always) private func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

// Q4_0: f16 d | 16 bytes of nibbles; low nibbles are elements 0..15, high nibbles 16..31.
private func dequantizeQ4_0(_ b: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>) {
    let d = half(b, 0)
    let q = b.assumingMemoryBound(to: UInt8.self) + 2
    for j in 0..<16 {
        o[j] = d * Float(Int32(q[j] & 0x0F) - 8)
        o[j + 16] = d * Float(Int32(q[j] >> 4) - 8)
    }
}

// Q4_1: f16 d | f16 m | 16 bytes of nibbles; x = d·q + m.
private func dequantizeQ4_1(_ b: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>) {
    let d = half(b, 0), m = half(b, 2)
    let q = b.assumingMemoryBound(to: UInt8.self) + 4
    for j in 0..<16 {
        o[j] = d * Float(q[j] & 0x0F) + m
        o[j + 16] = d * Float(q[j] >> 4) + m
    }
}

// Q5_0: f16 d | u32 fifth bits (bit i for element i) | 16 bytes of nibbles; x = d·(q − 16).
private func dequantizeQ5_0(_ b: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>) {
    let d = half(b, 0)
    let qh = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
    let q = b.assumingMemoryBound(to: UInt8.self) + 6
    for j in 0..<16 {
        let lo = Int32(q[j] & 0x0F) | Int32((qh >> UInt32(j)) & 1) << 4
        let hi = Int32(q[j] >> 4) | Int32((qh >> UInt32(j + 16)) & 1) << 4
        o[j] = d * Float(lo - 16)
        o[j + 16] = d * Float(hi - 16)
    }
}

// Q5_1: f16 d | f16 m | u32 fifth bits | 16 bytes of nibbles; x = d·q + m.
private func dequantizeQ5_1(_ b: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>) {
    let d = half(b, 0), m = half(b, 2)
    let qh = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
    let q = b.assumingMemoryBound(to: UInt8.self) + 8
    for j in 0..<16 {
        let lo = UInt32(q[j] & 0x0F) | ((qh >> UInt32(j)) & 1) << 4
        let hi = UInt32(q[j] >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
        o[j] = d * Float(lo) + m
        o[j + 16] = d * Float(hi) + m
    }
}

// Q8_0: f16 d | 32 signed bytes; x = q·d.
private func dequantizeQ8_0(_ b: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>) {
    let d = half(b, 0)
    let q = (b + 2).assumingMemoryBound(to: Int8.self)
    for j in 0..<32 { o[j] = Float(q[j]) * d }
}

// Q2_K (256 values): 16 scale bytes (low nibble scale, high nibble min) | 64 bytes of 2-bit values |
// f16 d | f16 dmin. Value e: byte (e/128)·32 + e%32, shift 2·((e%128)/32); sub-block e/16.
private func dequantizeQ2_K(_ b: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>) {
    let p = b.assumingMemoryBound(to: UInt8.self)
    let scales = p, qs = p + 16
    let d = half(b, 80), dmin = half(b, 82)
    for e0 in stride(from: 0, to: 256, by: 16) {
        let sc = scales[e0 / 16]
        let dl = d * Float(sc & 0x0F), ml = dmin * Float(sc >> 4)
        let base = (e0 / 128) * 32 + e0 % 32, shift = UInt8(2 * ((e0 % 128) / 32))
        for l in 0..<16 { o[e0 + l] = dl * Float((qs[base + l] >> shift) & 3) - ml }
    }
}

// Q3_K (256 values): 32 bytes high-bit mask | 64 bytes of 2-bit values | 12 bytes of 6-bit scales | f16 d.
// q = low 2 bits − 4 when the mask bit is clear; scale = 6-bit value − 32.
private func dequantizeQ3_K(_ b: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>) {
    let p = b.assumingMemoryBound(to: UInt8.self)
    let hmask = p, qs = p + 32, sc = p + 96
    let d = half(b, 108)
    for i in 0..<16 {
        let low = i < 8 ? sc[i] & 0x0F : sc[i - 8] >> 4
        let high = (sc[8 + i % 4] >> UInt8(2 * (i / 4))) & 3
        let scale = Int32(low | high << 4) - 32
        let dl = d * Float(scale)
        let e0 = i * 16
        let base = (e0 / 128) * 32 + e0 % 32, shift = UInt8(2 * ((e0 % 128) / 32))
        let bit = UInt8(e0 / 32)
        for l in 0..<16 {
            let lo = Int32((qs[base + l] >> shift) & 3)
            let h = Int32(((hmask[e0 % 32 + l] >> bit) & 1) ^ 1) << 2
            o[e0 + l] = dl * Float(lo - h)
        }
    }
}

/// The 8 six-bit scales and mins of a Q4_K/Q5_K block, from its 12 packed bytes.
@inline(__always) private func kScaleMin(_ s: UnsafePointer<UInt8>, _ j: Int) -> (UInt8, UInt8) {
    if j < 4 { return (s[j] & 0x3F, s[j + 4] & 0x3F) }
    return ((s[j + 4] & 0x0F) | ((s[j - 4] >> 2) & 0x30), (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30))
}

// Q4_K (256 values): f16 d | f16 dmin | 12 bytes of scales/mins | 128 bytes of nibbles. Sub-block j
// (32 values) uses byte (j/2)·32 + l, low nibble for even j; x = d·sc·q − dmin·m.
private func dequantizeQ4_K(_ b: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>) {
    let p = b.assumingMemoryBound(to: UInt8.self)
    let d = half(b, 0), dmin = half(b, 2)
    let scales = p + 4, qs = p + 16
    for j in 0..<8 {
        let (sc, m) = kScaleMin(scales, j)
        let dd = d * Float(sc), dm = dmin * Float(m)
        let q = qs + (j / 2) * 32, shift = UInt8(4 * (j % 2))
        let out = o + j * 32
        for l in 0..<32 { out[l] = dd * Float((q[l] >> shift) & 0x0F) - dm }
    }
}

// Q5_K (256 values): as Q4_K plus 32 bytes of fifth bits (bit j of byte l for sub-block j) before the nibbles.
private func dequantizeQ5_K(_ b: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>) {
    let p = b.assumingMemoryBound(to: UInt8.self)
    let d = half(b, 0), dmin = half(b, 2)
    let scales = p + 4, qh = p + 16, qs = p + 48
    for j in 0..<8 {
        let (sc, m) = kScaleMin(scales, j)
        let dd = d * Float(sc), dm = dmin * Float(m)
        let q = qs + (j / 2) * 32, shift = UInt8(4 * (j % 2)), bit = UInt8(j)
        let out = o + j * 32
        for l in 0..<32 { out[l] = dd * Float(((q[l] >> shift) & 0x0F) | ((qh[l] >> bit) & 1) << 4) - dm }
    }
}

// Q6_K (256 values): 128 bytes low nibbles | 64 bytes high 2-bit pairs | 16 signed scales | f16 d.
// Value e (half h = e/128, r = e%128): low nibble of byte h·64 + r%64 (high nibble when r ≥ 64),
// high bits of byte h·32 + r%32 at shift 2·(r/32); x = d·scale[e/16]·(q − 32).
private func dequantizeQ6_K(_ b: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>) {
    let p = b.assumingMemoryBound(to: UInt8.self)
    let ql = p, qh = p + 128
    let scales = (b + 192).assumingMemoryBound(to: Int8.self)
    let d = half(b, 208)
    for i in 0..<16 {
        let dd = d * Float(scales[i])
        let e0 = i * 16
        let h = e0 / 128, r = e0 % 128
        let lowBase = ql + h * 64 + r % 64, lowShift = UInt8(r >= 64 ? 4 : 0)
        let highBase = qh + h * 32 + r % 32, highShift = UInt8(2 * (r / 32))
        for l in 0..<16 {
            let q = Int32((lowBase[l] >> lowShift) & 0x0F) | Int32((highBase[l] >> highShift) & 3) << 4
            o[e0 + l] = dd * Float(q - 32)
        }
    }
}
