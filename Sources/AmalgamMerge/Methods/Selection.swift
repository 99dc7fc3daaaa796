/// Rank selection by magnitude without a full sort.
///
/// mergekit picks the top-k by `argsort(|δ|, descending=True)[:k]` (and breadcrumbs a rank window of
/// an ascending sort). PyTorch's CPU sort is not stable, so among elements of EQUAL magnitude at the
/// threshold its choice is unspecified (it depends on its introsort's internals). Our rule,
/// deterministic at any thread count: the order is that of a STABLE sort, so among equal magnitudes
/// the LOWEST flat indices come first (in both directions). Elements strictly past the threshold are
/// always the same set as mergekit's; ties only occur in practice with quantised (bf16/f16) inputs.
///
/// Keys are the bit patterns of |x| (`bitPattern & 0x7FFF_FFFF`): for non-negative floats the integer
/// order is the numeric order, +0 and −0 are equal, and NaN sorts above +inf as in PyTorch.
enum Selection {
    /// The magnitude key of a float.
    @inline(__always)
    static func key(_ x: Float) -> UInt32 { x.bitPattern & 0x7FFF_FFFF }

    /// The first `count` elements of a stable sort of the keys (ascending or descending): all keys
    /// strictly before `threshold`, plus the first `tiesKept` keys equal to it, by index.
    struct Cut {
        var threshold: UInt32 = 0
        var tiesKept = 0
        var descending = false
        /// Nothing selected.
        var empty = false
        /// Everything selected.
        var all = false

        /// A scan over the elements in index order, answering whether each is selected.
        struct Scan {
            let cut: Cut
            var ties = 0
            @inline(__always)
            mutating func selects(_ k: UInt32) -> Bool {
                if cut.all { return true }
                if cut.empty { return false }
                if cut.descending ? k > cut.threshold : k < cut.threshold { return true }
                if k == cut.threshold && ties < cut.tiesKept { ties += 1; return true }
                return false
            }
        }

        func scan() -> Scan { Scan(cut: self) }
    }

    /// The magnitude keys of `values`.
    static func keys(_ values: UnsafeBufferPointer<Float>) -> [UInt32] {
        [UInt32](unsafeUninitializedCapacity: values.count) { out, n in
            for i in 0..<values.count { out[i] = key(values[i]) }
            n = values.count
        }
    }

    /// The cut selecting `count` elements of `keys` (`keys` is left as it is). A two-pass radix select
    /// on the 32-bit keys (a histogram of the high 16 bits, then of the low 16 bits inside the bucket
    /// holding the cut): two streaming reads instead of a quickselect's data-dependent swaps.
    static func cut(_ keys: inout [UInt32], count: Int, descending: Bool) -> Cut {
        let n = keys.count
        if count <= 0 { return Cut(descending: descending, empty: true) }
        if count >= n { return Cut(descending: descending, all: true) }
        // Position in ascending order of the last selected element.
        let position = descending ? n - count : count - 1
        return keys.withUnsafeBufferPointer { a in
            var high = [Int](repeating: 0, count: 1 << 16)
            for k in a { high[Int(k >> 16)] += 1 }
            var below = 0
            var bucket = 0
            while below + high[bucket] <= position { below += high[bucket]; bucket += 1 }
            var low = [Int](repeating: 0, count: 1 << 16)
            let top = UInt32(bucket)
            for k in a where k >> 16 == top { low[Int(k & 0xFFFF)] += 1 }
            var digit = 0
            while below + low[digit] <= position { below += low[digit]; digit += 1 }
            let threshold = top << 16 | UInt32(digit)
            // `below` counts keys < threshold; low[digit] counts keys == threshold.
            let selectedBefore = descending ? n - below - low[digit] : below
            return Cut(threshold: threshold, tiesKept: count - selectedBefore, descending: descending)
        }
    }

    /// A boolean mask of the selected elements of `keys` (in their original order).
    static func mask(_ keys: [UInt32], _ cut: Cut) -> [Bool] {
        var scan = cut.scan()
        return keys.map { scan.selects($0) }
    }

    /// Reorders `a` so that `a[k]` holds the value a full ascending sort would put there (everything
    /// before it ≤, everything after ≥) and returns it. Quickselect with a median-of-three pivot and a
    /// three-way partition (many equal keys, like the exact zeros of sparse task vectors, cost one
    /// pass); after too many unbalanced rounds the remaining range is sorted, so the worst case stays
    /// O(n log n) (introselect).
    static func nthElement(_ a: UnsafeMutableBufferPointer<UInt32>, _ k: Int) -> UInt32 {
        var lo = 0, hi = a.count - 1
        var budget = 2 * (Int.bitWidth - a.count.leadingZeroBitCount) + 8
        while hi - lo > 16 && budget > 0 {
            budget -= 1
            let mid = lo + (hi - lo) / 2
            if a[mid] < a[lo] { a.swapAt(mid, lo) }
            if a[hi] < a[lo] { a.swapAt(hi, lo) }
            if a[hi] < a[mid] { a.swapAt(hi, mid) }
            let pivot = a[mid]
            // Dijkstra: [lo, lt) < pivot, [lt, gt] == pivot, (gt, hi] > pivot.
            var lt = lo, i = lo, gt = hi
            while i <= gt {
                let v = a[i]
                if v < pivot { a.swapAt(lt, i); lt += 1; i += 1 }
                else if v > pivot { a.swapAt(i, gt); gt -= 1 }
                else { i += 1 }
            }
            if k < lt { hi = lt - 1 } else if k > gt { lo = gt + 1 } else { return pivot }
        }
        var rest = UnsafeMutableBufferPointer(rebasing: a[lo...hi])
        rest.sort()
        return a[k]
    }
}
