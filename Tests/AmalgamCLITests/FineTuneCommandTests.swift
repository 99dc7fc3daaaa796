import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam finetune` as a user runs it, on the tiny Llama fixtures (a GGUF and its Hugging Face folder).
@Suite(.requires(amalgamProgram))
struct FineTuneCommandTests {
    let gguf = fixturesDirectory + "/gguf/tiny-llama.gguf"
    let folder = fixturesDirectory + "/gguf/tiny-llama-hf"
    let small = ["--seq-len", "16", "--batch-tokens", "32", "--micro-batch-tokens", "32"]

    /// A text file of a few hundred tokens for the tiny tokenizer.
    func trainingText(in directory: String) throws -> String {
        let path = directory + "/train.txt"
        let lines = (0..<40).map { "Line \($0): the quick brown fox jumps over the lazy dog, then rests by the river." }
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A GGUF is read in place (dequantized to f32, as eval and score read it): nothing is converted or left behind.
    @Test func aGGUFIsReadInPlaceWithoutAConvertedCopy() throws {
        let work = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let tmp = work + "/tmp"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        let out = work + "/out"
        let r = try runAmalgam(["finetune", gguf, try trainingText(in: work), out, "--steps", "2"] + small,
                                              environment: ["TMPDIR": tmp + "/"])
        #expect(r.status == 0, "\(r.err)")
        #expect(!r.err.contains("converting"), "\(r.err)")
        #expect(FileManager.default.fileExists(atPath: out + "/config.json"))
        #expect(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
        let left = try FileManager.default.contentsOfDirectory(atPath: tmp)
        #expect(left.isEmpty, "left in TMPDIR: \(left)")
    }

    /// A line printed to standard output reaches a file or pipe while the run goes on, not when it exits.
    @Test func finetunePrintsEachStandardOutputLineWhileTrainingNotAtExit() throws {
        let work = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let data = try trainingText(in: work)
        // Many steps and no step lines: the held-out line printed before training is the only output
        // until the run ends, so a block-buffered stdout would hold it back.
        // A file, like a pipe, is not a terminal: C's stdio would hold `print`ed lines back in 4 KB blocks.
        let log = work + "/stdout.txt"
        let process = try Subprocess(executable: try amalgamProgram.require(),
                                     arguments: ["finetune", folder, data, work + "/out", "--steps", "1000000", "--log-every", "1000000",
                                                 "--eval-data", data] + small,
                                     standardOutput: log)
        defer {
            process.send(SIGKILL)
            process.wait()
        }
        var text = ""
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && process.isRunning {
            text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if text.contains("held-out before") { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        let stillRunning = process.isRunning
        #expect(text.contains("held-out before"), "stdout so far: \(text)")
        #expect(stillRunning, "the line arrived only when the run ended")
    }
}
