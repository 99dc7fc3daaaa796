import AmalgamCore
import AmalgamSearch
import Foundation
import Testing

/// The built `amalgam` program: next to the test bundle, else in `.build/release` or `.build/debug`.
func amalgamBinary() -> String? {
    var candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("amalgam").path]
    var root = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { root.deleteLastPathComponent() }
    candidates += ["release", "debug"].map { root.appendingPathComponent(".build/\($0)/amalgam").path }
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// `amalgam experiment m2n2-digits --run-dir … --resume` killed with SIGKILL at seeded random moments, then
/// resumed until done, ends with the same archive, lineage and table row as an uninterrupted run.
@Suite struct KillResumeTests {
    let passes = 400

    func arguments(_ directory: String, json: String) -> [String] {
        ["experiment", "m2n2-digits", "--setting", "scratch", "--method", "M2N2", "--runs", "1", "--passes", "\(passes)",
         "--data", digitsCSV, "--run-dir", directory, "--resume", "--json", json]
    }

    /// Starts the program and, when `target` is given, kills it with SIGKILL once the run folder has
    /// committed `target` passes (plus `jitter` seconds, so kills land inside steps too), or after `jitter`
    /// seconds when `target` is 0 (during start-up). Returns whether it was killed.
    func launch(_ binary: String, _ arguments: [String], folder: String, target: Int?, jitter: Double) throws -> Bool {
        try launch(binary, arguments, folder: folder, target: target, jitter: jitter, committed: committedPasses)
    }

    /// `launch`, with `committed` counting the folder's committed steps (nil before the folder exists).
    func launch(_ binary: String, _ arguments: [String], folder: String, target: Int?, jitter: Double,
                committed: (String) throws -> Int?) throws -> Bool {
        let process = try Subprocess(executable: binary, arguments: arguments)
        if let target {
            while process.isRunning {
                let done = target == 0 ? 0 : try committed(folder) ?? -1
                if done >= target {
                    usleep(UInt32(jitter * 1e6))
                    process.send(SIGKILL)
                    break
                }
                usleep(500)
            }
        }
        let termination = process.wait()
        if termination == .signaled(SIGKILL) { return true }
        #expect(termination == .exited(0), "amalgam \(arguments.joined(separator: " ")) ended with \(termination)")
        return false
    }

    /// Runs `arguments` (which must resume from `folder`) and kills it at seeded moments: once during
    /// start-up (after up to `startJitter` s), then once the folder has committed each of `kills` increasing
    /// counts below `total` (plus up to `jitter` s). Returns how many kills landed inside the run
    /// (0 < committed < total afterwards).
    func killAtSeededMoments(_ binary: String, _ arguments: [String], folder: String, total: Int, kills: Int, seed: UInt64,
                             startJitter: Double, jitter: Double, committed: (String) throws -> Int?) throws -> Int {
        var generator = SeededGenerator(seed: seed)
        let targets = [0] + (0..<kills).map { _ in 1 + generator.integer(below: total - 1) }.sorted()
        var midRunKills = 0
        for target in targets {
            let wait = (target == 0 ? startJitter : jitter) * generator.uniform()
            if try launch(binary, arguments, folder: folder, target: target, jitter: wait, committed: committed),
               let p = try committed(folder), p > 0, p < total {
                midRunKills += 1
            }
        }
        return midRunKills
    }

    /// Passes committed in the run folder, or nil when the folder does not exist yet.
    func committedPasses(_ path: String) throws -> Int? {
        guard RunFolder.exists(at: path) else { return nil }
        let folder = try RunFolder.open(path: path, kind: "m2n2", durability: .process, claim: false)
        let s = try folder.database.statement("SELECT passes FROM state")
        return try s.step() ? Int(s.int(0)) : nil
    }

    @Test func killedAndResumedRunEqualsUninterruptedRun() throws {
        let binary = try #require(amalgamBinary(), "build the `amalgam` program first (swift build -c release)")
        let root = scratchFolder("kill")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let run = "/" + DigitsExperiment.runFolderName(setting: .scratch, variant: .m2n2, run: 0)
        #expect(try !launch(binary, arguments(root + "/whole", json: root + "/whole.json"), folder: "", target: nil, jitter: 0))

        // Seeded kill points: one during start-up, then at increasing pass counts with sub-millisecond jitter.
        let midRunKills = try killAtSeededMoments(binary, arguments(root + "/parts", json: root + "/parts.json"), folder: root + "/parts" + run,
                                                  total: passes, kills: 6, seed: 2026, startJitter: 0.2, jitter: 0.002,
                                                  committed: committedPasses)
        #expect(midRunKills >= 3, "too few kills landed inside the run to prove anything")
        #expect(try !launch(binary, arguments(root + "/parts", json: root + "/parts.json"), folder: "", target: nil, jitter: 0))
        #expect(try runFolderSnapshot(root + "/parts" + run) == runFolderSnapshot(root + "/whole" + run))
        let a = try JSONValue.parse(String(contentsOfFile: root + "/whole.json", encoding: .utf8))
        let b = try JSONValue.parse(String(contentsOfFile: root + "/parts.json", encoding: .utf8))
        let rowA = try #require(a["rows"]?.arrayValue?.first), rowB = try #require(b["rows"]?.arrayValue?.first)
        #expect(rowA["test_accuracies"] == rowB["test_accuracies"])
        #expect(rowA["train_accuracies"] == rowB["train_accuracies"])
        #expect(rowA["test_accuracy_mean"] == rowB["test_accuracy_mean"])
    }
}
