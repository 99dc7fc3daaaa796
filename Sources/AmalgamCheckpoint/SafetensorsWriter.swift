import AmalgamCore
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Where each tensor goes in a safetensors file, decided before any data is written, exactly as the
/// reference `safetensors` library decides it: tensors sorted by dtype (the Rust crate's enum order,
/// descending) then by name, packed from offset 0, the compact JSON header padded with spaces to a
/// multiple of 8 bytes.
public struct SafetensorsLayout: Sendable {
    public struct Entry: Sendable {
        public let info: TensorInfo
        /// Absolute offset in the file.
        public let fileOffset: Int
    }

    public let entries: [Entry]
    public let header: [UInt8]
    public let fileSize: Int
    private let index: [String: Int]

    public init(tensors: [TensorInfo], metadata: [(key: String, value: String)]? = [("format", "pt")]) throws(CheckpointError) {
        var seen = Set<String>()
        for t in tensors where !seen.insert(t.name).inserted { throw .duplicateTensor(path: "(output)", tensor: t.name) }
        let sorted = tensors.sorted {
            $0.dtype.safetensorsRank != $1.dtype.safetensorsRank
                ? $0.dtype.safetensorsRank > $1.dtype.safetensorsRank
                : Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8))
        }
        var object = JSONObject()
        if let metadata {
            var meta = JSONObject()
            for (k, v) in metadata { meta[k] = .string(v) }
            object["__metadata__"] = .object(meta)
        }
        var offset = 0
        var relative: [Int] = []
        for t in sorted {
            object[t.name] = .object(JSONObject([
                ("dtype", .string(t.dtype.rawValue)),
                ("shape", .array(t.shape.map { .int($0) })),
                ("data_offsets", .array([.int(offset), .int(offset + t.byteCount)])),
            ]))
            relative.append(offset)
            offset += t.byteCount
        }
        var headerBytes = Array(JSONValue.object(object).compactText().utf8)
        headerBytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - headerBytes.count % 8) % 8))
        var full = withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { Array($0) }
        full.append(contentsOf: headerBytes)
        header = full
        let dataStart = full.count
        entries = zip(sorted, relative).map { Entry(info: $0, fileOffset: dataStart + $1) }
        fileSize = dataStart + offset
        index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.info.name, $0) })
    }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }
}

/// Writes one safetensors file whose layout is fixed up front; tensors may arrive in any order
/// (each goes to its place with `pwrite`), so a merge can stream them as it produces them.
public final class SafetensorsWriter: @unchecked Sendable {
    public let path: String
    public let layout: SafetensorsLayout
    /// `machine`: the file is flushed to disk by `finish` (and written back in the background as it
    /// grows); `process`: nothing waits for the disk.
    public let durability: Durability
    private let fd: Int32
    private var written: Set<String> = []
    private var partBytes: [String: Int] = [:]
    private let lock = Lock()
    /// Bytes written since the kernel was last asked to start writing the file back.
    private var unflushed = 0
    private var writebackPending = false
    /// Dirty bytes after which write-back to disk is started in the background, so the disk works while
    /// the merge computes and `finish`'s fsync finds little left to write.
    static let writebackInterval = 16 << 20

