import AmalgamSearch
import ArgumentParser
import Foundation

/// The run store a command names: `--store`, else the environment's `AMALGAM_STORE` (empty counts as unset).
func runStoreURL(_ store: String?) -> String? {
    store ?? ProcessInfo.processInfo.environment["AMALGAM_STORE"].flatMap { $0.isEmpty ? nil : $0 }
}

/// How a process claims candidates from a run's work queue: `amalgam worker`, and `amalgam evolve --workers`
/// when the coordinator evaluates too.
struct ClaimOptions: ParsableArguments {
    @Option(help: "The lease (seconds) of a claimed candidate; a heartbeat extends it every third of it, and a claimant that stops heartbeating loses its candidate when it runs out. (evolve: with --workers)")
    var lease: Double = 60

    @Option(help: "Claims of one candidate at most; after as many expired leases it is marked failed and the run stops with an error. (evolve: with --workers)")
    var maxAttempts: Int = 3

    @Option(help: .hidden)
    var testDelayMs: Int = 0

    /// Refuses a lease under a second or no attempt at all.
    func check() throws {
        guard lease >= 1, lease.isFinite else { throw CLIInputError("--lease \(lease): give at least 1 second") }
        guard maxAttempts >= 1 else { throw CLIInputError("--max-attempts \(maxAttempts): give at least 1") }
    }

    /// `settings`, with the lease and attempts given here (and the tests' delay before evaluating).
    func applied(to settings: ClaimSettings) -> ClaimSettings {
        var s = settings
        s.leaseSeconds = lease
        s.maxAttempts = maxAttempts
        s.delayBeforeEvaluation = Double(testDelayMs) / 1000
        return s
    }
}
