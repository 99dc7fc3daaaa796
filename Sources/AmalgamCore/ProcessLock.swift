import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An advisory lock (`flock`) that this process holds on a file or folder until `release()` or until it
/// ends. The kernel drops it when the process dies, even by SIGKILL: a lock that can be taken means its
/// owner is gone, whichever process now has the owner's PID (which is why a lock beats a PID check).
///
/// The lock belongs to the open file description: a second `ProcessLock` on the same path, even in this
/// process, is refused while the first is held. Descriptors are close-on-exec, so child processes never
/// inherit a lock.
public final class ProcessLock: @unchecked Sendable {
    /// The locked file or folder.
    public let path: String
    private let guardState = Lock()
    private var fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { release() }

    /// Takes the lock on `path` (an existing file or folder, or a file created when `create` is set)
    /// without waiting; nil when another holder has it.
    public static func tryAcquire(_ path: String, create: Bool = false) throws(FileError) -> ProcessLock? {
        let fd = try openForLocking(path, create: create)
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK { return nil }
            throw .cannotOpen(path: path, reason: "cannot lock (\(String(cString: strerror(code))))")
        }
        return ProcessLock(path: path, fd: fd)
    }

    /// Takes the lock on `path`, waiting for its holder to release it (for short critical sections).
    public static func acquire(_ path: String) throws(FileError) -> ProcessLock {
        let fd = try openForLocking(path, create: false)
        while flock(fd, LOCK_EX) != 0 {
            let code = errno
            if code == EINTR { continue }
            close(fd)
            throw .cannotOpen(path: path, reason: "cannot lock (\(String(cString: strerror(code))))")
        }
        return ProcessLock(path: path, fd: fd)
    }

    /// Replaces the locked file's content with `text` (the owner's PID, for messages).
    public func record(_ text: String) {
        guardState.withLock {
            guard fd >= 0 else { return }
            let bytes = Array(text.utf8)
            _ = ftruncate(fd, 0)
            _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        }
    }

    /// Gives the lock up (at most once; also done when the value is freed).
    public func release() {
        guardState.withLock {
            guard fd >= 0 else { return }
            close(fd)
            fd = -1
        }
    }

    private static func openForLocking(_ path: String, create: Bool) throws(FileError) -> Int32 {
        let fd = create ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: "cannot open to lock (\(String(cString: strerror(errno))))") }
        return fd
    }
}

/// This process's claim on a folder that one process at a time continues (a run folder): a `ProcessLock`
/// on `FOLDER/run.lock`, which records the PID for other processes' messages. Claims of one folder within
/// this process share the lock, which is released with the last of them (or when the process ends).
public final class FolderClaim: @unchecked Sendable {
    /// The file holding the lock and the owner's PID, inside the claimed folder.
    public static let lockName = "run.lock"
    private static let guardState = Lock()
    private nonisolated(unsafe) static var held: [String: (lock: ProcessLock, count: Int)] = [:]
    private let key: String

    private init(key: String) { self.key = key }

    /// Claims the existing folder at `path` for this process; `FileError.inUse` names the PID of a live
    /// process holding it.
    public static func take(_ path: String) throws(FileError) -> FolderClaim {
        let key = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
        let file = key + "/" + lockName
        let result: Result<FolderClaim, FileError> = guardState.withLock {
            if let entry = held[key] {
                held[key] = (entry.lock, entry.count + 1)
                return .success(FolderClaim(key: key))
            }
            let lock: ProcessLock?
            do throws(FileError) { lock = try ProcessLock.tryAcquire(file, create: true) } catch { return .failure(error) }
            guard let lock else {
                let pid = (try? String(contentsOfFile: file, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                return .failure(.inUse(path: path, pid: pid))
            }
            lock.record("\(getpid())\n")
            held[key] = (lock, 1)
            return .success(FolderClaim(key: key))
        }
        return try result.get()
    }

    deinit {
        Self.guardState.withLock {
            guard let entry = Self.held[key] else { return }
            if entry.count > 1 {
                Self.held[key] = (entry.lock, entry.count - 1)
            } else {
                entry.lock.release()
                Self.held[key] = nil
            }
        }
    }
}
