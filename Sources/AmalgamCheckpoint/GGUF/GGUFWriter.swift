import AmalgamCore
import Foundation

/// Writes a GGUF file (version 3, little-endian) in the layout gguf-py's `GGUFWriter` produces: header,
/// key/values in the order given, tensor infos, zero padding to the alignment, then each tensor's bytes
/// padded to the alignment. Tensor data is streamed one tensor at a time; the file appears under its
/// name only when complete.
public final class GGUFWriter {
    /// One tensor to write: its GGUF name, type, ggml-order dimensions, and a producer of its bytes.
    public struct Entry {
        public let name: String
        public let type: GGMLType
        public let ne: [Int]
        public let produce: () throws(CheckpointError) -> [UInt8]

        public init(name: String, type: GGMLType, ne: [Int], produce: @escaping () throws(CheckpointError) -> [UInt8]) {
            self.name = name
            self.type = type
            self.ne = ne
            self.produce = produce
        }

        public var byteCount: Int { type.byteCount(elements: ne.reduce(1, *)) }
    }

    public let path: String
    public let alignment: Int

    public init(path: String, alignment: Int = GGUFFile.defaultAlignment) {
        self.path = path
        self.alignment = alignment
    }

    /// Writes `metadata` and `tensors` to the file, through a temporary name (an `AtomicOutput`): an
    /// existing file is replaced only with `overwrite`; a full disk is `noSpace` naming the file, and
    /// nothing is left behind.
    public func write(metadata: [(key: String, value: GGUFValue)], tensors: [Entry], overwrite: Bool = true) throws(CheckpointError) {
        var header: [UInt8] = []
        header += Array("GGUF".utf8)
        append(UInt32(3), to: &header)
        append(UInt64(tensors.count), to: &header)
        append(UInt64(metadata.count), to: &header)
        for (key, value) in metadata {
            appendString(key, to: &header)
            append(value.type.rawValue, to: &header)
            appendValue(value, to: &header)
        }
        var offset = 0
        for t in tensors {
            guard (1...4).contains(t.ne.count), t.ne[0] % t.type.blockLayout.elements == 0 else {
                throw .gguf(.cannotQuantize(tensor: t.name, type: t.type.name, reason: "shape \(t.ne) does not fit its blocks of \(t.type.blockLayout.elements)"))
            }
            appendString(t.name, to: &header)
            append(UInt32(t.ne.count), to: &header)
            for d in t.ne { append(UInt64(d), to: &header) }
            append(t.type.rawValue, to: &header)
            append(UInt64(offset), to: &header)
            offset += padded(t.byteCount)
        }
        header += [UInt8](repeating: 0, count: padded(header.count) - header.count)

        let total = header.count + offset
        let out: AtomicOutput
        do { out = try AtomicOutput(path: path, overwrite: overwrite, kind: .file) } catch { throw .file(error) }
        do throws(CheckpointError) {
            let fd = open(out.workingPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw .file(.writing(path, errno: errno, needed: total)) }
            defer { close(fd) }
            func put(_ bytes: [UInt8]) throws(CheckpointError) {
                var failure: Int32 = 0
                bytes.withUnsafeBytes { b in
                    var done = 0
                    while done < b.count {
                        let n = Foundation.write(fd, b.baseAddress! + done, b.count - done)
                        if n < 0 && errno == EINTR { continue }
                        if n <= 0 { failure = n < 0 ? errno : ENOSPC; return }
                        done += n
                    }
                }
                guard failure == 0 else { throw .file(.writing(path, errno: failure, needed: total)) }
            }
            try put(header)
            for t in tensors {
                let bytes = try t.produce()
                guard bytes.count == t.byteCount else {
                    throw .unexpectedTensor(path: path, tensor: t.name, reason: "produced \(bytes.count) bytes, expected \(t.byteCount)")
                }
                try put(bytes)
                try put([UInt8](repeating: 0, count: padded(bytes.count) - bytes.count))
            }
            guard fsync(fd) == 0 else { throw .file(.writing(path, errno: errno, needed: total)) }
            do { try out.commit() } catch { throw .file(error) }
        } catch {
            out.abandon()
            // Measured once the partial file is gone: the space a new attempt would have.
            if case let .file(.noSpace(p, needed, _)) = error { throw .file(.noSpace(path: p, needed: needed, free: freeBytes(near: p))) }
            throw error
        }
    }

    private func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    private func append<T: FixedWidthInteger>(_ v: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out += $0 }
    }

    private func appendString(_ s: String, to out: inout [UInt8]) {
        let utf8 = Array(s.utf8)
        append(UInt64(utf8.count), to: &out)
        out += utf8
    }

    private func appendValue(_ value: GGUFValue, to out: inout [UInt8]) {
        switch value {
        case let .uint8(v): append(v, to: &out)
        case let .int8(v): append(v, to: &out)
        case let .uint16(v): append(v, to: &out)
        case let .int16(v): append(v, to: &out)
        case let .uint32(v): append(v, to: &out)
        case let .int32(v): append(v, to: &out)
        case let .uint64(v): append(v, to: &out)
        case let .int64(v): append(v, to: &out)
        case let .float32(v): append(v.bitPattern, to: &out)
        case let .float64(v): append(v.bitPattern, to: &out)
        case let .bool(v): out.append(v ? 1 : 0)
        case let .string(s): appendString(s, to: &out)
        case let .array(type, items):
            append(type.rawValue, to: &out)
            append(UInt64(items.count), to: &out)
            for item in items { appendValue(item, to: &out) }
        }
    }
}
