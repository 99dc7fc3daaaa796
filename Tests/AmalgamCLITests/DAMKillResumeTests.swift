import AmalgamCore
import AmalgamSearch
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam dam CONFIG OUT --resume` killed with SIGKILL at seeded points of its progress (read from the run
/// store while the program is stopped, not from a clock), then resumed until done, writes the same model
/// as an uninterrupted run. The old run folder renamed three files per checkpoint and could be left torn.
@Suite(.requires(amalgamProgram))
struct DAMKillResumeTests {
    let fixtures = fixturesDirectory + "/gguf"
    // 40 steps of a few ms each: enough that polls between steps land inside the run even on a loaded machine.
    let steps = 40

    func configuration(in work: String, name: String) throws -> String {
        let a = work + "/a.txt", b = work + "/b.jsonl"
        if !FileManager.default.fileExists(atPath: a) {
            try String(repeating: "Shall I compare thee to a summer's day? Thou art more lovely and more temperate. ", count: 6)
                .write(toFile: a, atomically: true, encoding: .utf8)
            try (0..<6).map { "{\"text\": \"Of man's first disobedience, and the fruit \($0) of that forbidden tree\"}" }
                .joined(separator: "\n").write(toFile: b, atomically: true, encoding: .utf8)
        }
        let path = work + "/\(name).yml"
        try """
            models:
              - model: \(fixtures)/tiny-llama-hf
                data: \(a)
              - model: \(fixtures)/tiny-llama-q8_0.gguf
                data: \(b)
            steps: \(steps)
            batch_size: 2
            seq_len: 12
            lr: 0.01
            optimiser: mofo
            checkpoint_every: 1
            run_dir: \(work)/\(name)-run
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Steps committed in the DAM run folder, or nil before it exists.
    func committedSteps(_ path: String) throws -> Int? {
        guard RunFolder.exists(at: path) else { return nil }
        return try RunFolder.open(path: path, kind: DAMRunFolder.kind, durability: .process, claim: false).latestStep() ?? 0
    }

    @Test func damKilledAtSeededMomentsAndResumedWritesTheSameModel() throws {
        let binary = try amalgamProgram.require()
        let work = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let whole = try runAmalgam(["dam", try configuration(in: work, name: "whole"), work + "/whole"])
        #expect(whole.status == 0, "\(whole.err)")

        // --overwrite: a launch after the run finished resumes at the last step and writes the same model again.
        let arguments = ["dam", try configuration(in: work, name: "parts"), work + "/parts", "--resume", "--overwrite"]
        let kills = KillResumeTests()
        let midRun = try kills.killAtSeededMoments(binary, arguments, folder: work + "/parts-run", total: steps, kills: 6, seed: 7,
                                                   startPolls: 400, polls: 3, committed: committedSteps)
        #expect(midRun >= 3, "too few kills landed inside the run to prove anything")
        if !FileManager.default.fileExists(atPath: work + "/parts") {
            let last = try runAmalgam(arguments)
            #expect(last.status == 0, "\(last.err)")
        }
        for file in ["model.safetensors", "coefficients.safetensors"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: work + "/whole/" + file))
            let b = try Data(contentsOf: URL(fileURLWithPath: work + "/parts/" + file))
            #expect(a == b, "\(file) differs")
        }
    }
}
