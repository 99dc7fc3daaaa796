import Foundation

/// An output (file or folder) that appears under its final name only when complete: everything is
/// written under a hidden sibling folder `.NAME.partial-PID` and renamed at the end, so a crash or kill
/// never leaves a half-written result where a user would take it for a finished one.
///
/// Ownership: the working folder is locked (`ProcessLock`) for as long as this process writes it. When
/// an output is prepared, the working folders other runs left beside it are looked at: one whose lock can
/// be taken belongs to a process that died (killed, crashed, out of power) and is removed, and reported
/// through `removedLeftovers` and `AtomicOutput.onLeftoverRemoved`; one whose lock is held belongs to a
/// live process, and the output is refused (`FileError.inUse`, naming its PID). Preparing and committing
/// hold a lock on the parent folder, so two writers of one output never interleave: one commits, the
/// other is refused, never a mix.
public struct AtomicOutput: Sendable {
    /// What the output is.
    public enum Kind: Sendable {
        /// A folder (a model, a run folder): `workingPath` is the working folder itself.
        case folder
        /// One file (a GGUF): `workingPath` is a file named like the output inside the working folder.
        case file
    }

    /// A working folder that a dead process left beside an output, removed when the output was prepared.
    public struct Leftover: Sendable, Equatable, CustomStringConvertible {
        /// Where it was.
        public let path: String
        /// The process that wrote it (from its name).
        public let pid: Int32?
        /// Disk space it held, in bytes.
        public let bytes: Int

        public var description: String {
            "removed the leftover of a killed run (\(pid.map { "pid \($0), " } ?? "")\(byteCountText(bytes))): \(path)"
        }
    }

    /// Where the finished output will be.
    public let finalPath: String
    /// Where it is being written now (see `Kind`).
    public let workingPath: String
    /// The hidden folder that holds the output while it is written: `PARENT/.NAME.partial-PID`.
    public let workingFolder: String
    /// File or folder.
    public let kind: Kind
    /// Whether an existing output is replaced on commit.
    public let overwrite: Bool
    /// Leftovers of dead processes removed while preparing this output (also handed to `onLeftoverRemoved`).
    public let removedLeftovers: [Leftover]
    private let ownership: ProcessLock

    /// Prepares an output at `path`: removes leftovers of dead runs beside it, creates and locks the
    /// working folder. Fails if something is at `path`, unless `overwrite` is set, and if a live process
    /// is writing the same output.
    public init(path: String, overwrite: Bool, kind: Kind = .folder) throws(FileError) {
        let fm = FileManager.default
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        let parent = (absolute as NSString).deletingLastPathComponent
        let name = (absolute as NSString).lastPathComponent
        do {
            try fm.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw FileError.cannotWrite(path: parent, reason: "\(error.localizedDescription)")
        }
        let parentLock = try Self.lockParent(parent)
        defer { parentLock?.release() }
        let leftovers = try Self.removeLeftovers(parent: parent, name: name)
        if fm.fileExists(atPath: absolute), !overwrite { throw FileError.alreadyExists(path: absolute) }
        let working = parent + "/." + name + ".partial-\(getpid())"
        guard mkdir(working, 0o755) == 0 else { throw FileError.writing(working, errno: errno) }
        guard let lock = try ProcessLock.tryAcquire(working) else { throw FileError.inUse(path: absolute, pid: getpid()) }
        finalPath = absolute
        workingFolder = working
        workingPath = kind == .folder ? working : working + "/" + name
        self.kind = kind
        self.overwrite = overwrite
        ownership = lock
        removedLeftovers = leftovers
        for leftover in leftovers { Self.reportLeftover(leftover) }
    }

    /// Creates the working folder again if something removed it (it exists from `init` on: it carries
    /// the ownership lock).
    public func makeWorkingDirectory() throws(FileError) {
        do {
            try FileManager.default.createDirectory(atPath: workingFolder, withIntermediateDirectories: true)
        } catch {
            throw FileError.cannotWrite(path: workingFolder, reason: error.localizedDescription)
        }
    }

    /// Moves the finished output into place. An existing output is replaced only with `overwrite` (else
    /// `alreadyExists`, even when another process made it meanwhile); a folder is swapped in with one
    /// atomic exchange where the filesystem allows it, so the final name never holds a mix or nothing.
    public func commit() throws(FileError) {
        let parent = (finalPath as NSString).deletingLastPathComponent
        let parentLock = try Self.lockParent(parent)
        defer { parentLock?.release() }
        let fm = FileManager.default
        let exists = fm.fileExists(atPath: finalPath)
        if exists && !overwrite { throw FileError.alreadyExists(path: finalPath) }
        if !exists {
            // Onto a free name only: a writer outside Amalgam's locks that got there first is not replaced.
            if renameat2(AT_FDCWD, workingPath, AT_FDCWD, finalPath, renameNoReplace) != 0 {
                let code = errno
                if code == EEXIST { throw FileError.alreadyExists(path: finalPath) }
                guard code == EINVAL || code == ENOSYS, rename(workingPath, finalPath) == 0 else {
                    throw FileError.writing(finalPath, errno: code == EINVAL || code == ENOSYS ? errno : code)
                }
            }
        } else if kind == .file {
            // A file replaces a file atomically.
            guard rename(workingPath, finalPath) == 0 else { throw FileError.writing(finalPath, errno: errno) }
        } else if renameat2(AT_FDCWD, workingPath, AT_FDCWD, finalPath, renameExchange) == 0 {
            // The working folder now holds the previous output.
        } else {
            // No atomic exchange here: move the previous output aside, then the new one in.
            let old = workingFolder + ".old"
            guard rename(finalPath, old) == 0 else { throw FileError.writing(finalPath, errno: errno) }
            guard rename(workingPath, finalPath) == 0 else {
                let code = errno
                _ = rename(old, finalPath)
                throw FileError.writing(finalPath, errno: code)
            }
            try? fm.removeItem(atPath: old)
        }
        try? fm.removeItem(atPath: workingFolder)
        ownership.release()
    }

