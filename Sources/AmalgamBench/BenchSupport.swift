import AmalgamCore
import AmalgamModels
import Foundation

// What every benchmark does the same way: read its options, set up threads, time, report peak memory
// and run its reference script in the Python environment.

/// Peak resident memory of this process so far, in bytes (getrusage's ru_maxrss is in KiB on Linux).
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024
}

/// Peak resident memory of this process, in MB.
func peakMemoryMB() -> Double { Double(peakResidentBytes()) / 1_048_576 }

/// A benchmark's `--name value` options and `--flag` flags. With `options` given, anything else is an
/// error listing what the benchmark takes.
struct BenchArguments {
    let values: [String: String]
    let flags: Set<String>

    /// Reads `args`; `options` (names without `--`) take a value, `flags` do not. When `options` is nil
    /// every `--name value` pair is read and nothing is rejected.
    init(_ args: [String], options: [String]? = nil, flags: [String] = []) throws {
        var v: [String: String] = [:], f = Set<String>()
        var i = 0
        while i < args.count {
            let name = args[i].hasPrefix("--") ? String(args[i].dropFirst(2)) : ""
            if flags.contains(name) {
                f.insert(name)
                i += 1
            } else if !name.isEmpty, options?.contains(name) ?? true {
                guard i + 1 < args.count else { throw BenchError("\(args[i]) needs a value") }
                v[name] = args[i + 1]
                i += 2
            } else if options == nil {
                i += 1
            } else {
                let known = (options ?? []).map { "--\($0) VALUE" } + flags.map { "--\($0)" }
                throw BenchError("unknown option \(args[i]); options: \(known.joined(separator: " "))")
            }
        }
        values = v
        self.flags = f
    }

    /// The value of `--name`, if given.
    subscript(_ name: String) -> String? { values[name] }
    func string(_ k: String, _ d: String) -> String { values[k] ?? d }
    func has(_ flag: String) -> Bool { flags.contains(flag) }

    /// The integer value of `--name`, `d` when absent; not a number is an error.
    func int(_ k: String, _ d: Int) throws -> Int {
        guard let text = values[k] else { return d }
        guard let v = Int(text) else { throw BenchError("--\(k) needs a whole number, got '\(text)'") }
        return v
    }

    func double(_ k: String, _ d: Double) throws -> Double {
        guard let text = values[k] else { return d }
        guard let v = Double(text) else { throw BenchError("--\(k) needs a number, got '\(text)'") }
        return v
    }
}

/// A benchmark that cannot run, with what to do.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Sets OPENBLAS_CORETYPE (and the thread counts when `threads` is given) and relaunches this process
/// when needed (OpenBLAS reads them only when it loads); returns the threads the benchmark runs on.
@discardableResult
func prepareThreads(_ threads: Int? = nil) -> Int {
    var needed = false
    if let core = OpenBLASCoreType.recommendedRelaunch { setenv("OPENBLAS_CORETYPE", core, 1); needed = true }
    if let threads, ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"] != "\(threads)" {
        setenv("OPENBLAS_NUM_THREADS", "\(threads)", 1)
        setenv("AMALGAM_THREADS", "\(threads)", 1)
        needed = true
    }
    if needed { execv("/proc/self/exe", CommandLine.unsafeArgv) }
    return ProcessInfo.activeProcessorCountCached
}

/// Wall seconds of `body`.
func wallSeconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// CPU time used so far by every thread of this process.
func processCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// The 1-, 5- and 15-minute load averages, as /proc/loadavg gives them.
func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}

/// The repository's root folder, found from this source file (reference scripts are under scripts/).
let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// The reference environment's Python: `$AMALGAM_REFENV/bin/python`, by default under the user's cache folder
/// (`${XDG_CACHE_HOME:-$HOME/.cache}/amalgam/refenv`), the place `scripts/refenv.sh` builds it.
let referencePython: String = {
    let environment = ProcessInfo.processInfo.environment
    if let folder = environment["AMALGAM_REFENV"], !folder.isEmpty { return folder + "/bin/python" }
    let cache = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
        ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.cache"
    return cache + "/amalgam/refenv/bin/python"
}()

/// Runs a reference script (`script` relative to the repository root) with the reference Python and
/// returns the JSON it prints as the last line of its standard output; throws why not (Python or the
/// script missing, the exit status and the end of its output), to print in place of the figure.
func runReference(_ script: String, _ arguments: [String], python: String = referencePython) throws(BenchError) -> JSONValue {
    let path = repositoryRoot + "/" + script
    guard FileManager.default.isExecutableFile(atPath: python) else { throw BenchError("skipped: \(python) not found (build it with scripts/refenv.sh)") }
    guard FileManager.default.fileExists(atPath: path) else { throw BenchError("skipped: \(path) not found") }
    // posix_spawn, not Foundation's Process (whose run() can crash the caller on this toolchain; see Subprocess).
    let result: (termination: Subprocess.Termination, out: String, err: String)
    do { result = try Subprocess.run(python, [path] + arguments) } catch { throw BenchError("failed to start \(python): \(error)") }
    guard result.termination == .exited(0), let line = result.out.split(separator: "\n").last,
          let json = try? JSONValue.parse(String(line)) else {
        throw BenchError("failed (\(result.termination)): \(result.out.suffix(200))\(result.err.suffix(200))")
    }
    return json
}

/// The number `key` of a reference's JSON output; throws naming the key when it is missing.
func referenceNumber(_ json: JSONValue, _ key: String) throws(BenchError) -> Double {
    guard let v = json[key]?.doubleValue else { throw BenchError("no \"\(key)\" in its output") }
    return v
}

/// Wall and CPU seconds (all threads) of `body`; the CPU figure stays meaningful when other processes
/// compete for the cores.
func wallAndCPUSeconds(_ body: () throws -> Void) rethrows -> (wall: Double, cpu: Double) {
    let c0 = processCPUSeconds()
    let wall = try wallSeconds(body)
    return (wall, processCPUSeconds() - c0)
}

/// The numbers of a reference's JSON object (others, such as version strings, left out).
func referenceNumbers(_ json: JSONValue) -> [String: Double] {
    var numbers: [String: Double] = [:]
    for (k, v) in json.objectValue ?? JSONObject() { if let d = v.doubleValue { numbers[k] = d } }
    return numbers
}
