import AmalgamCore
import Foundation

/// The folder of the running test bundle: the build folder (`.build/<triple>/<configuration>`) the test
/// command just built into.
public let testBuildFolder: String = {
    // /proc/self/exe is the bundle's executable itself, whatever the working folder or how it was started.
    if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        return URL(fileURLWithPath: resolved).deletingLastPathComponent().path
    }
    return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
}()

/// The `amalgam` program of the same build as the tests: next to the test bundle, never from another build
/// folder (which could hold a stale program).
public let amalgamProgram = RequiredInput(
    name: "the amalgam program", path: testBuildFolder + "/amalgam",
    remedy: "build it with the tests in one step: scripts/test.sh, or "
        + "swift build -c release --build-tests -Xswiftc -target-cpu -Xswiftc native then swift test --skip-build with the same flags",
    executable: true)

/// How one run of `amalgam` ended.
public struct CommandRun: Sendable {
    /// The exit status, or -1 when a signal ended it.
    public let status: Int32
    public let termination: Subprocess.Termination
    public let out: String
    public let err: String
}

/// Runs the `amalgam` of this build with `arguments` (and extra `environment` variables) to the end.
public func runAmalgam(_ arguments: [String], environment: [String: String] = [:]) throws -> CommandRun {
    let binary = try amalgamProgram.require()
    let run = try Subprocess.run(binary, arguments, environment: environment)
    guard case .exited(let status) = run.termination else {
        return CommandRun(status: -1, termination: run.termination, out: run.out, err: run.err + "\n(killed by \(run.termination))")
    }
    return CommandRun(status: status, termination: run.termination, out: run.out, err: run.err)
}
