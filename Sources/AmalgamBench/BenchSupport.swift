import Foundation

/// Peak resident memory of this process so far, in bytes (getrusage's ru_maxrss is in KiB on Linux).
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024
}

/// Reads `--name value` style options.
struct BenchArguments {
    let values: [String: String]
    init(_ args: [String]) {
        var v: [String: String] = [:]
        var i = 0
        while i < args.count {
            if args[i].hasPrefix("--"), i + 1 < args.count { v[String(args[i].dropFirst(2))] = args[i + 1]; i += 2 } else { i += 1 }
        }
        values = v
    }
    func string(_ k: String, _ d: String) -> String { values[k] ?? d }
    func int(_ k: String, _ d: Int) -> Int { values[k].flatMap(Int.init) ?? d }
    func double(_ k: String, _ d: Double) -> Double { values[k].flatMap(Double.init) ?? d }
}

/// A benchmark that cannot run, with what to do.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Peak resident memory of this process, in MB.
func peakMemoryMB() -> Double { Double(peakResidentBytes()) / 1_048_576 }

/// The value after `flag` in `arguments`, if any.
func option(_ flag: String, in arguments: [String]) -> String? {
    guard let i = arguments.firstIndex(of: flag), i + 1 < arguments.count else { return nil }
    return arguments[i + 1]
}
