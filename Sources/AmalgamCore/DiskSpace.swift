import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension FileError {
    /// The error for a write to `path` that failed with `code` (an `errno`): a full filesystem or quota
    /// (`ENOSPC`, `EDQUOT`) becomes `noSpace`, with the space free now; a device fault (`EIO`) says so.
    public static func writing(_ path: String, errno code: Int32, needed: Int? = nil) -> FileError {
        switch code {
        case ENOSPC, EDQUOT:
            return .noSpace(path: path, needed: needed, free: freeBytes(near: path))
        case EIO:
            return .cannotWrite(path: path, reason: "input/output error: the disk or filesystem reported a fault; check it (dmesg), then run again")
        default:
            return .cannotWrite(path: path, reason: String(cString: strerror(code)))
        }
    }

    /// Whether the error is a full filesystem.
    public var isNoSpace: Bool {
        if case .noSpace = self { return true }
        return false
    }
}

/// Bytes an unprivileged process can still write on the filesystem holding `path` (or its nearest
/// existing ancestor), or nil when that cannot be measured.
public func freeBytes(near path: String) -> Int? {
    var candidate = URL(fileURLWithPath: path).standardizedFileURL.path
    while true {
        var s = statvfs()
        if statvfs(candidate, &s) == 0 { return Int(s.f_bavail) * Int(s.f_frsize) }
        guard candidate != "/", !candidate.isEmpty else { return nil }
        candidate = (candidate as NSString).deletingLastPathComponent
    }
}

/// Bytes on disk under `path` (a file, or a folder and everything in it), counted in allocated blocks.
public func diskUsage(_ path: String) -> Int {
    var s = stat()
    guard lstat(path, &s) == 0 else { return 0 }
    var total = Int(s.st_blocks) * 512
    if (s.st_mode & S_IFMT) == S_IFDIR {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            total += diskUsage(path + "/" + name)
        }
    }
    return total
}

/// A byte count for people: "512 B", "1.20 MB", "3.40 GB" (powers of 1000).
public func byteCountText(_ n: Int) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"]
    var v = Double(n)
    var u = 0
    while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.2f %@", v, units[u])
}
