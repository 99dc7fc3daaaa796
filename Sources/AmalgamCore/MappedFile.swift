#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A whole file mapped read-only into memory. Tensors read from it are views, not copies;
/// the mapping lives as long as any of them.
public final class MappedFile: @unchecked Sendable {
    /// The file's path, for error messages.
    public let path: String
    /// Base address of the mapping (nil for an empty file).
    public let base: UnsafeRawPointer?
    /// Length of the file in bytes.
    public let count: Int

    /// Maps `path` read-only.
    public init(path: String) throws(FileError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FileError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw FileError.isDirectory(path: path) }
        count = Int(st.st_size)
        if count == 0 {
            base = nil
            return
        }
        let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw FileError.cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// The bytes `[offset, offset + length)`; the caller has checked the range.
    public func bytes(offset: Int, count length: Int) -> UnsafeRawBufferPointer {
        precondition(offset >= 0 && length >= 0 && offset + length <= count, "range outside \(path)")
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + offset, count: length)
    }

    /// Tells the kernel a range will be read soon, in order.
    public func willRead(offset: Int, count length: Int) {
        guard let base, length > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset / page) * page
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), length + (offset - start), MADV_WILLNEED)
    }

    /// Tells the kernel a range is no longer needed, so streaming stays within bounded memory.
    public func doneReading(offset: Int, count length: Int) {
        guard let base, length > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset / page) * page
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), length + (offset - start), MADV_DONTNEED)
    }
}

/// Errors of plain file access.
public enum FileError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case isDirectory(path: String)
    case cannotWrite(path: String, reason: String)
    case alreadyExists(path: String)
    /// Another process that is still running holds the output (its working copy) or the run folder.
    case inUse(path: String, pid: Int32?)
    /// The filesystem holding `path` is full (or the user's quota is): `needed` and `free` in bytes when known.
    case noSpace(path: String, needed: Int?, free: Int?)

    /// The file or folder it is about.
    public var path: String {
        switch self {
        case let .cannotOpen(path, _), let .isDirectory(path), let .cannotWrite(path, _), let .alreadyExists(path),
             let .inUse(path, _), let .noSpace(path, _, _):
            return path
        }
    }

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "\(path): cannot open (\(reason))"
        case let .isDirectory(path): return "\(path): is a folder, expected a file"
        case let .cannotWrite(path, reason): return "\(path): cannot write (\(reason))"
        case let .alreadyExists(path):
            return "\(path): already exists; choose another output path or pass --overwrite"
        case let .inUse(path, pid):
            let owner = pid.map { "process \($0)" } ?? "another process"
            return "\(path): in use by \(owner), which is still running; wait for it to finish or stop it (kill \(pid.map(String.init) ?? "PID")), or choose another path"
        case let .noSpace(path, needed, free):
            let sizes = [needed.map { byteCountText($0) + " needed" }, free.map { byteCountText($0) + " free" }].compactMap { $0 }
            return "\(path): no space left on device\(sizes.isEmpty ? "" : " (" + sizes.joined(separator: ", ") + ")"); "
                + "free some space or choose a folder on another disk, then run the command again"
        }
    }
}
