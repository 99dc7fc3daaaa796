import AmalgamCore
import Testing

/// Conversions against what PyTorch computes (fixtures/safetensors/conversions.safetensors, written by
/// scripts/fixtures/make_safetensors_fixtures.py): round-to-nearest-even ties, NaN, ±inf, subnormals,
/// overflow, and lengths that are not a multiple of 16 so the SIMD loop and the scalar tail both run.
struct ConvertTests {
    let fixture: [String: (dtype: DType, shape: [Int], bytes: [UInt8])]
    init() throws { fixture = try referenceTensors("safetensors/conversions.safetensors") }

    var inputs: [Float] { words(fixture["f32_in"]!.bytes, as: UInt32.self).map(Float.init(bitPattern:)) }
    var doubles: [Double] { words(fixture["f64_in"]!.bytes, as: UInt64.self).map(Double.init(bitPattern:)) }

    func encode(_ values: [Float], _ dtype: DType) -> [UInt16] {
        var out = [UInt16](repeating: 0xDEAD, count: values.count)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBytes { Convert.fromFloat32(src, to: dtype, into: $0) }
        }
        return out
    }

    func encode64(_ values: [Double], _ dtype: DType) -> [UInt16] {
        var out = [UInt16](repeating: 0xDEAD, count: values.count)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBytes { Convert.fromFloat64(src, to: dtype, into: $0) }
        }
        return out
    }

    @Test func inputsCoverTheSIMDLoopAndTheScalarTail() {
        #expect(inputs.count % 16 != 0)
        #expect(inputs.count > 1000)
    }

    @Test(arguments: [DType.bf16, .f16])
    func f32ToHalfMatchesTorchBitForBit(dtype: DType) {
        let expected = words(fixture[dtype == .bf16 ? "f32_to_bf16" : "f32_to_f16"]!.bytes, as: UInt16.self)
        let x = inputs
        // The whole array, then from offset 3: unaligned loads, another SIMD/tail split.
        for start in [0, 3] {
            let got = encode(Array(x[start...]), dtype)
            var mismatches: [String] = []
            for i in start..<x.count {
                let g = got[i - start], e = expected[i]
                if x[i].isNaN {
                    // PyTorch's NaN payload depends on its code path (0x7FC0 scalar, 0xFFFF vectorised
                    // for bf16); only NaN-ness is specified.
                    let isNaN = dtype == .bf16 ? BFloat16.float(fromBits: g).isNaN : Float16(bitPattern: g).isNaN
                    if !isNaN { mismatches.append("NaN -> \(g)") }
                } else if g != e {
                    mismatches.append("\(x[i]) (0x\(String(x[i].bitPattern, radix: 16))): got 0x\(String(g, radix: 16)), torch 0x\(String(e, radix: 16))")
                }
            }
            #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(5))")
        }
    }

    @Test func scalarBF16MatchesTheKernel() {
        let x = inputs
        let kernel = encode(x, .bf16)
        let differ = x.indices.filter { !x[$0].isNaN && BFloat16.bits(from: x[$0]) != kernel[$0] }
        #expect(differ.isEmpty)
        #expect(BFloat16.bits(from: 1.0) == 0x3F80)
        #expect(BFloat16.round(1.00390625) == 1.0)  // exact tie, even kept bit: rounds down
        #expect(BFloat16.round(1.01171875) == 1.015625)  // exact tie, odd kept bit: rounds up
    }

    @Test(arguments: [DType.bf16, .f16])
    func everyHalfPatternDecodesLikeTorch(dtype: DType) {
        let name = dtype == .bf16 ? "every_bf16" : "every_f16"
        let source = fixture[name]!.bytes
        let expected = words(fixture[name + "_to_f32"]!.bytes, as: UInt32.self)
        for count in [65536, 65536 - 7] {
            var out = [Float](repeating: 0, count: count)
            source.withUnsafeBytes { src in
                out.withUnsafeMutableBufferPointer { Convert.toFloat32(src, from: dtype, into: $0) }
            }
            let bad = (0..<count).filter {
                out[$0].bitPattern != expected[$0] && !(out[$0].isNaN && Float(bitPattern: expected[$0]).isNaN)
            }
            #expect(bad.isEmpty, "\(bad.count) patterns differ, first: \(bad.prefix(5).map { String($0, radix: 16) })")
        }
    }

    @Test func f64ToF32MatchesTorch() {
        let x = doubles
        let expected = words(fixture["f64_to_f32"]!.bytes, as: UInt32.self)
        var out = [UInt32](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { src in out.withUnsafeMutableBytes { Convert.fromFloat64(src, to: .f32, into: $0) } }
        #expect(out == expected)
    }

    /// f64 -> f16 rounds once, as numpy does (PyTorch goes through f32 and rounds twice).
    @Test func f64ToF16RoundsOnceLikeNumpy() {
        let numpy = words(fixture["f64_to_f16_numpy"]!.bytes, as: UInt16.self)
        let torch = words(fixture["f64_to_f16_torch"]!.bytes, as: UInt16.self)
        #expect(encode64(doubles, .f16) == numpy)
        // The fixture holds values where rounding twice differs, so this test tells the two apart.
        #expect(numpy != torch)
    }

    /// f64 -> bf16 rounds once (reference: the nearest bf16 found with exact rational arithmetic).
    @Test func f64ToBF16RoundsOnce() {
        let x = doubles
        let exact = words(fixture["f64_to_bf16_exact"]!.bytes, as: UInt16.self)
        let torch = words(fixture["f64_to_bf16_torch"]!.bytes, as: UInt16.self)
        let out = encode64(x, .bf16)
        let bad = x.indices.filter { out[$0] != exact[$0] }
        #expect(bad.isEmpty, "\(bad.map { "\(x[$0]): got \(out[$0]) want \(exact[$0])" }.prefix(5))")
        #expect(exact != torch)
    }
}
