import AmalgamSearch
import Foundation

/// `amalgam-bench queue URL [ITEMS] [EVAL_MS]`: the PostgreSQL work queue's coordination cost. For 1, 2 and 4
/// worker threads (each its own connection, as separate processes would have), ITEMS items are claimed,
/// "evaluated" (a sleep of EVAL_MS, default 0: coordination only) and finished; prints items/s and the
/// milliseconds per item spent in claim + finish (the coordination cost per candidate), median and p99.
enum QueueBenchmark {
    static let summary = "PostgreSQL work queue: items/s and claim+finish ms per item, 1/2/4 workers (URL [ITEMS] [EVAL_MS])"

    static func run(_ arguments: [String]) throws {
        guard let url = arguments.first else { throw BenchError("usage: amalgam-bench queue postgres://USER@HOST:PORT/DB [ITEMS] [EVAL_MS]") }
        let items = arguments.count > 1 ? Int(arguments[1]) ?? 400 : 400
        let evalMS = arguments.count > 2 ? Double(arguments[2]) ?? 0 : 0
        print("items \(items), evaluation \(evalMS) ms (sleep), server \(PostgresAddress.displayed(url))")
        print("workers  items/s  claim+finish ms median  p99")
        for workers in [1, 2, 4] {
            let run = "bench-queue-\(workers)-\(UUID().uuidString.prefix(8))"
            let store = try PostgresRunStore.open(url: url, run: run, kind: "bench")
            defer { try? store.execute("DELETE FROM amalgam_runs WHERE id = \(store.runID)") }
            try store.enqueue((0..<items).map { (index: $0, payload: "candidate \($0)") })
            final class Tally: @unchecked Sendable { let lock = NSLock(); var ms: [Double] = []; var failure: String? }
            let tally = Tally()
            let started = DispatchTime.now().uptimeNanoseconds
            // One thread per worker (concurrentPerform would run at most one per core).
            let group = DispatchGroup()
            for w in 0..<workers {
                group.enter()
                Thread {
                    defer { group.leave() }
                    do {
                        let worker = try PostgresRunStore.open(url: url, run: run, kind: "bench", create: false)
                        var mine: [Double] = []
                        while true {
                            let t0 = DispatchTime.now().uptimeNanoseconds
                            guard let item = try worker.claim(worker: "w\(w)", leaseSeconds: 60) else { break }
                            let t1 = DispatchTime.now().uptimeNanoseconds
                            if evalMS > 0 { usleep(useconds_t(evalMS * 1000)) }
                            let t2 = DispatchTime.now().uptimeNanoseconds
                            guard try worker.finish(item, worker: "w\(w)", result: [UInt8](repeating: 1, count: 64)) else { throw BenchError("lease lost") }
                            let t3 = DispatchTime.now().uptimeNanoseconds
                            mine.append(Double(t1 - t0 + t3 - t2) / 1e6)
                        }
                        tally.lock.withLock { tally.ms += mine }
                    } catch {
                        tally.lock.withLock { tally.failure = "\(error)" }
                    }
                }.start()
            }
            group.wait()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            if let failure = tally.failure { throw BenchError(failure) }
            let ms = tally.ms.sorted()
            guard ms.count == items else { throw BenchError("\(ms.count) items done of \(items)") }
            print(String(format: "%7d  %7.1f  %22.2f  %5.2f", workers, Double(items) / seconds, ms[ms.count / 2], ms[min(ms.count - 1, ms.count * 99 / 100)]))
        }
    }
}
