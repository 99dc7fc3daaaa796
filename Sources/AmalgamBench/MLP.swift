import AmalgamCore
import AmalgamLab
import AmalgamModels
import Foundation

/// `amalgam-bench mlp`: the MLP classifier's forward on the digits batch (1437 × 64 → 256 → 10 by
/// default) beside PyTorch's `addmm` pair on the same shapes in the same run.
enum MLPBenchmark {
    static func run(_ arguments: [String]) throws {
        let a = try BenchArguments(arguments, options: ["rows", "input", "hidden", "output", "repeats"])
        let rows = try a.int("rows", 1437), repeats = try a.int("repeats", 50)
        let sizes = (try a.int("input", 64), try a.int("hidden", 256), try a.int("output", 10))
        let threads = prepareThreads()
        let count = MLPLogitsModel.parameterCount(input: sizes.0, hidden: sizes.1, output: sizes.2)
        var state: UInt32 = 7
        func next() -> Float { state = state &* 1_664_525 &+ 1_013_904_223; return Float(state >> 8) / Float(1 << 24) - 0.5 }
        let model = try MLPLogitsModel(inputCount: sizes.0, hiddenCount: sizes.1, outputCount: sizes.2,
                                      parameters: (0..<count).map { _ in next() })
        let x = Matrix(rows: rows, cols: sizes.0, values: (0..<(rows * sizes.0)).map { _ in next() })
        _ = try model.logits(x)
        var best = Double.infinity
        for _ in 0..<repeats { best = min(best, try wallSeconds { _ = try model.logits(x) }) }
        let flops = 2.0 * Double(rows) * Double(sizes.0 * sizes.1 + sizes.1 * sizes.2)
        print("amalgam-bench mlp: \(rows) × \(sizes.0) → \(sizes.1) (ReLU) → \(sizes.2), \(threads) threads, best of \(repeats)")
        print("  amalgam: \(String(format: "%.1f", best * 1e6)) µs per forward (\(String(format: "%.1f", flops / best / 1e9)) GFLOP/s)")
        do {
            let json = try runReference("scripts/bench/mlp_torch.py", ["--rows", "\(rows)", "--sizes", "\(sizes.0)", "\(sizes.1)", "\(sizes.2)",
                                                                       "--threads", "\(threads)", "--repeats", "\(repeats)"])
            let seconds = try referenceNumber(json, "seconds")
            print("  PyTorch: \(String(format: "%.1f", seconds * 1e6)) µs per forward; amalgam is \(String(format: "%.2f", seconds / best))× as fast")
        } catch {
            print("  PyTorch: \(error)")
        }
    }
}
