import Foundation

// amalgam-bench BENCHMARK [options]: one file per benchmark, dispatched on the first argument.
let arguments = Array(CommandLine.arguments.dropFirst())
let benchmarks: [String: ([String]) throws -> Void] = [
    "m2n2": m2n2Benchmark,
    "m2n2-parts": m2n2PartsBenchmark,
]
guard let name = arguments.first, let benchmark = benchmarks[name] else {
    print("usage: amalgam-bench BENCHMARK [options]\nbenchmarks: \(benchmarks.keys.sorted().joined(separator: ", "))")
    exit(arguments.isEmpty ? 0 : 2)
}
do {
    try benchmark(Array(arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("amalgam-bench \(name): \(error)\n".utf8))
    exit(1)
}

/// Peak resident memory of this process, in MB.
func peakMemoryMB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// The value after `flag` in `arguments`, if any.
func option(_ flag: String, in arguments: [String]) -> String? {
    guard let i = arguments.firstIndex(of: flag), i + 1 < arguments.count else { return nil }
    return arguments[i + 1]
}
