import Foundation

// `amalgam-bench NAME [ARGS]`: each benchmark prints our figure beside a reference measured in the same run.
let benchmarks: [String: ([String]) -> Void] = [
    "dequant": DequantBench.run,
]
let arguments = Array(CommandLine.arguments.dropFirst())
if let name = arguments.first, let bench = benchmarks[name] {
    bench(Array(arguments.dropFirst()))
} else {
    print("usage: amalgam-bench NAME [ARGS]; benchmarks: \(benchmarks.keys.sorted().joined(separator: ", "))")
}
