import Foundation

// amalgam-bench BENCHMARK [options]: one file per benchmark, each printing our figure beside a
// reference measured in the same run.
let benchmarks: [String: ([String]) throws -> Void] = [
    "inference": InferenceBenchmark.run,
    "mlp": MLPBenchmark.run,
]

let arguments = Array(CommandLine.arguments.dropFirst())
guard let name = arguments.first, let benchmark = benchmarks[name] else {
    FileHandle.standardError.write(Data("usage: amalgam-bench BENCHMARK [options]; benchmarks: \(benchmarks.keys.sorted().joined(separator: ", "))\n".utf8))
    exit(2)
}
do {
    try benchmark(Array(arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("amalgam-bench \(name): \(error)\n".utf8))
    exit(1)
}
