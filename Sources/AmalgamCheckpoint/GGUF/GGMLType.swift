import AmalgamCore

/// The element or block type of a GGUF tensor (ggml's `ggml_type`), with ggml's numbering.
public enum GGMLType: UInt32, Sendable, CaseIterable, Hashable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_XXS = 16, iq2_XS = 17, iq3_XXS = 18, iq1_S = 19, iq4_NL = 20, iq3_S = 21, iq2_S = 22, iq4_XS = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_M = 29, bf16 = 30
    case tq1_0 = 34, tq2_0 = 35, mxfp4 = 39, nvfp4 = 40, q1_0 = 41, q2_0 = 42

    /// ggml's spelling (`Q4_K`, `BF16`).
    public var name: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        case .f64: return "F64"
        case .i8: return "I8"
        case .i16: return "I16"
        case .i32: return "I32"
        case .i64: return "I64"
        case .mxfp4: return "MXFP4"
        case .nvfp4: return "NVFP4"
        default: return "\(self)".uppercased()
        }
    }

    /// The type named `name` (case-insensitive: `q8_0`, `BF16`).
    public init?(name: String) {
        guard let t = GGMLType.allCases.first(where: { $0.name.lowercased() == name.lowercased() }) else { return nil }
        self = t
    }

    /// Elements per block and bytes per block (as gguf's `GGML_QUANT_SIZES`).
    public var blockLayout: (elements: Int, bytes: Int) {
        let k = 256
        switch self {
        case .f32: return (1, 4)
        case .f16, .bf16: return (1, 2)
        case .q4_0: return (32, 18)
        case .q4_1: return (32, 20)
        case .q5_0: return (32, 22)
        case .q5_1: return (32, 24)
        case .q8_0: return (32, 34)
        case .q8_1: return (32, 40)
        case .q2_K: return (k, 2 + 2 + k / 16 + k / 4)
        case .q3_K: return (k, 2 + k / 4 + k / 8 + 12)
        case .q4_K: return (k, 2 + 2 + k / 2 + 12)
        case .q5_K: return (k, 2 + 2 + k / 2 + k / 8 + 12)
        case .q6_K: return (k, 2 + k / 2 + k / 4 + k / 16)
        case .q8_K: return (k, 4 + k + k / 8)
        case .iq2_XXS: return (k, 2 + k / 4)
        case .iq2_XS: return (k, 2 + k / 4 + k / 32)
        case .iq3_XXS: return (k, 2 + k / 4 + k / 8)
        case .iq1_S: return (k, 2 + k / 8 + k / 16)
        case .iq4_NL: return (32, 18)
        case .iq3_S: return (k, 2 + k / 4 + k / 8 + k / 32 + 4)
        case .iq2_S: return (k, 2 + k / 4 + k / 16)
        case .iq4_XS: return (k, 2 + 2 + k / 2 + k / 64)
        case .i8: return (1, 1)
        case .i16: return (1, 2)
        case .i32: return (1, 4)
        case .i64, .f64: return (1, 8)
        case .iq1_M: return (k, k / 8 + k / 16 + k / 32)
        case .tq1_0: return (k, 2 + 4 * 13)
        case .tq2_0: return (k, 2 + 64)
        case .mxfp4: return (32, 17)
        case .nvfp4: return (64, 64 / 16 + 64 / 2)
        case .q1_0: return (128, 2 + 128 / 8)
        case .q2_0: return (64, 2 + 64 / 4)
        }
    }

    /// The plain element type this is stored as, or nil for a block-quantized type.
    public var plainDType: DType? {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .f64: return .f64
        case .i8: return .i8
        case .i16: return .i16
        case .i32: return .i32
        case .i64: return .i64
        default: return nil
        }
    }

    /// The GGUF type that stores `dtype` unchanged, if any.
    public init?(plain dtype: DType) {
        switch dtype {
        case .f32: self = .f32
        case .f16: self = .f16
        case .bf16: self = .bf16
        case .f64: self = .f64
        case .i8: self = .i8
        case .i16: self = .i16
        case .i32: self = .i32
        case .i64: self = .i64
        default: return nil
        }
    }

    /// Bytes that `elements` values take (`elements` must be a multiple of the block size).
    public func byteCount(elements: Int) -> Int {
        let (e, b) = blockLayout
        return elements / e * b
    }
}
