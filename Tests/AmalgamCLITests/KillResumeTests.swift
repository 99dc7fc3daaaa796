import AmalgamCore
import AmalgamLab
import AmalgamSearch
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam experiment m2n2-digits --run-dir … --resume` killed with SIGKILL at seeded random moments, then
/// resumed until done, ends with the same archive, lineage and table row as an uninterrupted run.
@Suite struct KillResumeTests {
    let passes = 400

    func arguments(_ directory: String, json: String) -> [String] {
        ["experiment", "m2n2-digits", "--setting", "scratch", "--method", "M2N2", "--runs", "1", "--passes", "\(passes)",
         "--data", digitsCSV, "--run-dir", directory, "--resume", "--json", json]
    }

    /// Starts the program and, when `target` is given, kills it with SIGKILL once the run folder has
    /// committed `target` passes and the program has then been let run for `polls` more polls (so kills
    /// land inside steps too); with `target` 0, after `polls` polls (during start-up) or at its first
    /// commit, whichever comes first. Returns whether it was killed.
    func launch(_ binary: String, _ arguments: [String], folder: String, target: Int?, polls: Int) throws -> Bool {
        try launch(binary, arguments, folder: folder, target: target, polls: polls, committed: committedPasses)
    }

    /// `launch`, with `committed` counting the folder's committed steps (nil before the folder exists).
    ///
    /// The kill moment is set by the run's progress, not by a clock: at each poll the program is stopped
    /// (SIGSTOP), its committed count read while it cannot move, and it is then killed or let go on
    /// (SIGCONT). A slow or loaded machine changes how long this takes, not where the kills land in the
    /// run's progress.
    func launch(_ binary: String, _ arguments: [String], folder: String, target: Int?, polls: Int,
                committed: (String) throws -> Int?) throws -> Bool {
        let errors = temporaryFolder("launch") + ".err"
        defer { try? FileManager.default.removeItem(atPath: errors) }
        let process = try Subprocess(executable: binary, arguments: arguments, standardOutput: "/dev/null", standardError: errors)
        if let target {
            var extra = polls
            while process.isRunning {
                process.send(SIGSTOP)
                // A reading can fail while the stopped program holds the database's locks (SQLite answers
                // SQLITE_PROTOCOL or BUSY): that poll has no reading and the program goes on.
                let done = (try? committed(folder)) ?? -1
                if target == 0 || done >= target {
                    // A start-up kill comes at the first commit at the latest: on a fast machine a short run
                    // can otherwise finish within the start-up polls, and no later kill lands inside it.
                    if extra == 0 || (target == 0 && done > 0) {
                        process.send(SIGKILL)
                        break
                    }
                    extra -= 1
                }
                process.send(SIGCONT)
                usleep(200)
            }
        }
        let termination = process.wait()
        if termination == .signaled(SIGKILL) { return true }
        let said = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(termination == .exited(0), "amalgam \(arguments.joined(separator: " ")) ended with \(termination): \(said)")
        return false
    }

    /// Runs `arguments` (which must resume from `folder`) and kills it at seeded points of its progress:
    /// once during start-up (after up to `startPolls` polls), then once the folder has committed each of
    /// `kills` increasing counts below `total` (plus up to `polls` polls). Returns how many kills landed
    /// inside the run (0 < committed < total afterwards).
    func killAtSeededMoments(_ binary: String, _ arguments: [String], folder: String, total: Int, kills: Int, seed: UInt64,
                             startPolls: Int, polls: Int, committed: (String) throws -> Int?) throws -> Int {
        var generator = SeededGenerator(seed: seed)
        let targets = [0] + (0..<kills).map { _ in 1 + generator.integer(below: total - 1) }.sorted()
        var midRunKills = 0
        for target in targets {
            let extra = generator.integer(below: (target == 0 ? startPolls : polls) + 1)
            if try launch(binary, arguments, folder: folder, target: target, polls: extra, committed: committed),
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

    @Test(.requires(amalgamProgram))
    func m2n2DigitsKilledAtSeededMomentsAndResumedEndsAsAnUninterruptedRun() throws {
        let binary = try amalgamProgram.require()
        let root = temporaryFolder("kill")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let run = "/" + DigitsExperiment.runFolderName(setting: .scratch, variant: .m2n2, run: 0)
        #expect(try !launch(binary, arguments(root + "/whole", json: root + "/whole.json"), folder: "", target: nil, polls: 0))

        // Seeded kill points: one during start-up, then at increasing pass counts, a few polls later.
        let midRunKills = try killAtSeededMoments(binary, arguments(root + "/parts", json: root + "/parts.json"), folder: root + "/parts" + run,
                                                  total: passes, kills: 6, seed: 2026, startPolls: 800, polls: 4,
                                                  committed: committedPasses)
        #expect(midRunKills >= 3, "too few kills landed inside the run to prove anything")
        #expect(try !launch(binary, arguments(root + "/parts", json: root + "/parts.json"), folder: "", target: nil, polls: 0))
        #expect(try runFolderSnapshot(root + "/parts" + run) == runFolderSnapshot(root + "/whole" + run))
        let a = try JSONValue.parse(String(contentsOfFile: root + "/whole.json", encoding: .utf8))
        let b = try JSONValue.parse(String(contentsOfFile: root + "/parts.json", encoding: .utf8))
        let rowA = try #require(a["rows"]?.arrayValue?.first), rowB = try #require(b["rows"]?.arrayValue?.first)
        #expect(rowA["test_accuracies"] == rowB["test_accuracies"])
        #expect(rowA["train_accuracies"] == rowB["train_accuracies"])
        #expect(rowA["test_accuracy_mean"] == rowB["test_accuracy_mean"])
    }
}
