import Foundation

/// `amalgam-bench NAME [options]`: runs one benchmark. To add one, write a file with a `Benchmark` value
/// and list it here.
let benchmarks: [Benchmark] = [
    readCheckpointBenchmark,
]

let arguments = Array(CommandLine.arguments.dropFirst())
guard let name = arguments.first, let benchmark = benchmarks.first(where: { $0.name == name }) else {
    print("usage: amalgam-bench NAME [options]\n\nbenchmarks:")
    for b in benchmarks { print("  \(b.name.padding(toLength: 18, withPad: " ", startingAt: 0)) \(b.summary)") }
    exit(arguments.isEmpty || arguments.first == "--help" ? 0 : 2)
}
do {
    try benchmark.run(BenchmarkOptions(Array(arguments.dropFirst())))
} catch {
    FileHandle.standardError.write(Data("amalgam-bench \(name): \(error)\n".utf8))
    exit(1)
}
