import Foundation

/// An output (file or folder) that appears under its final name only when complete: everything is
/// written under a temporary sibling name and renamed at the end, so a crash or kill never leaves a
/// half-written result where a user would take it for a finished one.
public struct AtomicOutput: Sendable {
    /// Where the finished output will be.
    public let finalPath: String
    /// Where it is being written now.
    public let workingPath: String

    /// Prepares an output at `path`. Fails if something is there, unless `overwrite` is set.
    public init(path: String, overwrite: Bool) throws(FileError) {
        let fm = FileManager.default
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        if fm.fileExists(atPath: absolute), !overwrite { throw FileError.alreadyExists(path: absolute) }
        let parent = (absolute as NSString).deletingLastPathComponent
        let name = (absolute as NSString).lastPathComponent
        do {
            try fm.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw FileError.cannotWrite(path: parent, reason: "\(error.localizedDescription)")
        }
        finalPath = absolute
        workingPath = parent + "/." + name + ".partial-\(getpid())"
        try? fm.removeItem(atPath: workingPath)
    }

    /// Creates the working folder (for folder outputs).
    public func makeWorkingDirectory() throws(FileError) {
        do {
            try FileManager.default.createDirectory(atPath: workingPath, withIntermediateDirectories: true)
        } catch {
            throw FileError.cannotWrite(path: workingPath, reason: error.localizedDescription)
        }
    }

    /// Moves the finished output into place, replacing what was there.
    public func commit() throws(FileError) {
        let fm = FileManager.default
        if fm.fileExists(atPath: finalPath) {
            let old = workingPath + ".old"
            try? fm.removeItem(atPath: old)
            guard rename(finalPath, old) == 0 else {
                throw FileError.cannotWrite(path: finalPath, reason: String(cString: strerror(errno)))
            }
            guard rename(workingPath, finalPath) == 0 else {
                let reason = String(cString: strerror(errno))
                // Put the previous output back rather than leave nothing under the final name.
                _ = rename(old, finalPath)
                throw FileError.cannotWrite(path: finalPath, reason: reason)
            }
            try? fm.removeItem(atPath: old)
        } else {
            guard rename(workingPath, finalPath) == 0 else {
                throw FileError.cannotWrite(path: finalPath, reason: String(cString: strerror(errno)))
            }
        }
    }

    /// Removes whatever was written (after a failure).
    public func abandon() { try? FileManager.default.removeItem(atPath: workingPath) }
}

/// Writes `data` to `path` through a temporary file and a rename.
public func writeFileAtomically(_ data: [UInt8], to path: String) throws(FileError) {
    let tmp = path + ".partial-\(getpid())"
    guard let handle = fopen(tmp, "wb") else {
        throw FileError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
    }
    let written = data.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, handle) }
    let flushed = fflush(handle) == 0 && fsync(fileno(handle)) == 0
    fclose(handle)
    guard written == data.count, flushed, rename(tmp, path) == 0 else {
        unlink(tmp)
        throw FileError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
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
