import AmalgamCore

/// A GGUF file (versions 2 and 3, little-endian), memory-mapped. The layout, as `gguf.h` documents it:
///
///     "GGUF" | u32 version | u64 tensor count | u64 key/value count
///     key/value pairs: string key, u32 value type, value (arrays: u32 element type, u64 count, elements)
///     tensor infos: string name, u32 n_dims, u64 ne[n_dims] (ne[0] varies fastest), u32 ggml type, u64 offset
///     padding to `general.alignment` (default 32), then the tensor data; offsets are relative to it
///
/// Strings are a u64 byte count and UTF-8 bytes. As a `TensorSource` it reports shapes in PyTorch order
/// (ne reversed) and quantized tensors as f32, dequantized when read; plain types are zero-copy views.
public final class GGUFFile: TensorSource, @unchecked Sendable {
    /// One tensor as the file describes it.
    public struct TensorEntry: Sendable, Equatable {
        public let name: String
        public let type: GGMLType
        /// Dimensions in ggml order: `ne[0]` is the fastest-varying one.
        public let ne: [Int]
        /// Offset from the start of the data section.
        public let offset: Int
        public let byteCount: Int
        public var elementCount: Int { ne.reduce(1, *) }
        /// The PyTorch-order shape.
        public var shape: [Int] { ne.reversed() }
    }

    public static let defaultAlignment = 32

    public let path: String
    public let version: UInt32
    /// Metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [TensorEntry]
    public let alignment: Int
    /// File offset of the data section.
    public let dataOffset: Int
    public let tensorInfos: [TensorInfo]
    private let file: MappedFile
    private let metadataIndex: [String: Int]
    private let tensorIndex: [String: Int]

