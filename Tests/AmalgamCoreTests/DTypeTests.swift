import AmalgamCore
import AmalgamTestSupport
import Testing

struct DTypeTests {
    /// The order the Rust safetensors crate puts dtypes in a file (measured by the fixture script) is
    /// descending `safetensorsRank`.
    @Test func safetensorsRankMatchesTheCrate() throws {
        let values = try JSONValue.parse(try fixtureBytes("safetensors/values.json"))
        let order = values["dtype_file_order"]!.arrayValue!.map { DType(rawValue: $0.stringValue!)! }
        #expect(order.count == DType.allCases.count)
        #expect(order == DType.allCases.sorted { $0.safetensorsRank > $1.safetensorsRank })
    }

    @Test func sizesAndTorchNames() {
        for d in DType.allCases {
            #expect(DType(torchName: d.torchName) == d)
        }
        #expect(DType(torchName: "BFloat16") == .bf16)
        #expect(DType(torchName: "complex64") == nil)
        #expect(DType.allCases.map(\.byteSize) == [1, 1, 1, 2, 2, 2, 4, 4, 8, 8])
        #expect(DType.allCases.filter(\.isFloatingPoint) == [.f16, .bf16, .f32, .f64])
    }
}