    /// Creates (or truncates) `path` and writes the header.
    public init(path: String, layout: SafetensorsLayout, durability: Durability = .machine) throws(CheckpointError) {
        self.path = path
        self.layout = layout
        self.durability = durability
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .file(.writing(path, errno: errno, needed: layout.fileSize)) }
        guard ftruncate(fd, off_t(layout.fileSize)) == 0 else {
            let code = errno
            close(fd)
            throw .file(.writing(path, errno: code, needed: layout.fileSize))
        }
        let headerWrite: Result<Void, CheckpointError> = layout.header.withUnsafeBytes { b in
            Result { () throws(CheckpointError) in try writeAll(b, at: 0) }
        }
        try headerWrite.get()
    }

    deinit { if fd >= 0 { close(fd) } }

    private func writeAll(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(CheckpointError) {
        var done = 0
        while done < bytes.count {
            let r = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if r < 0 {
                if errno == EINTR { continue }
                throw .file(.writing(path, errno: errno, needed: layout.fileSize))
            }
            done += r
        }
        startWritebackIfDue(bytes.count)
    }

    /// Every `writebackInterval` bytes, asks the kernel (on a background queue: the call may wait for
    /// the device's queue) to start writing this file's dirty pages, without waiting for them.
    private func startWritebackIfDue(_ count: Int) {
        guard durability == .machine, Writeback.syncFileRange != nil else { return }
        let due: Bool = lock.withLock {
            unflushed += count
            guard unflushed >= Self.writebackInterval, !writebackPending else { return false }
            unflushed = 0
            writebackPending = true
            return true
        }
        guard due else { return }
        // The block keeps the writer (and so `fd`) alive until it has run.
        Writeback.queue.async { [self] in
            _ = Writeback.syncFileRange?(fd, 0, 0, Writeback.write)
            lock.withLock { writebackPending = false }
        }
    }

    /// Writes a tensor's bytes (already in the layout's dtype). Safe to call from several threads.
    public func write(_ name: String, bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        guard let entry = layout.entry(name) else {
            throw .unexpectedTensor(path: path, tensor: name, reason: "not part of this file's layout")
        }
        guard bytes.count == entry.info.byteCount else {
            throw .unexpectedTensor(path: path, tensor: name, reason: "got \(bytes.count) bytes, the layout says \(entry.info.byteCount)")
        }
        if bytes.count > 0 { try writeAll(bytes, at: entry.fileOffset) }
        lock.withLock { _ = written.insert(name) }
    }

    /// Writes part of a tensor: `bytes` (in the layout's dtype) at byte `offset` of its data. The tensor
    /// counts as written once parts covering all its bytes have arrived. Safe to call from several
    /// threads with disjoint parts.
    public func write(_ name: String, bytes: UnsafeRawBufferPointer, at offset: Int) throws(CheckpointError) {
        guard let entry = layout.entry(name) else {
            throw .unexpectedTensor(path: path, tensor: name, reason: "not part of this file's layout")
        }
        guard offset >= 0, offset + bytes.count <= entry.info.byteCount else {
            throw .unexpectedTensor(path: path, tensor: name,
                                    reason: "bytes \(offset)..<\(offset + bytes.count) lie outside its \(entry.info.byteCount)")
        }
        if bytes.count > 0 { try writeAll(bytes, at: entry.fileOffset + offset) }
        lock.withLock {
            let total = partBytes[name, default: 0] + bytes.count
            partBytes[name] = total
            if total == entry.info.byteCount { written.insert(name) }
        }
    }

    /// Writes a tensor, converting it to the layout's dtype when needed.
    public func write(_ name: String, tensor: Tensor) throws(CheckpointError) {
        guard let entry = layout.entry(name) else {
            throw .unexpectedTensor(path: path, tensor: name, reason: "not part of this file's layout")
        }
        guard tensor.shape == entry.info.shape else {
            throw .unexpectedTensor(path: path, tensor: name, reason: "shape \(tensor.shape), the layout says \(entry.info.shape)")
        }
        // A converted tensor is a temporary: keep it alive through the write, or its memory may be freed
        // (and reused) between reading `bytes` and `pwrite`.
        let t = tensor.converted(to: entry.info.dtype)
        try t.withUnsafeBytes { (b) throws(CheckpointError) in try write(name, bytes: b) }
    }

    /// Checks every tensor was written and (for `machine` durability) flushes the file to disk.
    public func finish() throws(CheckpointError) {
        let missing = layout.entries.map(\.info.name).filter { !written.contains($0) }
        guard missing.isEmpty else { throw .incompleteWrite(path: path, missing: missing) }
        guard durability == .process || fsync(fd) == 0 else { throw .file(.writing(path, errno: errno, needed: layout.fileSize)) }
    }

    /// Writes whole tensors into a new file at `path`, atomically.
    public static func save(_ tensors: [(name: String, tensor: Tensor)], to path: String,
                            metadata: [(key: String, value: String)]? = [("format", "pt")]) throws(CheckpointError) {
        let layout = try SafetensorsLayout(tensors: tensors.map { TensorInfo(name: $0.name, dtype: $0.tensor.dtype, shape: $0.tensor.shape) }, metadata: metadata)
        let tmp = path + ".partial-\(getpid())"
        do {
            let writer = try SafetensorsWriter(path: tmp, layout: layout)
            for (name, t) in tensors { try writer.write(name, bytes: t.bytes) }
            try writer.finish()
        } catch {
            unlink(tmp)
            throw error
        }
        guard rename(tmp, path) == 0 else { throw .file(.writing(path, errno: errno)) }
    }
}

/// Linux's `sync_file_range`, which Swift's Glibc module does not export, looked up at run time (nil
/// elsewhere: write-back then starts at `fsync`).
private enum Writeback {
    typealias Function = @convention(c) (Int32, Int64, Int64, UInt32) -> Int32
    static let syncFileRange: Function? = {
        guard let handle = dlopen(nil, RTLD_NOW), let f = dlsym(handle, "sync_file_range") else { return nil }
        return unsafeBitCast(f, to: Function.self)
    }()
    /// `SYNC_FILE_RANGE_WRITE`: start write-back of dirty pages not already being written; do not wait.
    static let write: UInt32 = 2
    static let queue = DispatchQueue(label: "amalgam.safetensors.writeback", qos: .utility)
}
