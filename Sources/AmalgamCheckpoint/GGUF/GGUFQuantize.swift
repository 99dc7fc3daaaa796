import AmalgamCore

// Encoding f32 values as GGUF tensor data: the plain types by rounding, Q8_0 exactly as gguf-py's
// `quants.py` (and ggml's `quantize_row_q8_0_ref`) does it.

extension GGMLType {
    /// Whether `quantize` can produce this type.
    public var canQuantize: Bool { [.f32, .f16, .bf16, .q8_0].contains(self) }

    /// Encodes `values` (a multiple of the block size) as this type.
    public func quantize(_ values: UnsafeBufferPointer<Float>) -> [UInt8] {
        precondition(canQuantize, "\(name) cannot be quantized")
        let n = values.count
        precondition(n % blockLayout.elements == 0, "\(name): \(n) values are not whole blocks")
        let out = [UInt8](unsafeUninitializedCapacity: byteCount(elements: n)) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            switch self {
            case .f32: Convert.fromFloat32(values, to: .f32, into: raw)
            case .f16: Convert.fromFloat32(values, to: .f16, into: raw)
            case .bf16: Convert.fromFloat32(values, to: .bf16, into: raw)
            case .q8_0:
                let src = SendableConstPointer(values.baseAddress!)
                let dst = SendablePointer(raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
                parallelChunks(n / 32, minimumChunk: 2048) { r in
                    for b in r { quantizeQ8_0(src.base + b * 32, dst.base + b * 34) }
                }
            default: fatalError("unreachable")
            }
            initialized = buffer.count
        }
        return out
    }
}

/// gguf-py: d = max|x| / 127 (f32), id = 1/d (0 when d = 0), q = round-half-away(x · id), d stored as f16.
private func quantizeQ8_0(_ x: UnsafePointer<Float>, _ o: UnsafeMutablePointer<UInt8>) {
    var amax: Float = 0
    for j in 0..<32 { amax = max(amax, abs(x[j])) }
    let d = amax / 127
    let id: Float = d == 0 ? 0 : 1 / d
    let dh = Float16(d).bitPattern
    o[0] = UInt8(truncatingIfNeeded: dh)
    o[1] = UInt8(truncatingIfNeeded: dh >> 8)
    for j in 0..<32 {
        let v = x[j] * id
        // np_roundf: sign(v)·(floor|v| + floor(2·(|v| − floor|v|))), i.e. halves away from zero.
        let a = abs(v)
        let f = a.rounded(.down)
        let q = (f + (2 * (a - f)).rounded(.down)) * (v < 0 ? -1 : (v > 0 ? 1 : 0))
        o[2 + j] = UInt8(bitPattern: Int8(q))
    }
}