    /// Opens and validates `path`: every count, length, offset and size is checked against the file.
    public init(path: String) throws(CheckpointError) {
        self.path = path
        do { file = try MappedFile(path: path) } catch { throw .file(error) }
        do throws(GGUFError) {
            var r = GGUFCursor(bytes: file.bytes(offset: 0, count: file.count), path: path)
            let magic = try r.bytes(4, what: "the magic number")
            guard magic == Array("GGUF".utf8) else { throw GGUFError.badMagic(path: path, found: magic) }
            version = try r.u32("the version")
            guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(path: path, version: version) }
            let tensorCount = try r.count("the tensor count", minimumBytesEach: 24)
            let kvCount = try r.count("the key/value count", minimumBytesEach: 13)

            var metadata: [(String, GGUFValue)] = []
            var metadataIndex: [String: Int] = [:]
            metadata.reserveCapacity(kvCount)
            for _ in 0..<kvCount {
                let key = try r.string("a metadata key")
                let rawType = try r.u32("the type of '\(key)'")
                guard let type = GGUFValueType(rawValue: rawType) else {
                    throw GGUFError.unknownValueType(path: path, key: key, type: rawType)
                }
                let value = try r.value(type, key: key, depth: 0)
                guard metadataIndex[key] == nil else { throw GGUFError.duplicateKey(path: path, key: key) }
                metadataIndex[key] = metadata.count
                metadata.append((key, value))
            }
            var alignment = Self.defaultAlignment
            if let i = metadataIndex["general.alignment"] {
                let v = metadata[i].1.intValue ?? 0
                guard v > 0, v & (v - 1) == 0 else { throw GGUFError.badAlignment(path: path, value: v) }
                alignment = v
            }

            var entries: [TensorEntry] = []
            var tensorIndex: [String: Int] = [:]
            entries.reserveCapacity(tensorCount)
            for _ in 0..<tensorCount {
                let name = try r.string("a tensor name")
                let nDims = try r.u32("the dimension count of '\(name)'")
                guard (1...4).contains(nDims) else {
                    throw GGUFError.badTensorShape(path: path, tensor: name, reason: "\(nDims) dimensions (ggml allows 1 to 4)")
                }
                var ne: [Int] = []
                var elements = 1
                for _ in 0..<nDims {
                    let d = try r.u64("a dimension of '\(name)'")
                    guard d <= UInt64(Int32.max) * 64 else {
                        throw GGUFError.badTensorShape(path: path, tensor: name, reason: "dimension \(d) is absurd")
                    }
                    let (product, overflow) = elements.multipliedReportingOverflow(by: Int(d))
                    guard !overflow else { throw GGUFError.badTensorShape(path: path, tensor: name, reason: "element count overflows") }
                    elements = product
                    ne.append(Int(d))
                }
                let rawType = try r.u32("the type of '\(name)'")
                guard let type = GGMLType(rawValue: rawType) else {
                    throw GGUFError.unknownTensorType(path: path, tensor: name, type: rawType)
                }
                let offset = try r.u64("the offset of '\(name)'")
                let block = type.blockLayout.elements
                guard ne[0] % block == 0 else {
                    throw GGUFError.badTensorShape(path: path, tensor: name, reason: "ne[0] = \(ne[0]) is not a multiple of the \(type.name) block size \(block)")
                }
                guard offset <= UInt64(file.count) else {
                    throw GGUFError.offsetOutOfRange(path: path, tensor: name, begin: Int.max, end: Int.max, fileSize: file.count)
                }
                guard Int(offset) % alignment == 0 else {
                    throw GGUFError.misalignedTensor(path: path, tensor: name, offset: Int(offset), alignment: alignment)
                }
                guard tensorIndex[name] == nil else { throw GGUFError.duplicateTensor(path: path, tensor: name) }
                tensorIndex[name] = entries.count
                entries.append(TensorEntry(name: name, type: type, ne: ne, offset: Int(offset),
                                           byteCount: type.byteCount(elements: elements)))
            }
            let dataOffset = (r.position + alignment - 1) / alignment * alignment
            for e in entries {
                let begin = dataOffset + e.offset
                let (end, overflow) = begin.addingReportingOverflow(e.byteCount)
                guard !overflow, end <= file.count else {
                    throw GGUFError.offsetOutOfRange(path: path, tensor: e.name, begin: begin, end: overflow ? Int.max : end, fileSize: file.count)
                }
            }
            self.metadata = metadata
            self.metadataIndex = metadataIndex
            self.tensors = entries
            self.tensorIndex = tensorIndex
            self.alignment = alignment
            self.dataOffset = dataOffset
            tensorInfos = entries.map { TensorInfo(name: $0.name, dtype: $0.type.plainDType ?? .f32, shape: $0.shape) }
        } catch {
            throw .gguf(error)
        }
    }

    /// The metadata value of `key`, if present.
    public subscript(key: String) -> GGUFValue? { metadataIndex[key].map { metadata[$0].value } }

    /// The metadata entries whose values are strings, in file order.
    public var stringMetadata: [(key: String, value: String)] {
        metadata.compactMap { entry in entry.value.stringValue.map { (entry.key, $0) } }
    }

    /// The entry of tensor `name`, if present.
    public func entry(_ name: String) -> TensorEntry? { tensorIndex[name].map { tensors[$0] } }

    public func info(_ name: String) -> TensorInfo? { tensorIndex[name].map { tensorInfos[$0] } }

    /// The stored bytes of a tensor (quantized blocks as they are).
    public func rawBytes(_ entry: TensorEntry) -> UnsafeRawBufferPointer {
        file.bytes(offset: dataOffset + entry.offset, count: entry.byteCount)
    }

    /// The stored bytes of a tensor as tensor storage (a view that keeps the mapping alive).
    public func storage(_ entry: TensorEntry) -> TensorStorage {
        TensorStorage(file: file, offset: dataOffset + entry.offset, count: entry.byteCount)
    }

    /// The tensor in PyTorch shape: a view for plain types, dequantized to f32 for block types.
    public func tensor(_ name: String) throws(CheckpointError) -> Tensor {
        guard let e = entry(name) else { throw .tensorNotFound(path: path, tensor: name) }
        if let dtype = e.type.plainDType {
            return Tensor(dtype: dtype, shape: e.shape,
                          storage: TensorStorage(file: file, offset: dataOffset + e.offset, count: e.byteCount))
        }
        guard e.type.canDequantize else { throw .gguf(.cannotDequantize(path: path, tensor: name, type: e.type.name)) }
        let out = Tensor(zeros: .f32, shape: e.shape)
        let dst = UnsafeMutableBufferPointer(start: out.storage.mutableBase!.assumingMemoryBound(to: Float.self), count: e.elementCount)
        e.type.dequantize(rawBytes(e), into: dst)
        return out
    }

    public func release(_ name: String) {
        guard let e = entry(name) else { return }
        file.doneReading(offset: dataOffset + e.offset, count: e.byteCount)
    }
}

