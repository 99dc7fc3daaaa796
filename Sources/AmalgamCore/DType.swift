/// Element types of tensors, named as safetensors names them.
public enum DType: String, CaseIterable, Sendable, Hashable {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case i16 = "I16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8: return 1
        case .i16, .f16, .bf16: return 2
        case .i32, .f32: return 4
        case .f64, .i64: return 8
        }
    }

    /// True for the types merges compute on (everything else passes through unchanged).
    public var isFloatingPoint: Bool {
        switch self {
        case .f16, .bf16, .f32, .f64: return true
        default: return false
        }
    }

    /// Position in the Rust `safetensors` crate's `Dtype` enum, whose derived order decides
    /// where a tensor goes in a written file (descending by this rank, then by name).
    public var safetensorsRank: Int {
        switch self {
        case .bool: return 0
        case .u8: return 1
        case .i8: return 2
        case .i16: return 5
        case .f16: return 7
        case .bf16: return 8
        case .i32: return 9
        case .f32: return 11
        case .f64: return 12
        case .i64: return 13
        }
    }

    /// The dtype for a PyTorch/mergekit name such as `bfloat16`, `float16`, `float32`.
    public init?(torchName: String) {
        switch torchName.lowercased() {
        case "bfloat16", "bf16": self = .bf16
        case "float16", "half", "fp16", "f16": self = .f16
        case "float32", "float", "fp32", "f32": self = .f32
        case "float64", "double", "f64": self = .f64
        case "int64", "long": self = .i64
        case "int32", "int": self = .i32
        case "int16": self = .i16
        case "int8": self = .i8
        case "uint8": self = .u8
        case "bool": self = .bool
        default: return nil
        }
    }

    /// The PyTorch spelling, used in `config.json` (`torch_dtype`).
    public var torchName: String {
        switch self {
        case .bf16: return "bfloat16"
        case .f16: return "float16"
        case .f32: return "float32"
        case .f64: return "float64"
        case .i64: return "int64"
        case .i32: return "int32"
        case .i16: return "int16"
        case .i8: return "int8"
        case .u8: return "uint8"
        case .bool: return "bool"
        }
    }
}

/// bfloat16 as a bit pattern: Swift has no `BFloat16` on Linux.
public enum BFloat16 {
    /// f32 -> bf16 bits, round to nearest even as PyTorch does; NaN stays a quiet NaN.
    @inlinable @inline(__always)
    public static func bits(from value: Float) -> UInt16 {
        let u = value.bitPattern
        if (u & 0x7FFF_FFFF) > 0x7F80_0000 { return UInt16(truncatingIfNeeded: (u >> 16) | 0x0040) }
        return UInt16(truncatingIfNeeded: (u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16)
    }

    /// bf16 bits -> f32 (exact).
    @inlinable @inline(__always)
    public static func float(fromBits bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// The value rounded to bf16 and back.
    @inlinable
    public static func round(_ value: Float) -> Float { float(fromBits: bits(from: value)) }
}
