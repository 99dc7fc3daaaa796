import AmalgamCore
import AmalgamModels
import Foundation

/// Relaunches this process with `OPENBLAS_CORETYPE` set when OpenBLAS would otherwise pick slow kernels
/// (it reads the variable only when it loads). Returns if the relaunch is not needed or fails.
func relaunchWithOpenBLASCoreTypeIfNeeded() {
    guard let core = OpenBLASCoreType.recommendedRelaunch else { return }
    setenv("OPENBLAS_CORETYPE", core, 1)
    execv("/proc/self/exe", CommandLine.unsafeArgv)
}

/// Token ids from a JSON array such as `[1, 2, 3]`.
func parseTokenIds(_ text: String, what: String) throws -> [Int] {
    guard let array = (try? JSONValue.parse(text))?.arrayValue else {
        throw CLIInputError("\(what): expected a JSON array of token ids like [1, 2, 3], got '\(text.prefix(80))'")
    }
    return try array.map { value in
        guard let id = value.intValue, id >= 0 else {
            throw CLIInputError("\(what): '\(value.compactText())' is not a token id (a non-negative integer)")
        }
        return id
    }
}

/// A message for bad command-line input, printed as is.
struct CLIInputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
