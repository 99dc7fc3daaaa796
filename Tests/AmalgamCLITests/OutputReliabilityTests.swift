import AmalgamCore
import AmalgamLab
import AmalgamSearch
import AmalgamTestSupport
import Foundation
import Testing

/// A small tmpfs the test mounts, to run commands onto a full disk. Mounting needs root; in CI (`CI=true`)
/// a mount that fails is a test failure, elsewhere the tests that need it are skipped.
struct SmallDisk {
    let path: String
    var filler: String { path + "/filler" }

    /// Whether this process may mount a tmpfs here (tried once).
    static let permitted: Bool = {
        guard let disk = try? SmallDisk(bytes: 1 << 20) else { return false }
        disk.unmount()
        return true
    }()

    /// Run the full-disk tests: when mounting is permitted, and always in CI (where a refusal then fails).
    static var shouldRun: Bool { permitted || ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Mounts a tmpfs of `bytes` on a new folder.
    init(bytes: Int) throws {
        path = temporaryFolder("disk")
        let run = try Subprocess.run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", path])
        guard run.termination == .exited(0) else {
            try? FileManager.default.removeItem(atPath: path)
            throw MountError(description: "mount -t tmpfs at \(path) failed (\(run.err)); the full-disk tests need root")
        }
    }

    /// Fills the disk with a file so that about `bytes` stay free.
    func fill(leaving bytes: Int) throws {
        let free = try #require(freeBytes(near: path))
        // Close-on-exec: a command that another test starts meanwhile must not inherit the open file, or
        // unlinking it would free nothing until that command ends (the resumed run then found 37 KB free on
        // an emptied disk, in whole-suite runs only).
        let fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        try #require(fd >= 0, "cannot create \(filler)")
        let status = posix_fallocate(fd, 0, off_t(max(0, free - bytes)))
        close(fd)
        #expect(status == 0, "posix_fallocate on \(filler): error \(status)")
        #expect(abs((freeBytes(near: path) ?? 0) - bytes) <= 8192, "the filler leaves \(freeBytes(near: path) ?? -1) bytes free")
    }

    /// Frees the space the filler took.
    func unfill() { unlink(filler) }

    /// Everything on the disk but the filler.
    func contents(_ sub: String = "") throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path + sub).filter { $0 != "filler" }.sorted()
    }

    func unmount() {
        _ = try? Subprocess.run("/usr/bin/umount", [path])
        try? FileManager.default.removeItem(atPath: path)
    }
}

struct MountError: Error, CustomStringConvertible {
    let description: String
}

/// `amalgam` to the end: exit status (-1 when killed by a signal), standard output and error.
func amalgam(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
    let binary = try amalgamProgram.require()
    let run = try Subprocess.run(binary, arguments)
    guard case let .exited(status) = run.termination else { return (-1, run.out, run.err + "\n(killed by \(run.termination))") }
    return (status, run.out, run.err)
}

/// Every file of a folder (or a single file) as bytes, by relative path.
func folderBytes(_ path: String) throws -> [String: Data] {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { return [:] }
    guard isFolder.boolValue else { return ["": try Data(contentsOf: URL(fileURLWithPath: path))] }
    var out: [String: Data] = [:]
    for name in try FileManager.default.subpathsOfDirectory(atPath: path) {
        var sub: ObjCBool = false
        if FileManager.default.fileExists(atPath: path + "/" + name, isDirectory: &sub), !sub.boolValue {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: path + "/" + name))
        }
    }
    return out
}

/// What Amalgam promises for outputs and run folders, as a user meets it: leftovers of killed runs are
/// removed with a note, outputs and run folders in use are refused naming the PID, two merges into one
/// output never mix, and a full disk fails clearly, leaves nothing half-written and lets the run go on
/// once space is freed.
@Suite(.requires(amalgamProgram))
struct OutputReliabilityTests {
    let fm = FileManager.default

