/// Conversion kernels between element types. These are hot loops: they run at memory bandwidth
/// only when built for the host CPU (AVX2, FMA and F16C on the project's machines; no AVX-512), which the
/// README's commands do.
public enum Convert {
    /// Decodes `count` elements of `dtype` from `source` into f32.
    public static func toFloat32(_ source: UnsafeRawBufferPointer, from dtype: DType, into out: UnsafeMutableBufferPointer<Float>) {
        let n = out.count
        precondition(source.count >= n * dtype.byteSize, "source too short")
        guard n > 0, let src = source.baseAddress, let dst = out.baseAddress else { return }
        switch dtype {
        case .f32:
            dst.update(from: src.assumingMemoryBound(to: Float.self), count: n)
        case .bf16:
            bf16ToFloat32(src.assumingMemoryBound(to: UInt16.self), dst, n)
        case .f16:
            f16ToFloat32(src.assumingMemoryBound(to: Float16.self), dst, n)
        case .f64:
            let s = src.assumingMemoryBound(to: Double.self)
            for i in 0..<n { dst[i] = Float(s[i]) }
        case .i64:
            let s = src.assumingMemoryBound(to: Int64.self)
            for i in 0..<n { dst[i] = Float(s[i]) }
        case .i32:
            let s = src.assumingMemoryBound(to: Int32.self)
            for i in 0..<n { dst[i] = Float(s[i]) }
        case .i16:
            let s = src.assumingMemoryBound(to: Int16.self)
            for i in 0..<n { dst[i] = Float(s[i]) }
        case .i8:
            let s = src.assumingMemoryBound(to: Int8.self)
            for i in 0..<n { dst[i] = Float(s[i]) }
        case .u8, .bool:
            let s = src.assumingMemoryBound(to: UInt8.self)
            for i in 0..<n { dst[i] = Float(s[i]) }
        }
    }

    /// Encodes f32 values as `dtype` into `out` (round to nearest even for bf16 and f16).
    public static func fromFloat32(_ source: UnsafeBufferPointer<Float>, to dtype: DType, into out: UnsafeMutableRawBufferPointer) {
        let n = source.count
        precondition(out.count >= n * dtype.byteSize, "destination too short")
        guard n > 0, let src = source.baseAddress, let dst = out.baseAddress else { return }
        switch dtype {
        case .f32:
            dst.assumingMemoryBound(to: Float.self).update(from: src, count: n)
        case .bf16:
            float32ToBF16(src, dst.assumingMemoryBound(to: UInt16.self), n)
        case .f16:
            float32ToF16(src, dst.assumingMemoryBound(to: Float16.self), n)
        case .f64:
            let d = dst.assumingMemoryBound(to: Double.self)
            for i in 0..<n { d[i] = Double(src[i]) }
        case .i64:
            let d = dst.assumingMemoryBound(to: Int64.self)
            for i in 0..<n { d[i] = Int64(exactly: src[i].rounded(.towardZero)) ?? 0 }
        case .i32:
            let d = dst.assumingMemoryBound(to: Int32.self)
            for i in 0..<n { d[i] = Int32(exactly: src[i].rounded(.towardZero)) ?? 0 }
        case .i16:
            let d = dst.assumingMemoryBound(to: Int16.self)
            for i in 0..<n { d[i] = Int16(exactly: src[i].rounded(.towardZero)) ?? 0 }
        case .i8:
            let d = dst.assumingMemoryBound(to: Int8.self)
            for i in 0..<n { d[i] = Int8(exactly: src[i].rounded(.towardZero)) ?? 0 }
        case .u8:
            let d = dst.assumingMemoryBound(to: UInt8.self)
            for i in 0..<n { d[i] = UInt8(exactly: src[i].rounded(.towardZero)) ?? 0 }
        case .bool:
            let d = dst.assumingMemoryBound(to: UInt8.self)
            for i in 0..<n { d[i] = src[i] != 0 ? 1 : 0 }
        }
    }

