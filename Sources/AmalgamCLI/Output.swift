import AmalgamCore
import Foundation

/// Writes a line to standard error (progress, warnings), leaving standard output for results.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Writes a result line to standard output at once (unbuffered), so the lines of a long command reach a pipe or a
/// log file as they are printed; `print` leaves a non-terminal stdout in C's 4 KB blocks until the process ends.
/// A command that uses it writes all its standard output through it, so the lines keep their order.
func printLine(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// Whether standard error is a terminal (progress lines are drawn only then).
let standardErrorIsTerminal: Bool = isatty(2) != 0

/// Human-readable byte count.
func formatBytes(_ n: Int) -> String { byteCountText(n) }

/// Human-readable count (parameters).
func formatCount(_ n: Int) -> String {
    switch n {
    case 1_000_000_000...: return String(format: "%.2fB", Double(n) / 1e9)
    case 1_000_000...: return String(format: "%.1fM", Double(n) / 1e6)
    case 1_000...: return String(format: "%.1fK", Double(n) / 1e3)
    default: return "\(n)"
    }
}

/// The one progress renderer of every long job (merge, eval, evolve, dam, finetune, extract-lora, experiments).
/// On a terminal: one line on standard error, redrawn in place (at most ten times a second, and always at the
/// last step), ending in the ETA. When standard error is not a terminal (a pipe, a log): one line per step
/// (at most one a second, and always the last), unless the job prints its own line per step (`piped: false`).
final class ProgressDisplay: @unchecked Sendable {
    private let label: String
    private let terminal: Bool
    private let piped: Bool
    private let bytes: Bool
    private let lock = Lock()
    private var lastDraw = -Double.infinity
    private var drawn = false
    /// When and at which step the first update came: the ETA is the pace since then.
    private var first: (time: Double, done: Int)?

    /// `enabled: false` (`--quiet`) draws nothing; `piped: false` draws only on a terminal; `bytes: true`
    /// shows the counts as byte sizes (1.20 GB / 14.48 GB).
    init(label: String, enabled: Bool = true, piped: Bool = true, bytes: Bool = false) {
        self.label = label
        self.bytes = bytes
        self.terminal = enabled && standardErrorIsTerminal
        self.piped = enabled && piped && !standardErrorIsTerminal
    }

    /// `done` of `total` steps; `detail`, the job's figures; `eta` in seconds (nil: from the pace since the first update).
    func update(done: Int, total: Int, unit: String = "", detail: String = "", eta: Double? = nil) {
        guard terminal || piped else { return }
        lock.withLock {
            let now = Date().timeIntervalSinceReferenceDate
            if first == nil { first = (now, done) }
            let last = done >= total
            guard now - lastDraw >= (terminal ? 0.1 : 1) || last else { return }
            lastDraw = now
            var remaining = eta
            if remaining == nil, let first, done > first.done, now > first.time {
                remaining = (now - first.time) / Double(done - first.done) * Double(max(total - done, 0))
            }
            var text = "[\(label)] " + (bytes ? "\(formatBytes(done)) / \(formatBytes(total))" : "\(done)/\(total)")
                + (unit.isEmpty ? "" : " " + unit)
            if !detail.isEmpty { text += "  " + detail }
            text += "  ETA " + (remaining.map(formatDuration) ?? "?")
            if terminal {
                FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
                drawn = true
            } else {
                FileHandle.standardError.write(Data((text + "\n").utf8))
            }
        }
    }

    /// Ends the line on a terminal (before other output, and at the end).
    func finish() {
        lock.withLock {
            if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
            drawn = false
        }
    }

    /// Removes the line on a terminal (for output that replaces it).
    func clear() {
        lock.withLock {
            if drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            drawn = false
        }
    }
}
