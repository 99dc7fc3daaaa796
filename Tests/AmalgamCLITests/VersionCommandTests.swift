import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam --version` as a user (or a bug report) reads it: the release version and the commit built.
@Suite(.requires(amalgamProgram))
struct VersionCommandTests {
    @Test func versionNamesTheReleaseAndTheCommitOfThisCheckout() throws {
        let run = try runAmalgam(["--version"])
        #expect(run.status == 0, "\(run.err)")
        let line = run.out.trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
        #expect(parts.count == 2, "\(line)")
        #expect(parts.first?.split(separator: ".").count == 3 && parts.first?.allSatisfy({ $0.isNumber || $0 == "." }) == true, "\(line)")
        // The tests run from a git checkout (a fresh clone in CI): the program must name its HEAD, which the
        // build plugin writes again whenever HEAD moves.
        let git = try Subprocess.run("/usr/bin/git", ["-C", repositoryRoot, "rev-parse", "HEAD"], environment: [:])
        guard case .exited(0) = git.termination else {
            Issue.record("git rev-parse HEAD failed in \(repositoryRoot): \(git.err)")
            return
        }
        let head = git.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(line.hasSuffix("(commit \(head))"), "\(line) should name \(head)")
    }
}
