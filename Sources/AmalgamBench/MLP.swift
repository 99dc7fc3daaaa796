import AmalgamCore
import AmalgamModels
import Foundation

/// `amalgam-bench mlp`: the MLP classifier's forward on the digits batch (1437 × 64 → 256 → 10 by
/// default) beside PyTorch's `addmm` pair on the same shapes in the same run.
enum MLPBenchmark {
    static func run(_ arguments: [String]) throws {
        var rows = 1437, sizes = (64, 256, 10), repeats = 50
        var i = 0
        while i < arguments.count {
            func value() throws -> Int {
                i += 1
                guard i < arguments.count, let v = Int(arguments[i]) else { throw BenchError("\(arguments[i - 1]) needs a number") }
                return v
            }
            switch arguments[i] {
            case "--rows": rows = try value()
            case "--input": sizes.0 = try value()
            case "--hidden": sizes.1 = try value()
            case "--output": sizes.2 = try value()
            case "--repeats": repeats = try value()
            default: throw BenchError("unknown option \(arguments[i]); options: --rows N --input I --hidden H --output O --repeats R")
            }
            i += 1
        }
        InferenceBenchmark.relaunchForBLASIfNeeded(threads: nil)
        let count = MLPLogitsModel.parameterCount(input: sizes.0, hidden: sizes.1, output: sizes.2)
        var state: UInt32 = 7
        func next() -> Float { state = state &* 1_664_525 &+ 1_013_904_223; return Float(state >> 8) / Float(1 << 24) - 0.5 }
        let model = try MLPLogitsModel(inputCount: sizes.0, hiddenCount: sizes.1, outputCount: sizes.2,
                                      parameters: (0..<count).map { _ in next() })
        let x = Matrix(rows: rows, cols: sizes.0, values: (0..<(rows * sizes.0)).map { _ in next() })
        _ = try model.logits(x)
        var best = Double.infinity
        for _ in 0..<repeats { best = min(best, try InferenceBenchmark.time { _ = try model.logits(x) }) }
        let flops = 2.0 * Double(rows) * Double(sizes.0 * sizes.1 + sizes.1 * sizes.2)
        let threads = ProcessInfo.activeProcessorCountCached
        print("amalgam-bench mlp: \(rows) × \(sizes.0) → \(sizes.1) (ReLU) → \(sizes.2), \(threads) threads, best of \(repeats)")
        print("  amalgam: \(String(format: "%.1f", best * 1e6)) µs per forward (\(String(format: "%.1f", flops / best / 1e9)) GFLOP/s)")
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { root.deleteLastPathComponent() }
        let script = root.appendingPathComponent("scripts/bench/mlp_torch.py").path
        let python = "/opt/refenv/bin/python"
        guard FileManager.default.fileExists(atPath: python) else { print("  PyTorch: skipped (\(python) not found)"); return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "--rows", "\(rows)", "--sizes", "\(sizes.0)", "\(sizes.1)", "\(sizes.2)", "--threads", "\(threads)", "--repeats", "\(repeats)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
              let seconds = (try? JSONValue.parse(String(line)))?["seconds"]?.doubleValue else {
            print("  PyTorch: failed (exit \(process.terminationStatus))"); return
        }
        print("  PyTorch: \(String(format: "%.1f", seconds * 1e6)) µs per forward; amalgam is \(String(format: "%.2f", seconds / best))× as fast")
    }
}