    /// Removes whatever was written (after a failure).
    public func abandon() {
        try? FileManager.default.removeItem(atPath: workingFolder)
        ownership.release()
    }

    // MARK: leftovers

    /// Removes the working folders of dead processes beside output `name` in `parent`; throws `inUse`
    /// naming the output and the PID, for one a live process holds.
    static func removeLeftovers(parent: String, name: String) throws(FileError) -> [Leftover] {
        let prefix = "." + name + ".partial-"
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []).filter { $0.hasPrefix(prefix) }.sorted()
        var removed: [Leftover] = []
        for entry in entries {
            var tail = entry.dropFirst(prefix.count)
            let movedAside = tail.hasSuffix(".old")
            if movedAside { tail = tail.dropLast(4) }
            guard !tail.isEmpty, tail.allSatisfy(\.isASCII), tail.allSatisfy(\.isNumber) else { continue }
            let path = parent + "/" + entry
            let pid = Int32(tail)
            let taken: ProcessLock?
            do { taken = try ProcessLock.tryAcquire(path) } catch { continue }  // gone meanwhile: its owner finished
            let final = parent + "/" + name
            guard let lock = taken else { throw FileError.inUse(path: final, pid: pid) }
            if movedAside, !FileManager.default.fileExists(atPath: final) {
                // A commit killed between its two renames: the previous output goes back under its name.
                if rename(path, final) == 0 { lock.release(); continue }
            }
            let bytes = diskUsage(path)
            do {
                try FileManager.default.removeItem(atPath: path)
            } catch {
                throw FileError.cannotWrite(path: path, reason: "cannot remove this leftover of a killed run (\(error.localizedDescription)); remove it by hand")
            }
            lock.release()
            removed.append(Leftover(path: path, pid: pid, bytes: bytes))
        }
        return removed
    }

    /// Locks `parent` for a short critical section (preparing or committing an output), so writers of
    /// one output in several processes take turns. Not inside this process's own working folder: no
    /// other process writes there, and the folder's ownership lock is already held by this process.
    static func lockParent(_ parent: String) throws(FileError) -> ProcessLock? {
        let own = ".partial-\(getpid())"
        if parent.split(separator: "/").contains(where: { $0.hasPrefix(".") && $0.hasSuffix(own) }) { return nil }
        return try ProcessLock.acquire(parent)
    }

    private nonisolated(unsafe) static var leftoverHandler: (@Sendable (Leftover) -> Void)?
    private static let handlerLock = Lock()

    /// Sets what is done with each leftover removed while preparing an output (the program prints a note;
    /// by default nothing).
    public static func onLeftoverRemoved(_ handler: (@Sendable (Leftover) -> Void)?) {
        handlerLock.withLock { leftoverHandler = handler }
    }

    private static func reportLeftover(_ leftover: Leftover) {
        let handler = handlerLock.withLock { leftoverHandler }
        handler?(leftover)
    }
}

/// glibc's `renameat2` (Linux 3.15+), not exported by the Glibc module, and its exchange flag.
@_silgen_name("renameat2")
private func renameat2(_ oldDirectory: Int32, _ oldPath: UnsafePointer<CChar>, _ newDirectory: Int32,
                       _ newPath: UnsafePointer<CChar>, _ flags: UInt32) -> Int32
private let renameNoReplace: UInt32 = 1
private let renameExchange: UInt32 = 2

/// Writes `data` to `path` through a temporary file and a rename. A full disk is a `noSpace` error
/// naming `path`; the temporary file is removed.
public func writeFileAtomically(_ data: [UInt8], to path: String) throws(FileError) {
    let tmp = path + ".partial-\(getpid())"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw FileError.writing(path, errno: errno, needed: data.count) }
    var failure: Int32 = 0
    data.withUnsafeBytes { bytes in
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { failure = n < 0 ? errno : ENOSPC; return }
            done += n
        }
    }
    if failure == 0, fsync(fd) != 0 { failure = errno }
    close(fd)
    if failure == 0, rename(tmp, path) != 0 { failure = errno }
    guard failure == 0 else {
        unlink(tmp)
        throw FileError.writing(path, errno: failure, needed: data.count)
    }
}

/// Writes `text` as UTF-8 to `path` through a temporary file and a rename.
public func writeFileAtomically(_ text: String, to path: String) throws(FileError) {
    try writeFileAtomically(Array(text.utf8), to: path)
}

/// How much a finished output survives.
public enum Durability: String, Sendable, CaseIterable {
    /// Survives the program being killed or crashing at any moment (the kernel keeps what was written):
    /// nothing waits for the disk. A power loss or kernel crash soon after may leave the output incomplete.
    case process
    /// Also survives power loss: data is flushed to the disk (fsync) before the output takes its name.
    case machine
}
