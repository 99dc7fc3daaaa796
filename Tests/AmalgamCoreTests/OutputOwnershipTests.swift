import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// Who owns an output while it is written: leftovers of dead runs are removed and reported, a working
/// folder that a live process holds is refused naming its PID, and a commit never mixes two writers.
struct OutputOwnershipTests {
    let fm = FileManager.default

    /// A working folder as a killed run leaves it: `.NAME.partial-PID` with `bytes` of data, no lock.
    func leaveLeftover(_ dir: String, name: String, pid: Int32, bytes: Int) throws -> String {
        let path = dir + "/." + name + ".partial-\(pid)"
        try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
        try writeFileAtomically([UInt8](repeating: 7, count: bytes), to: path + "/model.safetensors")
        return path
    }

    @Test func theLeftoverOfADeadRunIsRemovedAndReported() throws {
        let dir = temporaryFolder()
        defer { try? fm.removeItem(atPath: dir) }
        let leftover = try leaveLeftover(dir, name: "merged", pid: 999_999, bytes: 40_000)
        let other = try leaveLeftover(dir, name: "other", pid: 999_999, bytes: 10)
        let out = try AtomicOutput(path: dir + "/merged", overwrite: false)
        #expect(out.removedLeftovers.map(\.path) == [leftover])
        #expect(out.removedLeftovers.first?.pid == 999_999)
        #expect((out.removedLeftovers.first?.bytes ?? 0) >= 40_000)
        #expect(out.removedLeftovers.first?.description.hasPrefix("removed the leftover of a killed run (pid 999999, ") == true)
        #expect(!fm.fileExists(atPath: leftover))
        #expect(fm.fileExists(atPath: other), "only leftovers of this output are touched")
        try out.commit()
        #expect(try fm.contentsOfDirectory(atPath: dir).sorted() == [".other.partial-999999", "merged"])
    }

    @Test func aWorkingFolderALiveProcessHoldsIsRefusedNamingItsPID() throws {
        let dir = temporaryFolder()
        defer { try? fm.removeItem(atPath: dir) }
        let held = try leaveLeftover(dir, name: "merged", pid: 4242, bytes: 10)
        // Another process holds the working folder's lock, as a running merge does.
        let holder = try Subprocess(executable: "/usr/bin/flock", arguments: ["--close", held, "sleep", "60"])
        defer { holder.send(SIGKILL); holder.wait() }
        let deadline = Date().addingTimeInterval(10)
        while try ProcessLock.tryAcquire(held) != nil, Date() < deadline { usleep(10_000) }
        #expect(throws: FileError.inUse(path: dir + "/merged", pid: 4242)) { _ = try AtomicOutput(path: dir + "/merged", overwrite: true) }
        #expect(FileError.inUse(path: dir + "/merged", pid: 4242).description.hasPrefix(dir + "/merged: in use by process 4242, which is still running"))
        #expect(fm.fileExists(atPath: held))
        // Killed, the holder's lock is dropped by the kernel: the folder is now a leftover.
        holder.send(SIGKILL)
        holder.wait()
        // The lock goes with the last descriptor on it: flock's child closes its inherited copy only just before
        // it execs `sleep`, which under load can come after the kill. Wait (bounded) for the kernel to drop it.
        let dropped = Date().addingTimeInterval(10)
        while Date() < dropped {
            guard let probe = try ProcessLock.tryAcquire(held) else { usleep(10_000); continue }
            probe.release()
            break
        }
        let out = try AtomicOutput(path: dir + "/merged", overwrite: false)
        #expect(out.removedLeftovers.map(\.path) == [held])
        out.abandon()
    }

    @Test func twoWritersOfOneOutputInOneProcessDoNotMix() throws {
        let dir = temporaryFolder()
        defer { try? fm.removeItem(atPath: dir) }
        let first = try AtomicOutput(path: dir + "/m", overwrite: true)
        #expect(throws: FileError.inUse(path: dir + "/m", pid: getpid())) { _ = try AtomicOutput(path: dir + "/m", overwrite: true) }
        try writeFileAtomically("first", to: first.workingPath + "/a.txt")
        try first.commit()
        #expect(try String(contentsOfFile: dir + "/m/a.txt", encoding: .utf8) == "first")
    }

    @Test func aCommitDoesNotReplaceAnOutputThatAppearedMeanwhile() throws {
        let dir = temporaryFolder()
        defer { try? fm.removeItem(atPath: dir) }
        let out = try AtomicOutput(path: dir + "/m", overwrite: false)
        try writeFileAtomically("late", to: out.workingPath + "/a.txt")
        try fm.createDirectory(atPath: dir + "/m", withIntermediateDirectories: true)
        try writeFileAtomically("winner", to: dir + "/m/a.txt")
        #expect(throws: FileError.alreadyExists(path: dir + "/m")) { try out.commit() }
        out.abandon()
        #expect(try String(contentsOfFile: dir + "/m/a.txt", encoding: .utf8) == "winner")
        #expect(try fm.contentsOfDirectory(atPath: dir) == ["m"])
    }

    @Test func aFileOutputAppearsWholeAndLeavesNoWorkingFolder() throws {
        let dir = temporaryFolder()
        defer { try? fm.removeItem(atPath: dir) }
        try writeFileAtomically("old", to: dir + "/model.gguf")
        let out = try AtomicOutput(path: dir + "/model.gguf", overwrite: true, kind: .file)
        #expect(out.workingPath == out.workingFolder + "/model.gguf")
        try writeFileAtomically("new", to: out.workingPath)
        #expect(try String(contentsOfFile: dir + "/model.gguf", encoding: .utf8) == "old")
        try out.commit()
        #expect(try String(contentsOfFile: dir + "/model.gguf", encoding: .utf8) == "new")
        #expect(try fm.contentsOfDirectory(atPath: dir) == ["model.gguf"])
    }

    @Test func aCommitKilledBetweenItsRenamesGetsThePreviousOutputBack() throws {
        let dir = temporaryFolder()
        defer { try? fm.removeItem(atPath: dir) }
        // The previous output, moved aside by a run killed before it renamed its own output in.
        let aside = dir + "/.m.partial-999999.old"
        try fm.createDirectory(atPath: aside, withIntermediateDirectories: true)
        try writeFileAtomically("previous", to: aside + "/a.txt")
        #expect(throws: FileError.alreadyExists(path: dir + "/m")) { _ = try AtomicOutput(path: dir + "/m", overwrite: false) }
        #expect(try String(contentsOfFile: dir + "/m/a.txt", encoding: .utf8) == "previous")
        #expect(try fm.contentsOfDirectory(atPath: dir) == ["m"])
    }

    @Test func aFullDiskNamesThePathAndTheSpace() {
        let error = FileError.writing("/data/out/model.safetensors", errno: ENOSPC, needed: 2_000_000)
        guard case let .noSpace(path, needed, free) = error else {
            Issue.record("ENOSPC gave \(error)")
            return
        }
        #expect(path == "/data/out/model.safetensors" && needed == 2_000_000 && free != nil)
        #expect(error.description.hasPrefix("/data/out/model.safetensors: no space left on device (2.00 MB needed, "))
        #expect(FileError.writing("/x", errno: EDQUOT).isNoSpace)
        #expect(FileError.writing("/x", errno: EIO).description.contains("input/output error"))
    }
}