/// A bounds-checked little-endian reader over the header bytes.
struct GGUFCursor {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var position = 0

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    var remaining: Int { bytes.count - position }

    mutating func need(_ n: Int, _ what: String) throws(GGUFError) {
        guard n <= remaining else { throw .truncated(path: path, what: what, needed: n, actual: remaining) }
    }

    mutating func load<T: FixedWidthInteger>(_: T.Type, _ what: String) throws(GGUFError) -> T {
        try need(MemoryLayout<T>.size, what)
        let v = bytes.loadUnaligned(fromByteOffset: position, as: T.self)
        position += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    mutating func u32(_ what: String) throws(GGUFError) -> UInt32 { try load(UInt32.self, what) }
    mutating func u64(_ what: String) throws(GGUFError) -> UInt64 { try load(UInt64.self, what) }

    mutating func bytes(_ n: Int, what: String) throws(GGUFError) -> [UInt8] {
        try need(n, what)
        defer { position += n }
        return Array(UnsafeRawBufferPointer(rebasing: bytes[position..<position + n]))
    }

    /// A count of items that each take at least `minimumBytesEach` bytes; more than the file could hold is an error.
    mutating func count(_ what: String, minimumBytesEach: Int) throws(GGUFError) -> Int {
        let n = try u64(what)
        let limit = UInt64(remaining / max(minimumBytesEach, 1))
        guard n <= limit else { throw .absurdCount(path: path, what: what, count: n, limit: limit) }
        return Int(n)
    }

    mutating func string(_ what: String) throws(GGUFError) -> String {
        let n = try u64("the length of \(what)")
        guard n <= UInt64(remaining) else {
            throw .truncated(path: path, what: what, needed: n > UInt64(Int.max) ? Int.max : Int(n), actual: remaining)
        }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<position + Int(n)]), as: UTF8.self)
        position += Int(n)
        return s
    }

    mutating func value(_ type: GGUFValueType, key: String, depth: Int) throws(GGUFError) -> GGUFValue {
        let what = "the value of '\(key)'"
        switch type {
        case .uint8: return .uint8(try load(UInt8.self, what))
        case .int8: return .int8(try load(Int8.self, what))
        case .uint16: return .uint16(try load(UInt16.self, what))
        case .int16: return .int16(try load(Int16.self, what))
        case .uint32: return .uint32(try load(UInt32.self, what))
        case .int32: return .int32(try load(Int32.self, what))
        case .uint64: return .uint64(try load(UInt64.self, what))
        case .int64: return .int64(try load(Int64.self, what))
        case .float32: return .float32(Float(bitPattern: try load(UInt32.self, what)))
        case .float64: return .float64(Double(bitPattern: try load(UInt64.self, what)))
        case .bool: return .bool(try load(UInt8.self, what) != 0)
        case .string: return .string(try string(what))
        case .array:
            guard depth < 8 else { throw .absurdCount(path: path, what: "array nesting of '\(key)'", count: UInt64(depth), limit: 8) }
            let rawType = try u32("the element type of '\(key)'")
            guard let elementType = GGUFValueType(rawValue: rawType) else {
                throw .unknownValueType(path: path, key: key, type: rawType)
            }
            // Strings take at least 8 bytes, nested arrays 12.
            let minimum = elementType.fixedSize ?? (elementType == .string ? 8 : 12)
            let n = try count("the element count of '\(key)'", minimumBytesEach: minimum)
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(elementType, key: key, depth: depth + 1)) }
            return .array(elementType, items)
        }
    }
}
