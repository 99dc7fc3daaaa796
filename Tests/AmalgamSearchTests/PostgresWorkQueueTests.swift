import AmalgamSearch
import AmalgamTestSupport
import Foundation
import Testing

/// The run's work queue in PostgreSQL (issue #21): claims under leases judged by the server's clock, results
/// written once, late results of lost leases refused, expired leases requeued. Against the test server.
@Suite(.requires(testPostgres)) struct PostgresWorkQueueTests {
    /// A new run in the test database, and a function that opens another connection to it (another worker).
    func newRun(_ label: String) throws -> (PostgresRunStore, @Sendable () throws -> PostgresRunStore) {
        let url = try testPostgres.require(), run = "queue-\(label)-\(UUID().uuidString.prefix(8))"
        let store = try PostgresRunStore.open(url: url, run: run, kind: "test")
        return (store, { try PostgresRunStore.open(url: url, run: run, kind: "test", create: false) })
    }

    /// Queued, running, done and failed items.
    func counts(_ store: PostgresRunStore) throws -> [Int] {
        let c = try store.workCounts()
        return [c.queued, c.running, c.done, c.failed]
    }

    func remove(_ store: PostgresRunStore) { try? store.execute("DELETE FROM amalgam_runs WHERE id = \(store.runID)") }

    @Test func fourWorkersClaimingAtOnceEvaluateEveryItemExactlyOnce() throws {
        let (store, connect) = try newRun("contention")
        defer { remove(store) }
        let total = 120
        try store.enqueue((0..<total).map { (index: $0, payload: "recipe \($0)") })
        try store.enqueue([(index: 3, payload: "another recipe")])
        final class Tally: @unchecked Sendable {
            let lock = NSLock()
            var seen: [Int: [String]] = [:]
            var failures: [String] = []
        }
        let tally = Tally()
        DispatchQueue.concurrentPerform(iterations: 4) { w in
            do {
                let worker = try connect(), name = "w\(w)"
                while let item = try worker.claim(worker: name, leaseSeconds: 60) {
                    let accepted = try worker.finish(item, worker: name, result: Array(item.payload.utf8))
                    tally.lock.withLock {
                        tally.seen[item.index, default: []].append(name)
                        if !accepted || item.attempt != 1 { tally.failures.append("item \(item.index): accepted \(accepted), attempt \(item.attempt)") }
                    }
                }
            } catch {
                tally.lock.withLock { tally.failures.append("\(error)") }
            }
        }
        let failures = tally.failures, seen = tally.seen
        #expect(failures.isEmpty, "\(failures)")
        #expect(seen.count == total && seen.values.allSatisfy { $0.count == 1 }, "an item was claimed twice or never")
        #expect(try counts(store) == [0, 0, total, 0])
        let results = try store.workResults()
        #expect(results.map(\.index) == Array(0..<total))
        #expect(results.map { String(decoding: $0.bytes, as: UTF8.self) } == (0..<total).map { "recipe \($0)" })
    }

    /// A worker whose lease runs out (it stopped, lost its link, or was killed after its claim committed):
    /// its item is requeued and claimed by another, its heartbeat and late result are refused, and the
    /// result written is the second worker's, once.
    @Test func aLateResultOfAnExpiredLeaseIsRefusedAndTheItemMovesToAnotherWorker() throws {
        let (store, connect) = try newRun("lease")
        defer { remove(store) }
        try store.enqueue([(index: 0, payload: "a"), (index: 1, payload: "b")])
        let slow = try connect(), fast = try connect()
        let lost = try #require(try slow.claim(worker: "slow", leaseSeconds: 0.05))
        #expect(lost.index == 0 && lost.attempt == 1)
        #expect(try slow.heartbeat(lost, leaseSeconds: 0.05), "a live lease is extended")
        #expect(try store.requeueExpired(maxAttempts: 3) == 0, "a live lease is not requeued")
        usleep(300_000)
        #expect(try store.requeueExpired(maxAttempts: 3) == 1)
        #expect(try !slow.heartbeat(lost, leaseSeconds: 60), "the heartbeat of a lost lease says so")
        let moved = try #require(try fast.claim(worker: "fast", leaseSeconds: 60))
        #expect(moved.index == 0 && moved.attempt == 2 && moved.lease != lost.lease)
        #expect(try !slow.finish(lost, worker: "slow", result: [1]), "the late result was accepted")
        #expect(try fast.finish(moved, worker: "fast", result: [2]))
        #expect(try !fast.finish(moved, worker: "fast", result: [3]), "a second finish was accepted")
        #expect(try store.workResults().map { "\($0.index) \($0.attempt) \($0.worker) \($0.bytes)" } == ["0 2 fast [2]"])
        #expect(try counts(store) == [1, 0, 1, 0])
    }

    /// A worker's connection that closes while it holds a lease (a killed process) leaves no lock behind:
    /// the claim was committed, so the next item is claimed at once and the held one after its lease ends.
    @Test func aClaimantThatDisappearsBlocksNothingAndItsItemComesBackAfterTheLease() throws {
        let (store, connect) = try newRun("gone")
        defer { remove(store) }
        try store.enqueue([(index: 0, payload: "a"), (index: 1, payload: "b")])
        do {
            let gone = try connect()
            _ = try #require(try gone.claim(worker: "gone", leaseSeconds: 0.2))
            gone.close()
        }
        let other = try connect()
        #expect(try other.claim(worker: "other", leaseSeconds: 60)?.index == 1)
        #expect(try other.claim(worker: "other", leaseSeconds: 60) == nil, "an item under a live lease was claimed")
        usleep(400_000)
        try store.requeueExpired(maxAttempts: 3)
        let back = try #require(try other.claim(worker: "other", leaseSeconds: 60))
        #expect(back.index == 0 && back.attempt == 2)
    }

    @Test func anItemWhoseLeasesRunOutTooOftenIsMarkedFailed() throws {
        let (store, _) = try newRun("attempts")
        defer { remove(store) }
        try store.enqueue([(index: 0, payload: "a")])
        for attempt in 1...2 {
            let item = try #require(try store.claim(worker: "w", leaseSeconds: 0.01))
            #expect(item.attempt == attempt)
            usleep(100_000)
            #expect(try store.requeueExpired(maxAttempts: 2) == 1)
        }
        #expect(try counts(store) == [0, 0, 0, 1])
        #expect(try store.claim(worker: "w", leaseSeconds: 60) == nil)
    }
}
