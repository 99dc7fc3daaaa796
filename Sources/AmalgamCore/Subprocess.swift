#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A child process started with `posix_spawn`.
///
/// Foundation's `Process.run()` on Linux (swift-corelibs-foundation before PR #5472) can read past a buffer
/// while it closes the parent's descriptors and kill the calling process now and then; programs and tests
/// that start many children use this instead. The child gets the parent's environment, an empty signal mask
/// and default signal actions (a parent that blocks or ignores signals does not pass that on), and its
/// standard output and error go to files (or `/dev/null`), so nothing can fill a pipe and stall it.
public final class Subprocess: @unchecked Sendable {
    /// How a child ended.
    public enum Termination: Equatable, Sendable {
        case exited(Int32)
        case signaled(Int32)
    }

    public let pid: pid_t
    private let lock = Lock()
    private var ended: Termination?

    /// Starts `executable` with `arguments`; standard input is `/dev/null`, standard output and error go to
    /// the given files (created or truncated), or to `/dev/null` when nil; `environment` adds to (or
    /// replaces entries of) the parent's environment.
    public init(executable: String, arguments: [String], standardOutput: String? = nil, standardError: String? = nil,
                environment: [String: String] = [:]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, standardOutput ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, standardError ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        let variables = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let envp: [UnsafeMutablePointer<CChar>?] = variables.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in envp { free(p) } }
        var child = pid_t()
        let status = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard status == 0 else {
            throw SubprocessError(message: "\(executable): cannot start it (\(String(cString: strerror(status)))); check the path and that it is executable")
        }
        pid = child
    }

    /// Whether the child is still running (reaps it when it has ended).
    public var isRunning: Bool {
        lock.withLock {
            if ended != nil { return false }
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { ended = Self.termination(status); return false }
            return r == 0
        }
    }

    /// Sends `signal` to the child (nothing when it has already been reaped).
    public func send(_ signal: Int32) {
        lock.withLock { if ended == nil { _ = kill(pid, signal) } }
    }

    /// Waits for the child to end.
    @discardableResult
    public func wait() -> Termination {
        lock.withLock {
            if let ended { return ended }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            let t = Self.termination(status)
            ended = t
            return t
        }
    }

    private static func termination(_ status: Int32) -> Termination {
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import as functions.
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }

    /// Runs `executable` to the end and returns how it ended with its standard output and error as text.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws
        -> (termination: Termination, out: String, err: String) {
        var template = Array((NSTemporaryDirectory() + "/amalgam-subprocess-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) != nil }) else {
            throw SubprocessError(message: "\(NSTemporaryDirectory()): cannot create a temporary folder for \(executable)'s output; check TMPDIR")
        }
        let folder = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let base = folder + "/child"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let child = try Subprocess(executable: executable, arguments: arguments, standardOutput: base + ".out", standardError: base + ".err",
                                   environment: environment)
        let termination = child.wait()
        let out = (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? ""
        return (termination, out, err)
    }
}

public struct SubprocessError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