    /// A linear merge of the tiny Llama fixture (437 KB of f32 weights) with itself.
    func mergeConfig(_ dir: String) throws -> String {
        let model = fixturesDirectory + "/gguf/tiny-llama-hf"
        let path = dir + "/merge.yml"
        try """
            models:
              - model: \(model)
                parameters: {weight: 0.3}
              - model: \(model)
                parameters: {weight: 0.7}
            merge_method: linear
            dtype: float32
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The bytes of the merge made once, undisturbed, as `extra` arguments ask.
    func referenceMerge(_ dir: String, _ extra: [String] = [], file: String = "reference") throws -> [String: Data] {
        let run = try amalgam(["merge", "--quiet", try mergeConfig(dir), dir + "/" + file] + extra)
        #expect(run.status == 0, "\(run.err)")
        return try folderBytes(dir + "/" + file)
    }

    @Test func twoMergesIntoOneOutputAtOnceNeverMix() throws {
        let binary = try amalgamProgram.require()
        let dir = temporaryFolder("collide")
        defer { try? fm.removeItem(atPath: dir) }
        let reference = try referenceMerge(dir)
        let config = try mergeConfig(dir)
        for (round, extra) in [[], [], ["--overwrite"], ["--overwrite"]].enumerated() {
            let out = dir + "/out\(round)"
            if !extra.isEmpty { try fm.createDirectory(atPath: out, withIntermediateDirectories: true) }
            let merges = try (0..<2).map { i in
                try Subprocess(executable: binary, arguments: ["merge", "--quiet", config, out] + extra,
                               standardError: dir + "/err\(round)-\(i)")
            }
            let statuses = merges.map { $0.wait() }
            let errors = try (0..<2).map { try String(contentsOfFile: dir + "/err\(round)-\($0)", encoding: .utf8) }
            #expect(statuses.contains(.exited(0)), "\(errors)")
            for (status, error) in zip(statuses, errors) where status != .exited(0) {
                #expect(status == .exited(1))
                #expect(error.contains("in use by process") || error.contains("already exists"), "\(error)")
            }
            if extra.isEmpty { #expect(statuses.filter { $0 == .exited(0) }.count == 1, "\(errors)") }
            #expect(try folderBytes(out) == reference)
            #expect(try fm.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }.isEmpty, "a working folder was left behind")
        }
    }

    @Test func aKilledMergeLeavesALeftoverThatTheNextMergeRemovesWithANote() throws {
        let binary = try amalgamProgram.require()
        let dir = temporaryFolder("leftover")
        defer { try? fm.removeItem(atPath: dir) }
        let reference = try referenceMerge(dir)
        let config = try mergeConfig(dir)
        // Kill a merge while its working folder exists (it lives for milliseconds: try a few times).
        var killed: String?
        for _ in 0..<40 where killed == nil {
            let merge = try Subprocess(executable: binary, arguments: ["merge", "--quiet", config, dir + "/out"])
            while merge.isRunning {
                if let partial = try fm.contentsOfDirectory(atPath: dir).first(where: { $0.hasPrefix(".out.partial-") }) {
                    merge.send(SIGKILL)
                    killed = partial
                    break
                }
                usleep(100)
            }
            if merge.wait() == .exited(0) { try fm.removeItem(atPath: dir + "/out") }
        }
        let partial = try #require(killed, "no kill landed while the merge was writing")
        #expect(fm.fileExists(atPath: dir + "/" + partial) && !fm.fileExists(atPath: dir + "/out"))
        let pid = partial.split(separator: "-").last.map(String.init) ?? "?"
        let run = try amalgam(["merge", "--quiet", config, dir + "/out"])
        #expect(run.status == 0, "\(run.err)")
        #expect(run.err.contains("removed the leftover of a killed run (pid \(pid), "), "\(run.err)")
        #expect(run.err.contains(dir + "/" + partial), "\(run.err)")
        #expect(!fm.fileExists(atPath: dir + "/" + partial))
        #expect(try folderBytes(dir + "/out") == reference)
    }

    @Test(.enabled(if: SmallDisk.shouldRun, "mounting a tmpfs is not permitted here (needs root)"))
    func aMergeOntoAFullDiskFailsNamingThePathAndSucceedsOnceThereIsSpace() throws {
        let dir = temporaryFolder("fullmerge")
        defer { try? fm.removeItem(atPath: dir) }
        let reference = try referenceMerge(dir)
        let disk = try SmallDisk(bytes: 2 << 20)
        defer { disk.unmount() }
        try disk.fill(leaving: 200_000)
        let out = disk.path + "/merged"
        let failed = try amalgam(["merge", "--quiet", try mergeConfig(dir), out])
        #expect(failed.status == 1)
        #expect(failed.err.contains(out + ": no space left on device ("), "\(failed.err)")
        let left = try disk.contents()
        #expect(left.isEmpty, "left on the disk: \(left)")
        disk.unfill()
        let again = try amalgam(["merge", "--quiet", try mergeConfig(dir), out])
        #expect(again.status == 0, "\(again.err)")
        #expect(try folderBytes(out) == reference)
    }

    @Test(.enabled(if: SmallDisk.shouldRun, "mounting a tmpfs is not permitted here (needs root)"))
    func aGGUFOntoAFullDiskFailsNamingThePathAndSucceedsOnceThereIsSpace() throws {
        let dir = temporaryFolder("fullgguf")
        defer { try? fm.removeItem(atPath: dir) }
        let gguf = ["--out-format", "gguf", "--out-type", "f32"]
        // The same file name: a GGUF's general.name is the file's.
        let reference = try referenceMerge(dir, gguf, file: "merged.gguf")
        let disk = try SmallDisk(bytes: 2 << 20)
        defer { disk.unmount() }
        // Room for the merged folder the GGUF is made from, not for both.
        try disk.fill(leaving: 700_000)
        let out = disk.path + "/merged.gguf"
        let failed = try amalgam(["merge", "--quiet", try mergeConfig(dir), out] + gguf)
        #expect(failed.status == 1)
        #expect(failed.err.contains(out + ": no space left on device"), "\(failed.err)")
        let left = try disk.contents()
        #expect(left.isEmpty, "left on the disk: \(left)")
        disk.unfill()
        let again = try amalgam(["merge", "--quiet", try mergeConfig(dir), out] + gguf)
        #expect(again.status == 0, "\(again.err)")
        #expect(try folderBytes(out) == reference)
    }

    // MARK: run folders

    /// `amalgam experiment m2n2-digits` keeping its run in `directory` (resumed when there).
    func digitsRun(_ directory: String, passes: Int, json: String) -> [String] {
        ["experiment", "m2n2-digits", "--setting", "scratch", "--method", "M2N2", "--runs", "1", "--passes", "\(passes)",
         "--data", digitsCSV, "--run-dir", directory, "--resume", "--json", json]
    }

    var runName: String { "/" + DigitsExperiment.runFolderName(setting: .scratch, variant: .m2n2, run: 0) }

    @Test func aRunFolderInUseIsRefusedNamingThePID() throws {
        let binary = try amalgamProgram.require()
        let root = temporaryFolder("inuse")
        defer { try? fm.removeItem(atPath: root) }
        let arguments = digitsRun(root + "/runs", passes: 1_000_000, json: root + "/a.json")
        let first = try Subprocess(executable: binary, arguments: arguments)
        defer { first.send(SIGKILL); first.wait() }
        let deadline = Date().addingTimeInterval(120)
        while (try KillResumeTests().committedPasses(root + "/runs" + runName) ?? 0) == 0, first.isRunning, Date() < deadline { usleep(10_000) }
        #expect(first.isRunning)
        let second = try amalgam(arguments)
        #expect(second.status == 1)
        #expect(second.err.contains(root + "/runs" + runName + ": in use by process \(first.pid), which is still running"), "\(second.err)")
        // Killed, the first run's lock goes with it: the folder can be continued.
        first.send(SIGKILL)
        first.wait()
        let folder = try RunFolder.open(path: root + "/runs" + runName, kind: "m2n2", durability: .process)
        #expect(try folder.meta("kind") == "m2n2")
    }

    @Test(.enabled(if: SmallDisk.shouldRun, "mounting a tmpfs is not permitted here (needs root)"))
    func aRunStepOntoAFullDiskFailsClearlyAndTheRunResumesOnceThereIsSpace() throws {
        let root = temporaryFolder("fullrun")
        defer { try? fm.removeItem(atPath: root) }
        let passes = 300
        let whole = try amalgam(digitsRun(root + "/whole", passes: passes, json: root + "/whole.json"))
        #expect(whole.status == 0, "\(whole.err)")
        // Only `runRoom` is free while the disk is filled; once emptied, the resumed run needs room for its
        // genomes, the run store's tables and SQLite's write-ahead log (a run folder of 300 passes is 1.7 MB).
        let disk = try SmallDisk(bytes: 64 << 20)
        defer { disk.unmount() }
        try disk.fill(leaving: Self.runRoom)
        let folder = disk.path + "/runs" + runName
        let failed = try amalgam(digitsRun(disk.path + "/runs", passes: passes, json: root + "/parts.json"))
        #expect(failed.status == 1)
        #expect(failed.err.contains(folder), "\(failed.err)")
        #expect(failed.err.contains("no space left on device"), "\(failed.err)")
        #expect(failed.err.contains("--resume"), "\(failed.err)")
        let committed = try KillResumeTests().committedPasses(folder) ?? 0
        #expect(committed > 0 && committed < passes, "the disk filled at pass \(committed), not inside the run")
        #expect(try disk.contents("/runs").filter { $0.hasPrefix(".") }.isEmpty)
        #expect(try disk.contents("/runs" + runName + "/genomes").filter { $0.hasPrefix(".") }.isEmpty, "a partial genome was left")
        disk.unfill()
        let again = try amalgam(digitsRun(disk.path + "/runs", passes: passes, json: root + "/parts.json"))
        #expect(again.status == 0, "\(again.err)")
        #expect(try runFolderSnapshot(folder) == runFolderSnapshot(root + "/whole" + runName))
    }

    /// Free space that holds a new digits run folder but not 300 passes of it (measured: see docs/reliability.md).
    static let runRoom = 1_000_000
}
