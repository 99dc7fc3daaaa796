/// The type tag of a GGUF metadata value (`gguf_type`).
public enum GGUFValueType: UInt32, Sendable, Hashable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Bytes of a fixed-size value, nil for strings and arrays.
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }
}

/// One GGUF metadata value. Arrays keep their element type so an empty or written-back array keeps it too.
public indirect enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array(GGUFValueType, [GGUFValue])

    /// The type tag written before the value.
    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    /// The value as an integer, for any integer type.
    public var intValue: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return v <= UInt64(Int.max) ? Int(v) : nil
        case let .int64(v): return Int(v)
        default: return nil
        }
    }

    /// The value as a double, for any number type.
    public var doubleValue: Double? {
        switch self {
        case let .float32(v): return Double(v)
        case let .float64(v): return v
        default: return intValue.map(Double.init)
        }
    }

    public var stringValue: String? { if case let .string(s) = self { return s } else { return nil } }
    public var boolValue: Bool? { if case let .bool(b) = self { return b } else { return nil } }
    public var arrayValue: [GGUFValue]? { if case let .array(_, a) = self { return a } else { return nil } }

    /// A short human-readable rendering (arrays abbreviated), for `inspect`.
    public var summary: String {
        switch self {
        case let .string(s): return s.count > 80 ? String(s.prefix(77)) + "…" : s
        case let .bool(b): return b ? "true" : "false"
        case let .float32(f): return "\(f)"
        case let .float64(d): return "\(d)"
        case let .array(t, a):
            let head = a.prefix(4).map(\.summary).joined(separator: ", ")
            return "[\(t)×\(a.count)] [\(head)\(a.count > 4 ? ", …" : "")]"
        default: return intValue.map(String.init) ?? "\(self)"
        }
    }
}