    @inline(__always)
    static func bf16ToFloat32(_ s: UnsafePointer<UInt16>, _ d: UnsafeMutablePointer<Float>, _ n: Int) {
        let d32 = UnsafeMutableRawPointer(d).assumingMemoryBound(to: UInt32.self)
        var i = 0
        while i + 16 <= n {
            let v = UnsafeRawPointer(s + i).loadUnaligned(as: SIMD16<UInt16>.self)
            let w = SIMD16<UInt32>(truncatingIfNeeded: v) &<< 16
            UnsafeMutableRawPointer(d32 + i).storeBytes(of: w, as: SIMD16<UInt32>.self)
            i += 16
        }
        while i < n { d32[i] = UInt32(s[i]) << 16; i += 1 }
    }

    @inline(__always)
    static func f16ToFloat32(_ s: UnsafePointer<Float16>, _ d: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 16 <= n {
            let v = UnsafeRawPointer(s + i).loadUnaligned(as: SIMD16<Float16>.self)
            UnsafeMutableRawPointer(d + i).storeBytes(of: SIMD16<Float>(v), as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { d[i] = Float(s[i]); i += 1 }
    }

    @inline(__always)
    static func float32ToF16(_ s: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float16>, _ n: Int) {
        var i = 0
        while i + 16 <= n {
            let v = UnsafeRawPointer(s + i).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(d + i).storeBytes(of: SIMD16<Float16>(v), as: SIMD16<Float16>.self)
            i += 16
        }
        while i < n { d[i] = Float16(s[i]); i += 1 }
    }

    @inline(__always)
    static func float32ToBF16(_ s: UnsafePointer<Float>, _ d: UnsafeMutablePointer<UInt16>, _ n: Int) {
        // A plain branch-free loop: the compiler vectorizes it (9 GB/s here), while an explicit
        // SIMD16<UInt32> version with a truncating store was scalarized on AVX2 (0.5 GB/s).
        let s32 = UnsafeRawPointer(s).assumingMemoryBound(to: UInt32.self)
        for i in 0..<n {
            let u = s32[i]
            let rounded = (u &+ 0x7FFF &+ ((u &>> 16) & 1)) &>> 16
            let quiet = (u &>> 16) | 0x0040
            d[i] = UInt16(truncatingIfNeeded: (u & 0x7FFF_FFFF) > 0x7F80_0000 ? quiet : rounded)
        }
    }
}

extension Convert {
    /// Decodes `count` elements of `dtype` from `source` into f64 (exact for every type but large i64).
    public static func toFloat64(_ source: UnsafeRawBufferPointer, from dtype: DType, into out: UnsafeMutableBufferPointer<Double>) {
        let n = out.count
        precondition(source.count >= n * dtype.byteSize, "source too short")
        guard n > 0, let src = source.baseAddress, let dst = out.baseAddress else { return }
        switch dtype {
        case .f64: dst.update(from: src.assumingMemoryBound(to: Double.self), count: n)
        case .i64: widen(src.assumingMemoryBound(to: Int64.self), into: dst, n)
        case .i32: widen(src.assumingMemoryBound(to: Int32.self), into: dst, n)
        case .i16: widen(src.assumingMemoryBound(to: Int16.self), into: dst, n)
        case .i8: widen(src.assumingMemoryBound(to: Int8.self), into: dst, n)
        case .u8, .bool: widen(src.assumingMemoryBound(to: UInt8.self), into: dst, n)
        case .f32:
            let s = src.assumingMemoryBound(to: Float.self)
            for i in 0..<n { dst[i] = Double(s[i]) }
        case .bf16, .f16:
            // Exact in f32: decode in chunks through the vectorised f32 kernels.
            withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk) { tmp in
                var start = 0
                while start < n {
                    let m = min(chunk, n - start)
                    let part = UnsafeMutableBufferPointer(rebasing: tmp[0..<m])
                    toFloat32(UnsafeRawBufferPointer(rebasing: source[(start * dtype.byteSize)...]), from: dtype, into: part)
                    for i in 0..<m { dst[start + i] = Double(part[i]) }
                    start += m
                }
            }
        }
    }

    /// Encodes f64 values as `dtype`, rounding once to the nearest (ties to even) for the float types.
    ///
    /// PyTorch converts f64 to bf16/f16 through f32 and so rounds twice (1 + 2⁻⁸ + 2⁻⁴⁰ becomes 1 in bf16
    /// instead of 1 + 2⁻⁷); numpy rounds f64 to f16 once, as this does. Rounding to f32 with
    /// round-to-odd first keeps a single correct rounding, because f32 has more than two extra bits.
    public static func fromFloat64(_ source: UnsafeBufferPointer<Double>, to dtype: DType, into out: UnsafeMutableRawBufferPointer) {
        let n = source.count
        precondition(out.count >= n * dtype.byteSize, "destination too short")
        guard n > 0, let src = source.baseAddress, let dst = out.baseAddress else { return }
        switch dtype {
        case .f64: dst.assumingMemoryBound(to: Double.self).update(from: src, count: n)
        case .f32:
            let d = dst.assumingMemoryBound(to: Float.self)
            for i in 0..<n { d[i] = Float(src[i]) }
        case .i64: truncate(src, into: dst.assumingMemoryBound(to: Int64.self), n)
        case .i32: truncate(src, into: dst.assumingMemoryBound(to: Int32.self), n)
        case .i16: truncate(src, into: dst.assumingMemoryBound(to: Int16.self), n)
        case .i8: truncate(src, into: dst.assumingMemoryBound(to: Int8.self), n)
        case .u8: truncate(src, into: dst.assumingMemoryBound(to: UInt8.self), n)
        case .bool:
            let d = dst.assumingMemoryBound(to: UInt8.self)
            for i in 0..<n { d[i] = src[i] != 0 ? 1 : 0 }
        case .bf16, .f16:
            withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk) { tmp in
                var start = 0
                while start < n {
                    let m = min(chunk, n - start)
                    for i in 0..<m { tmp[i] = roundedToOdd(src[start + i]) }
                    let target = UnsafeMutableRawBufferPointer(rebasing: out[(start * dtype.byteSize)...])
                    fromFloat32(UnsafeBufferPointer(rebasing: tmp[0..<m]), to: dtype, into: target)
                    start += m
                }
            }
        }
    }

