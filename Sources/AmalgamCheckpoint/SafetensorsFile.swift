import AmalgamCore

/// A safetensors file, memory-mapped. The layout (documented by the format, checked here as the
/// reference Rust crate checks it):
///
///     [8 bytes: N, little-endian u64][N bytes: JSON header, space padded][data]
///
/// The header maps each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` relative to
/// the start of the data, plus an optional `"__metadata__"` of string to string. Tensors cover the data
/// exactly, in offset order, without gaps or overlaps.
public final class SafetensorsFile: TensorSource, @unchecked Sendable {
    /// Largest header accepted, as in the reference implementation.
    public static let maximumHeaderSize = 100_000_000

    public let path: String
    public let metadata: [(key: String, value: String)]
    public let tensorInfos: [TensorInfo]
    /// Size of the header as stored (after the 8-byte length).
    public let headerSize: Int
    private let file: MappedFile
    private let offsets: [String: (info: TensorInfo, begin: Int)]

    /// Opens and validates `path`. Tensors are read lazily, without copying.
    public init(path: String) throws(CheckpointError) {
        self.path = path
        do { file = try MappedFile(path: path) } catch { throw .file(error) }
        guard file.count >= 8 else { throw .truncated(path: path, needed: 8, actual: file.count) }
        let head = file.bytes(offset: 0, count: 8)
        let n64 = head.loadUnaligned(as: UInt64.self).littleEndian
        guard n64 <= UInt64(Self.maximumHeaderSize) else {
            throw .headerTooLarge(path: path, size: n64 > UInt64(Int.max) ? Int.max : Int(n64), limit: Self.maximumHeaderSize)
        }
        let n = Int(n64)
        guard 8 + n <= file.count else { throw .headerOutsideFile(path: path, headerSize: n, fileSize: file.count) }
        headerSize = n
        let headerBytes = file.bytes(offset: 8, count: n)
        guard n > 0, headerBytes[0] == UInt8(ascii: "{") else {
            throw .invalidHeader(path: path, reason: "the header does not start with '{'; this is not a safetensors file")
        }
        let json: JSONValue
        do { json = try JSONValue.parse(headerBytes) } catch { throw .invalidHeader(path: path, reason: error.description) }
        guard case let .object(object) = json else { throw .invalidHeader(path: path, reason: "the header is not a JSON object") }

        var metadata: [(String, String)] = []
        var entries: [(info: TensorInfo, begin: Int, end: Int)] = []
        for (name, value) in object {
            if name == "__metadata__" {
                if value.isNull { continue }  // the Rust crate reads `null` as no metadata
                guard case let .object(meta) = value else {
                    throw .invalidHeader(path: path, reason: "__metadata__ must be an object of strings")
                }
                for (k, v) in meta {
                    guard let s = v.stringValue else {
                        throw .invalidHeader(path: path, reason: "__metadata__ value for '\(k)' is not a string")
                    }
                    metadata.append((k, s))
                }
                continue
            }
            entries.append(try Self.entry(name: name, value: value, path: path))
        }
        self.metadata = metadata

        // Offsets: sorted, contiguous from 0, covering the data exactly.
        let dataStart = 8 + n
        let dataSize = file.count - dataStart
        let sorted = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var position = 0
        var previous = ""
        for e in sorted {
            if e.begin < position { throw .overlappingTensors(path: path, first: previous, second: e.info.name) }
            if e.begin > position {
                throw .gapBetweenTensors(path: path, before: previous.isEmpty ? "(start of data)" : previous, after: e.info.name, gap: e.begin - position)
            }
            if e.end > dataSize { throw .offsetOutOfRange(path: path, tensor: e.info.name, end: e.end, dataSize: dataSize) }
            position = e.end
            previous = e.info.name
        }
        guard position == dataSize else { throw .dataNotCovered(path: path, used: position, dataSize: dataSize) }

        tensorInfos = sorted.map(\.info)
        var map: [String: (TensorInfo, Int)] = [:]
        map.reserveCapacity(sorted.count)
        for e in sorted { map[e.info.name] = (e.info, dataStart + e.begin) }
        offsets = map
    }

    private static func entry(name: String, value: JSONValue, path: String) throws(CheckpointError) -> (info: TensorInfo, begin: Int, end: Int) {
        guard case let .object(o) = value else { throw .badTensorInfo(path: path, tensor: name, reason: "entry is not an object") }
        guard let dtypeName = o["dtype"]?.stringValue else { throw .badTensorInfo(path: path, tensor: name, reason: "missing dtype") }
        guard let dtype = DType(rawValue: dtypeName) else { throw .unknownDType(path: path, tensor: name, dtype: dtypeName) }
        guard let shapeValues = o["shape"]?.arrayValue else { throw .badTensorInfo(path: path, tensor: name, reason: "missing shape") }
        var shape: [Int] = []
        var elements = 1
        for v in shapeValues {
            guard let d = v.intValue, d >= 0 else { throw .badTensorInfo(path: path, tensor: name, reason: "shape entries must be non-negative integers") }
            let (m, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw .badTensorInfo(path: path, tensor: name, reason: "shape \(shapeValues) overflows") }
            elements = m
            shape.append(d)
        }
        guard let offs = o["data_offsets"]?.arrayValue, offs.count == 2,
              let begin = offs[0].intValue, let end = offs[1].intValue, begin >= 0, end >= begin else {
            throw .badTensorInfo(path: path, tensor: name, reason: "data_offsets must be [begin, end] with 0 ≤ begin ≤ end")
        }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, bytes == end - begin else {
            throw .sizeMismatch(path: path, tensor: name, expected: overflow ? Int.max : bytes, actual: end - begin)
        }
        return (TensorInfo(name: name, dtype: dtype, shape: shape), begin, end)
    }

    public func info(_ name: String) -> TensorInfo? { offsets[name]?.info }

    public func tensor(_ name: String) throws(CheckpointError) -> Tensor {
        guard let (info, begin) = offsets[name] else { throw .tensorNotFound(path: path, tensor: name) }
        return Tensor(dtype: info.dtype, shape: info.shape, storage: TensorStorage(file: file, offset: begin, count: info.byteCount))
    }

    /// The absolute byte offset of a tensor's data in the file.
    public func dataOffset(_ name: String) -> Int? { offsets[name]?.begin }

    public func release(_ name: String) {
        guard let (info, begin) = offsets[name] else { return }
        file.doneReading(offset: begin, count: info.byteCount)
    }

    /// Asks the kernel to read a tensor ahead of use.
    public func prefetch(_ name: String) {
        guard let (info, begin) = offsets[name] else { return }
        file.willRead(offset: begin, count: info.byteCount)
    }
}
