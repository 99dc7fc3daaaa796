import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A team of worker threads that stay alive between parallel regions, for hot loops that split sub-millisecond
/// work over the cores thousands of times a second (the M2N2 digits pass: 0.5 ms, two regions).
///
/// `parallelChunks` hands each region to Dispatch, which wakes a sleeping worker: on these virtual machines a
/// wake-up costs tens of microseconds (an inter-processor interrupt through the hypervisor), a large share of
/// a 0.25 ms region. The team's workers instead spin for a short while (`spinSeconds`) after each region,
/// watching for the next one and yielding the core (`sched_yield`) between looks, and only then sleep on a
/// condition variable. The work is split exactly as
/// `parallelChunks` splits it (same chunk ranges, claimed in any order), so results are the same bytes.
///
/// One region runs at a time: a call made while the team is busy (another thread's region, or a call from
/// inside a region), or to a team of one thread, runs through `parallelChunks` instead.
public final class ParallelTeam: @unchecked Sendable {
    /// The process's team: of `ProcessInfo.activeProcessorCountCached` threads (the caller and the workers);
    /// with `AMALGAM_PARALLEL_TEAM=0` in the environment, of the caller alone, every region then running through
    /// `parallelChunks` (Dispatch). On by default since its workers yield the core while they spin: without the
    /// yield, a from-scratch digits run under load was 30–50 % slower than through Dispatch; with it, as fast
    /// or faster (README, M2N2 digits).
    public static let shared = ParallelTeam(
        threads: ProcessInfo.processInfo.environment["AMALGAM_PARALLEL_TEAM"] == "0" ? 1 : ProcessInfo.activeProcessorCountCached)
    /// Threads taking part in a region, the caller included.
    public let threads: Int
    /// How long an idle worker keeps watching for the next region before it sleeps.
    public static let spinSeconds = 0.0005

    /// generation << 32 | chunks << 16 | next chunk to claim.
    private let ticket = Atomic<UInt64>(0)
    /// Chunks finished by the workers in the current generation.
    private let finished = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    /// The region's element count and body; written before the ticket publishes them.
    private var count = 0
    private var body: (@Sendable (Range<Int>) -> Void)?
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    /// A team of `threads` threads (the caller and `threads − 1` workers, started now).
    public init(threads: Int) {
        self.threads = max(1, threads)
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        for _ in 1..<self.threads {
            let worker = Thread { [self] in workerLoop() }
            worker.stackSize = 1 << 20
            worker.start()
        }
    }

    /// Runs `body` over `0..<count` in chunks, as `parallelChunks(count, minimumChunk:)` would (the same
    /// chunk ranges), on the team's threads.
    public func chunks(_ count: Int, minimumChunk: Int = 1 << 16, _ body: @Sendable (Range<Int>) -> Void) {
        // `parallelChunks`'s split (its thread count, not the team's), so that both give the same ranges.
        let chunks = min(0xFFFF, parallelChunkCount(count, minimumChunk: minimumChunk))
        if chunks == 1 { body(0..<count); return }
        guard threads > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            parallelChunks(count, minimumChunk: minimumChunk, body)
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { escaping in
            self.body = escaping
            self.count = count
            finished.store(0, ordering: .relaxed)
            let generation = (ticket.load(ordering: .relaxed) >> 32) &+ 1
            ticket.store(generation << 32 | UInt64(chunks) << 16, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(condition)
                pthread_mutex_unlock(mutex)
            }
            let mine = work(generation: generation)
            var spins = 0
            while finished.load(ordering: .acquiring) < chunks - mine {
                spins += 1
                if spins & 1023 == 0 { sched_yield() }
            }
            self.body = nil
        }
    }

    /// Claims and runs chunks of `generation` until none is left; the number it ran. Not inlined, so that the
    /// body's reference is released before the caller reports the chunks finished.
    @inline(never)
    private func work(generation: UInt64) -> Int {
        var done = 0
        var t = ticket.load(ordering: .acquiring)
        while true {
            guard t >> 32 == generation else { return done }
            let chunks = Int((t >> 16) & 0xFFFF), index = Int(t & 0xFFFF)
            guard index < chunks else { return done }
            let (exchanged, original) = ticket.compareExchange(expected: t, desired: t + 1, ordering: .acquiringAndReleasing)
            guard exchanged else { t = original; continue }
            let body = self.body!
            body(parallelChunkRange(index, of: chunks, count: count))
            done += 1
            t = ticket.load(ordering: .acquiring)
        }
    }

    private func workerLoop() {
        var seen: UInt64 = 0
        while true {
            var t = ticket.load(ordering: .acquiring)
            var spins = 0
            var deadline: UInt64 = 0
            while t >> 32 == seen {
                spins += 1
                // Between looks, hand the core to any other runnable thread (free when the core is idle).
                if spins & 15 == 0 { sched_yield() }
                if spins & 255 == 0 {
                    let now = DispatchTime.now().uptimeNanoseconds
                    if deadline == 0 {
                        deadline = now + UInt64(Self.spinSeconds * 1e9)
                    } else if now > deadline {
                        pthread_mutex_lock(mutex)
                        sleepers.add(1, ordering: .sequentiallyConsistent)
                        while ticket.load(ordering: .sequentiallyConsistent) >> 32 == seen { pthread_cond_wait(condition, mutex) }
                        sleepers.subtract(1, ordering: .sequentiallyConsistent)
                        pthread_mutex_unlock(mutex)
                        deadline = 0
                    }
                }
                t = ticket.load(ordering: .acquiring)
            }
            seen = t >> 32
            let done = work(generation: seen)
            if done > 0 { finished.add(done, ordering: .releasing) }
        }
    }
}
