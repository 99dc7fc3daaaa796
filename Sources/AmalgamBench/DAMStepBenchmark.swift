import AmalgamCore
import AmalgamModels
import AmalgamSearch
import Foundation

/// `amalgam-bench dam-step`: one DAM step (merge, 2 teacher and 2 merged forwards, backward to the
/// coefficients, KL at T = 2, cosine penalty, clipped AdamW) on a digits-shaped MLP pair, beside the same
/// step in PyTorch autograd (scripts/bench/dam_step_reference.py) with the same threads, plus peak memory.
enum DAMStepBenchmark {
    static let summary = "one DAM step on the digits MLP pair beside the same step in PyTorch autograd"

    static func run(_ arguments: [String]) throws {
        var batch = 64, repeats = 200
        var i = 0
        while i < arguments.count {
            func value() throws -> Int {
                i += 1
                guard i < arguments.count, let v = Int(arguments[i]) else { throw BenchError("\(arguments[i - 1]) needs a number") }
                return v
            }
            switch arguments[i] {
            case "--batch": batch = try value()
            case "--repeats": repeats = try value()
            default: throw BenchError("unknown option \(arguments[i]); options: --batch N --repeats R")
            }
            i += 1
        }
        InferenceBenchmark.relaunchForBLASIfNeeded(threads: nil)
        let classifier = MLPClassifier.digits
        var g = SeededGenerator(seed: 0)
        let sources = (0..<2).map { _ in (0..<classifier.parameterCount).map { _ in 0.1 * g.normal() } }
        let data = (0..<2).map { _ in
            MLPBatch(features: (0..<(batch * 64)).map { _ in Float(g.integer(below: 17)) }, inputs: 64,
                     labels: [Int32](repeating: 0, count: batch))
        }
        var configuration = DAMConfiguration()
        configuration.batchSize = batch
        configuration.steps = 10 + repeats
        let family = try DAMMLPFamily(classifier: classifier, sources: sources)
        let trainer = try DAMTrainer(configuration: configuration, family: family,
                                     datasets: data.map { d in DAMDataset(count: d.count) { d.rows($0) } })
        for _ in 0..<10 { try trainer.trainStep() }
        var best = Double.infinity
        for _ in 0..<repeats { best = min(best, try InferenceBenchmark.time { try trainer.trainStep() }) }
        let threads = ProcessInfo.activeProcessorCountCached
        print("amalgam-bench dam-step: 2 sources × \(batch) examples, MLP 64-256-10, tanh, AdamW, \(threads) threads, best of \(repeats)")
        print(String(format: "  amalgam: %.3f ms per step, peak RSS %.0f MB", best * 1e3, peakMemoryMB()))
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { root.deleteLastPathComponent() }
        let script = root.appendingPathComponent("scripts/bench/dam_step_reference.py").path
        let python = "/opt/refenv/bin/python"
        guard FileManager.default.fileExists(atPath: python) else { print("  PyTorch: skipped (\(python) not found)"); return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "--batch", "\(batch)", "--threads", "\(threads)", "--repeats", "\(repeats)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard let line = String(decoding: output, as: UTF8.self).split(separator: "\n").last,
              let json = try? JSONValue.parse(String(line)), let seconds = json["seconds"]?.doubleValue else {
            print("  PyTorch: failed (exit \(process.terminationStatus))"); return
        }
        let rss = (json["peak_rss_bytes"]?.doubleValue ?? 0) / 1_048_576
        print(String(format: "  PyTorch: %.3f ms per step, peak RSS %.0f MB; amalgam is %.2f× as fast", seconds * 1e3, rss, seconds / best))
    }
}