    /// Integers to f64 by value.
    @inline(__always)
    static func widen<I: BinaryInteger>(_ s: UnsafePointer<I>, into d: UnsafeMutablePointer<Double>, _ n: Int) {
        for i in 0..<n { d[i] = Double(s[i]) }
    }

    /// Integers from f64 by truncation toward zero; values out of the type's range become 0.
    @inline(__always)
    static func truncate<I: FixedWidthInteger>(_ s: UnsafePointer<Double>, into d: UnsafeMutablePointer<I>, _ n: Int) {
        for i in 0..<n { d[i] = I(exactly: s[i].rounded(.towardZero)) ?? 0 }
    }

    /// Elements per chunk of the f64 paths (a stack buffer, so converting never allocates a full copy).
    static let chunk = 4096

    /// `value` rounded to f32 toward zero, with the lowest bit set when that was inexact ("round to odd"),
    /// so a second rounding to a narrower type gives the correctly rounded result.
    @inline(__always)
    static func roundedToOdd(_ value: Double) -> Float {
        var f = Float(value)
        guard !f.isNaN, Double(f) != value else { return f }
        if abs(Double(f)) > abs(value) { f = f > 0 ? f.nextDown : f.nextUp }
        return Float(bitPattern: f.bitPattern | 1)
    }
}
