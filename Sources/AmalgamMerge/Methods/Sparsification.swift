import AmalgamCore
import Dispatch
import Foundation

/// How a task vector is thinned before merging (mergekit's `SparsificationMethod`).
public enum Sparsifier: String, Sendable, CaseIterable {
    /// Keep the top `density` fraction by magnitude (TIES).
    case magnitude
    /// Keep each element with probability `density` (DARE).
    case random
    /// Drop the top `gamma` fraction as outliers, then the smallest, keeping `density` (breadcrumbs).
    case magnitudeOutliers = "magnitude_outliers"
    /// Keep each element with a probability rising linearly with its magnitude rank in its row (DELLA).
    case dellaMagprune = "della_magprune"
}

/// The sparsifiers as pure functions on one task vector, following mergekit 0.1.5's `sparsify.py`.
/// `density ≥ 1` leaves the vector untouched (no rescale either), as mergekit does.
public enum Sparsification {
    /// Elements per random stream: each fixed chunk draws from its own generator, so the mask is the
    /// same whether the chunks run on one thread or many.
    public static let randomChunk = 1 << 16

    /// Rescales `masked` to the L1 norm of `original` (mergekit's `RescaleNorm.l1`; not DARE's 1/p):
    /// skipped when either norm is below 1e-7.
    public static func rescaleL1(_ masked: inout [Float], original l1Before: Double) {
        let l1After = masked.withUnsafeBufferPointer { Kernels.l1($0) }
        if l1Before < 1e-7 || l1After < 1e-7 { return }
        let scale = Float(Float(l1Before) / Float(l1After))
        masked.withUnsafeMutableBufferPointer { m in
            for i in m.indices { m[i] *= scale }
        }
    }

    /// Keeps the `max(1, int(density·n))` largest magnitudes (ties at the threshold: lowest indices,
    /// see `Selection`); `density ≤ 0` gives zeros.
    public static func magnitude(_ delta: inout [Float], density: Double, rescale: Bool) {
        if density >= 1 { return }
        if density <= 0 || delta.isEmpty { zero(&delta); return }
        let k = max(1, Int(density * Double(delta.count)))
        var keys = delta.withUnsafeBufferPointer(Selection.keys)
        var scan = Selection.cut(&keys, count: k, descending: true).scan()
        apply(to: &delta, rescale: rescale) { scan.selects(Selection.key($0)) }
    }

    /// Breadcrumbs: in ascending magnitude order keep ranks `[n_bot, n_bot + int(density·n))` where
    /// `n_bot = max(0, n − int(density·n) − int(gamma·n))`: the `gamma` largest go first as outliers,
    /// then the smallest until `density` remain.
    public static func magnitudeOutliers(_ delta: inout [Float], density: Double, gamma: Double, rescale: Bool) {
        if density >= 1 { return }
        let n = delta.count
        let target = Int(density * Double(n))
        let top = Int(gamma * Double(n))
        let bottom = max(0, n - target - top)
        var keys = delta.withUnsafeBufferPointer(Selection.keys)
        var scratch = keys
        var below = Selection.cut(&scratch, count: bottom, descending: false).scan()
        var upTo = Selection.cut(&keys, count: min(n, bottom + max(0, target)), descending: false).scan()
        apply(to: &delta, rescale: rescale) {
            let k = Selection.key($0)
            // Both scans must see every element, in order, to count their ties.
            let isBelow = below.selects(k)
            return upTo.selects(k) && !isBelow
        }
    }

    /// DARE: keeps each element with probability `density`, drawn from `seed`.
    public static func random(_ delta: inout [Float], density: Double, rescale: Bool, seed: UInt64) {
        if density >= 1 { return }
        let mask = bernoulliMask(count: delta.count, seed: seed, probability: density)
        apply(mask, to: &delta, rescale: rescale)
    }

    /// Whether `density ± epsilon` lies strictly inside (0, 1), as DELLA requires.
    public static func dellaAccepts(density: Double, epsilon: Double) -> Bool {
        density >= 1 || density <= 0 || (density - epsilon > 0 && density + epsilon < 1)
    }

    /// DELLA's MagPrune: in each row along dim 1 (a 1-D tensor is one row) rank the magnitudes
    /// 1…n ascending (ties: lower index first) and keep each element with probability
    /// `(density − ε) + 2ε·(rank − 1)/(n − 1)`; a row of one element keeps with probability `density`
    /// (mergekit divides 0 by 0 there). Callers check `dellaAccepts` first.
    public static func dellaMagprune(_ delta: inout [Float], shape: [Int], density: Double, epsilon: Double,
                                     rescale: Bool, seed: UInt64) {
        if density >= 1 { return }
        if density <= 0 { zero(&delta); return }
        let probabilities = dellaProbabilities(delta, shape: shape, density: density, epsilon: epsilon)
        let mask = bernoulliMask(count: delta.count, seed: seed, probabilities: probabilities)
        apply(mask, to: &delta, rescale: rescale)
    }

