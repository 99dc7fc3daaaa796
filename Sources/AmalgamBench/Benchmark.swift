import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One benchmark: our figure beside a reference measured in the same run, plus peak memory.
struct Benchmark: Sendable {
    let name: String
    let summary: String
    let run: @Sendable (BenchmarkOptions) throws -> Void
}

/// `--key value` options after the benchmark's name.
struct BenchmarkOptions {
    private var values: [String: String] = [:]

    init(_ arguments: [String]) throws {
        var i = 0
        while i < arguments.count {
            let key = arguments[i]
            guard key.hasPrefix("--"), i + 1 < arguments.count else { throw BenchmarkError("expected --option value, got '\(key)'") }
            values[String(key.dropFirst(2))] = arguments[i + 1]
            i += 2
        }
    }

    func string(_ key: String) -> String? { values[key] }

    func double(_ key: String, default value: Double) throws -> Double {
        guard let text = values[key] else { return value }
        guard let v = Double(text) else { throw BenchmarkError("--\(key) needs a number, got '\(text)'") }
        return v
    }
}

/// A benchmark's failure, printed by main.
struct BenchmarkError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Peak resident memory of this process so far, in bytes (getrusage reports KiB on Linux).
func peakRSS() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024
}

/// Seconds taken by `body`.
func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// Bytes as "1.23 GB".
func gigabytes(_ bytes: Int) -> String { String(format: "%.2f GB", Double(bytes) / 1e9) }
