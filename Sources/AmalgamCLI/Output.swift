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