    /// The keep probability of each element under DELLA's MagPrune.
    public static func dellaProbabilities(_ delta: [Float], shape: [Int], density: Double, epsilon: Double) -> [Double] {
        // View as [outer, length, inner]; rows run along dim 1 (stride `inner`).
        let (outer, length, inner): (Int, Int, Int) = shape.count < 2
            ? (1, delta.count, 1)
            : (shape[0], shape[1], shape.dropFirst(2).reduce(1, *))
        var probabilities = [Double](repeating: density, count: delta.count)
        if length < 2 { return probabilities }
        // (magnitude key, position) packed in one integer: sorting it orders by magnitude, ties by position.
        var packed = [UInt64](repeating: 0, count: length)
        var scratch = [UInt64](repeating: 0, count: length)
        let step = 2 * epsilon / Double(length - 1)
        probabilities.withUnsafeMutableBufferPointer { p in
            delta.withUnsafeBufferPointer { d in
                for o in 0..<outer {
                    for j in 0..<inner {
                        let start = o * length * inner + j
                        for r in 0..<length { packed[r] = UInt64(Selection.key(d[start + r * inner])) << 32 | UInt64(r) }
                        packed.withUnsafeMutableBufferPointer { a in
                            scratch.withUnsafeMutableBufferPointer { b in sortRanked(a.baseAddress!, length, scratch: b.baseAddress!) }
                        }
                        for (rank, entry) in packed.enumerated() {
                            p[start + Int(entry & 0xFFFF_FFFF) * inner] = (density - epsilon) + Double(rank) * step
                        }
                    }
                }
            }
        }
        return probabilities
    }

    /// Sorts `(key << 32 | index)` entries written in index order: a stable LSD radix sort on the keys
    /// (8-bit digits, a digit all entries share skipped), which gives the order of sorting the packed
    /// values (by key, then index) in a few linear passes.
    static func sortRanked(_ entries: UnsafeMutablePointer<UInt64>, _ n: Int, scratch: UnsafeMutablePointer<UInt64>) {
        if n < 2 { return }
        var source = entries, target = scratch
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 256) { counts in
            for shift in stride(from: UInt64(32), to: 64, by: 8) {
                counts.update(repeating: 0)
                for i in 0..<n { counts[Int(truncatingIfNeeded: source[i] &>> shift & 0xFF)] += 1 }
                if counts[Int(truncatingIfNeeded: source[0] &>> shift & 0xFF)] == n { continue }
                var total = 0
                for d in 0..<256 { let c = counts[d]; counts[d] = total; total += c }
                for i in 0..<n {
                    let d = Int(truncatingIfNeeded: source[i] &>> shift & 0xFF)
                    target[counts[d]] = source[i]
                    counts[d] += 1
                }
                swap(&source, &target)
            }
        }
        if source != entries { entries.update(from: source, count: n) }
    }

    /// One Bernoulli draw per element, each kept with probability `probability`. Chunk `c` of
    /// `randomChunk` elements draws, in element order, from stream `c` of `seed`.
    public static func bernoulliMask(count: Int, seed: UInt64, probability: Double) -> [Bool] {
        bernoulliMask(count: count, seed: seed) { generator, range, out in
            for i in range { out[i] = generator.bernoulli(probability) }
        }
    }

    /// One Bernoulli draw per element, element `i` kept with probability `probabilities[i]`.
    public static func bernoulliMask(count: Int, seed: UInt64, probabilities: [Double]) -> [Bool] {
        bernoulliMask(count: count, seed: seed) { generator, range, out in
            for i in range { out[i] = generator.bernoulli(probabilities[i]) }
        }
    }

    /// Runs `fill` on each fixed chunk with that chunk's own generator, in parallel when there are
    /// several chunks and threads: the result is the same either way.
    private static func bernoulliMask(count: Int, seed: UInt64,
                                      fill: @escaping @Sendable (inout SeededGenerator, Range<Int>, UnsafeMutablePointer<Bool>) -> Void) -> [Bool] {
        var mask = [Bool](repeating: false, count: count)
        let chunks = (count + randomChunk - 1) / randomChunk
        mask.withUnsafeMutableBufferPointer { m in
            guard let base = m.baseAddress else { return }
            let out = SendablePointer(base)
            let draw: @Sendable (Int) -> Void = { c in
                var generator = SeededGenerator(seed: SeedDerivation.seed(seed, stream: c))
                fill(&generator, c * randomChunk..<min(count, (c + 1) * randomChunk), out.base)
            }
            if chunks <= 1 || ProcessInfo.activeProcessorCountCached == 1 {
                for c in 0..<chunks { draw(c) }
            } else {
                DispatchQueue.concurrentPerform(iterations: chunks, execute: draw)
            }
        }
        return mask
    }

    private static func zero(_ delta: inout [Float]) {
        delta.withUnsafeMutableBufferPointer { d in d.update(repeating: 0) }
    }

    /// Zeroes the unmasked elements, then rescales to the original L1 norm if asked.
    private static func apply(_ mask: [Bool], to delta: inout [Float], rescale: Bool) {
        mask.withUnsafeBufferPointer { m in
            apply(to: &delta, rescale: rescale, index: true) { i, _ in m[i] }
        }
    }

    /// Zeroes the elements `keep(value)` rejects (called once per element, in index order), then
    /// rescales to the original L1 norm if asked.
    private static func apply(to delta: inout [Float], rescale: Bool, _ keep: (Float) -> Bool) {
        apply(to: &delta, rescale: rescale, index: false) { _, v in keep(v) }
    }

    @inline(__always)
    private static func apply(to delta: inout [Float], rescale: Bool, index: Bool, _ keep: (Int, Float) -> Bool) {
        let before = rescale ? delta.withUnsafeBufferPointer { Kernels.l1($0) } : 0
        delta.withUnsafeMutableBufferPointer { d in
            for i in 0..<d.count where !keep(i, d[i]) { d[i] = 0 }
        }
        if rescale { rescaleL1(&delta, original: before) }
    }
}
