import AmalgamCore
import Foundation
import PostgresNIO

/// One evaluation claimed from a run's work queue: its index, what to evaluate (a recipe, as text), the
/// attempt number (1 for the first claim) and the lease's token, which fences out a claimant whose lease ran out.
public struct WorkItem: Sendable, Equatable {
    public var index: Int
    public var payload: String
    public var attempt: Int
    public var lease: UUID
}

/// How many of a run's work items are in each state.
public struct WorkCounts: Sendable, Equatable {
    public var queued = 0, running = 0, done = 0, failed = 0
}

/// A result as the queue keeps it: written once per index (the first finish under a live lease).
public struct WorkResult: Sendable, Equatable {
    public var index: Int
    public var attempt: Int
    public var worker: String
    public var bytes: [UInt8]
}

/// The run's work queue (issue #21, `amalgam_work` and `amalgam_results`): items any number of processes
/// claim with `FOR UPDATE SKIP LOCKED` under a lease whose expiry is judged by the server's clock. The claim
/// commits before the work starts (no transaction, so no lock, is held while evaluating); a heartbeat
/// extends the lease; a finish is accepted only under the lease it was claimed with, and writes the result
/// once (primary key, `ON CONFLICT DO NOTHING`); `requeueExpired` puts items whose lease ran out back in the
/// queue (or marks them failed after `maxAttempts`). Used by the CMA-ES coordinator and `amalgam worker`
/// (Evolve/EvolveWorker.swift).
extension PostgresRunStore {
    /// Adds items (index, payload) to the queue; an index already there is left as it is.
    public func enqueue(_ items: [(index: Int, payload: String)]) throws(SearchError) {
        try transaction { () throws(SearchError) in
            for item in items {
                try query("""
                    INSERT INTO amalgam_work (run_id, idx, payload) VALUES (\(runID), \(Int64(item.index)), \(item.payload))
                    ON CONFLICT (run_id, idx) DO NOTHING
                    """)
            }
        }
    }

    /// Claims the queued item of lowest index for `worker` with a lease of `leaseSeconds`, committed before
    /// this returns; nil when none is queued.
    public func claim(worker: String, leaseSeconds: Double) throws(SearchError) -> WorkItem? {
        let rows = try query("""
            WITH c AS (SELECT run_id, idx FROM amalgam_work WHERE run_id = \(runID) AND state = 'queued'
                       ORDER BY idx LIMIT 1 FOR UPDATE SKIP LOCKED)
            UPDATE amalgam_work t SET state = 'running', attempt = t.attempt + 1, worker = \(worker),
                   lease_token = gen_random_uuid(), lease_until = now() + make_interval(secs => \(leaseSeconds))
              FROM c WHERE t.run_id = c.run_id AND t.idx = c.idx
            RETURNING t.idx, t.payload, t.attempt, t.lease_token
            """)
        guard let row = rows.first else { return nil }
        let (index, payload, attempt, lease) = try Self.decoded(at: location) { try row.decode((Int64, String, Int32, UUID).self) }
        return WorkItem(index: Int(index), payload: payload, attempt: Int(attempt), lease: lease)
    }

    /// Extends `item`'s lease to `leaseSeconds` from now; false when the lease was lost (expired and
    /// requeued, or claimed by another): the evaluation should be abandoned.
    public func heartbeat(_ item: WorkItem, leaseSeconds: Double) throws(SearchError) -> Bool {
        let result = try query("""
            UPDATE amalgam_work SET lease_until = now() + make_interval(secs => \(leaseSeconds))
             WHERE run_id = \(runID) AND idx = \(Int64(item.index)) AND state = 'running' AND lease_token = \(item.lease)
            """)
        return result.metadata.rows == 1
    }

    /// Marks `item` done and writes its result, in one transaction, if its lease is still the live one;
    /// false (nothing written) for the late result of a lease that ran out.
    public func finish(_ item: WorkItem, worker: String, result: [UInt8]) throws(SearchError) -> Bool {
        try transaction { () throws(SearchError) -> Bool in
            let fenced = try query("""
                UPDATE amalgam_work SET state = 'done', lease_token = NULL
                 WHERE run_id = \(runID) AND idx = \(Int64(item.index)) AND state = 'running' AND lease_token = \(item.lease)
                """)
            guard fenced.metadata.rows == 1 else { return false }
            try query("""
                INSERT INTO amalgam_results (run_id, idx, attempt, worker, result)
                VALUES (\(runID), \(Int64(item.index)), \(Int32(item.attempt)), \(worker), \(ByteBuffer(bytes: result)))
                ON CONFLICT (run_id, idx) DO NOTHING
                """)
            return true
        }
    }

    /// Puts running items whose lease has run out (by the server's clock) back in the queue, or marks them
    /// failed once they have been claimed `maxAttempts` times; returns how many it changed.
    @discardableResult
    public func requeueExpired(maxAttempts: Int) throws(SearchError) -> Int {
        let result = try query("""
            UPDATE amalgam_work SET state = CASE WHEN attempt >= \(Int32(maxAttempts)) THEN 'failed' ELSE 'queued' END,
                   lease_token = NULL, worker = NULL
             WHERE run_id = \(runID) AND state = 'running' AND lease_until < now()
            """)
        return result.metadata.rows ?? 0
    }

    /// The items of each state.
    public func workCounts() throws(SearchError) -> WorkCounts {
        let rows = try query("SELECT state, count(*) FROM amalgam_work WHERE run_id = \(runID) GROUP BY state")
        var counts = WorkCounts()
        for row in rows {
            let (state, n) = try Self.decoded(at: location) { try row.decode((String, Int64).self) }
            switch state {
            case "queued": counts.queued = Int(n)
            case "running": counts.running = Int(n)
            case "done": counts.done = Int(n)
            default: counts.failed += Int(n)
            }
        }
        return counts
    }

    /// The results written, in index order.
    public func workResults() throws(SearchError) -> [WorkResult] {
        let rows = try query("SELECT idx, attempt, worker, result FROM amalgam_results WHERE run_id = \(runID) ORDER BY idx")
        var out: [WorkResult] = []
        for row in rows {
            let (index, attempt, worker, bytes) = try Self.decoded(at: location) { try row.decode((Int64, Int32, String, ByteBuffer).self) }
            out.append(WorkResult(index: Int(index), attempt: Int(attempt), worker: worker, bytes: Array(bytes.readableBytesView)))
        }
        return out
    }
}
