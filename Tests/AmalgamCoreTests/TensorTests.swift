import AmalgamCore
import Testing

struct TensorTests {
    @Test func shapesStridesAndScalars() {
        let t = Tensor(zeros: .bf16, shape: [2, 3, 4])
        #expect(t.strides == [12, 4, 1])
        #expect(t.byteCount == 48)
        let scalar = Tensor([2.5], shape: [])
        #expect(scalar.elementCount == 1 && scalar.rank == 0 && scalar.strides == [])
        let empty = Tensor(zeros: .f32, shape: [3, 0])
        #expect(empty.elementCount == 0 && empty.byteCount == 0 && empty.floats() == [])
        #expect(empty.converted(to: .bf16).byteCount == 0)
        #expect(t.reshaped([6, 4]).strides == [4, 1])
    }

    /// `converted(to:)` from f64 rounds once (the fixture's exact-arithmetic reference), not through f32.
    @Test func f64ToBF16AndF16RoundOnce() throws {
        let fixture = try referenceTensors("safetensors/conversions.safetensors")
        let input = fixture["f64_in"]!
        let count = input.bytes.count / 8
        let t = Tensor(zeros: .f64, shape: [count])
        input.bytes.withUnsafeBytes { t.storage.mutableBase!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let bf16 = words(t.converted(to: .bf16).byteArray, as: UInt16.self)
        #expect(bf16 == words(fixture["f64_to_bf16_exact"]!.bytes, as: UInt16.self))
        let f16 = words(t.converted(to: .f16).byteArray, as: UInt16.self)
        #expect(f16 == words(fixture["f64_to_f16_numpy"]!.bytes, as: UInt16.self))
    }

    /// bf16 -> f16 (neither side f32) matches PyTorch, which goes through f32 exactly here; more than
    /// one chunk of the internal conversion buffer.
    @Test func bf16ToF16MatchesTheF32Route() throws {
        let fixture = try referenceTensors("safetensors/conversions.safetensors")
        let source = fixture["every_bf16"]!.bytes
        let t = Tensor(zeros: .bf16, shape: [source.count / 2])
        source.withUnsafeBytes { t.storage.mutableBase!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let direct = words(t.converted(to: .f16).byteArray, as: UInt16.self)
        let viaF32 = words(t.converted(to: .f32).converted(to: .f16).byteArray, as: UInt16.self)
        // A NaN may carry another payload on the two routes, but must stay a NaN on both.
        let differ = direct.indices.filter {
            direct[$0] != viaF32[$0] && !(Float16(bitPattern: direct[$0]).isNaN && Float16(bitPattern: viaF32[$0]).isNaN)
        }
        #expect(differ.isEmpty, "\(differ.prefix(8).map { (source[2 * $0], source[2 * $0 + 1], direct[$0], viaF32[$0]) })")
    }

    @Test func integersConvertByValue() {
        let big = Tensor(zeros: .i32, shape: [3])
        let p = big.storage.mutableBase!.assumingMemoryBound(to: Int32.self)
        p[0] = .max; p[1] = .min; p[2] = -7
        let asDouble = big.converted(to: .f64)
        #expect(asDouble.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) } == [2147483647, -2147483648, -7])
        #expect(asDouble.converted(to: .i32).withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) } == [.max, .min, -7])
        let floats = Tensor([1.9, -1.9, 300, 0.4], shape: [4])
        #expect(floats.converted(to: .i8).byteArray.map { Int8(bitPattern: $0) } == [1, -1, 0, 0])
        #expect(floats.converted(to: .bool).byteArray == [1, 1, 1, 1])
        #expect(floats.converted(to: .i16).floats() == [1, -1, 300, 0])
    }

    @Test func convertingToTheSameTypeSharesStorage() {
        let t = Tensor([1, 2, 3], shape: [3])
        #expect(t.converted(to: .f32).storage === t.storage)
        #expect(t.converted(to: .bf16).converted(to: .f32).floats() == [1, 2, 3])
    }
}
