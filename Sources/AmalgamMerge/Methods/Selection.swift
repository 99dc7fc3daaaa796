/// Rank selection by magnitude without a full sort.
///
/// mergekit picks the top-k by `argsort(|δ|, descending=True)[:k]` (and breadcrumbs a rank window of
/// an ascending sort). PyTorch's CPU sort is not stable, so among elements of EQUAL magnitude at the
/// threshold its choice is unspecified. Our rule, deterministic at any thread count: the order is
/// that of a STABLE sort, so among equal magnitudes the LOWEST flat indices come first (in both
/// directions). Elements strictly past the threshold are always the same set as mergekit's.
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
        let threshold: UInt32
        let tiesKept: Int
        let descending: Bool
        /// Nothing selected.
        let empty: Bool
        /// Everything selected.
        let all: Bool
    }

    /// The cut selecting `count` elements of `keys` (a scratch copy is reordered, not the input).
    static func cut(_ keys: [UInt32], count: Int, descending: Bool) -> Cut {
        let n = keys.count
        if count <= 0 { return Cut(threshold: 0, tiesKept: 0, descending: descending, empty: true, all: false) }
        if count >= n { return Cut(threshold: 0, tiesKept: 0, descending: descending, empty: false, all: true) }
        var scratch = keys
        // Position in ascending order of the last selected element.
        let position = descending ? n - count : count - 1
        let threshold = scratch.withUnsafeMutableBufferPointer { nthElement($0, position) }
        var before = 0
        for k in keys where descending ? k > threshold : k < threshold { before += 1 }
        return Cut(threshold: threshold, tiesKept: count - before, descending: descending, empty: false, all: false)
    }

    /// Marks the selected elements: `body(i)` is called for each selected flat index in increasing order.
    static func forEachSelected(_ keys: [UInt32], _ cut: Cut, _ body: (Int) -> Void) {
        if cut.empty { return }
        if cut.all { for i in keys.indices { body(i) }; return }
        var ties = 0
        for i in keys.indices {
            let k = keys[i]
            if cut.descending ? k > cut.threshold : k < cut.threshold {
                body(i)
            } else if k == cut.threshold && ties < cut.tiesKept {
                ties += 1
                body(i)
            }
        }
    }

    /// A boolean mask of the selected elements.
    static func mask(_ keys: [UInt32], _ cut: Cut) -> [Bool] {
        var mask = [Bool](repeating: false, count: keys.count)
        forEachSelected(keys, cut) { mask[$0] = true }
        return mask
    }

    /// Reorders `a` so that `a[k]` holds the value a full ascending sort would put there (everything
    /// before it ≤, everything after ≥) and returns it. Quickselect with a median-of-three pivot;
    /// after too many unbalanced rounds the remaining range is sorted, so the worst case stays
    /// O(n log n) (introselect).
    static func nthElement(_ a: UnsafeMutableBufferPointer<UInt32>, _ k: Int) -> UInt32 {
        var lo = 0, hi = a.count - 1
        var budget = 2 * (Int.bitWidth - a.count.leadingZeroBitCount) + 8
        while hi - lo > 16 {
            if budget == 0 {
                var rest = UnsafeMutableBufferPointer(rebasing: a[lo...hi])
                rest.sort()
                return a[k]
            }
            budget -= 1
            let mid = lo + (hi - lo) / 2
            // Median of three as the pivot.
            if a[mid] < a[lo] { a.swapAt(mid, lo) }
            if a[hi] < a[lo] { a.swapAt(hi, lo) }
            if a[hi] < a[mid] { a.swapAt(hi, mid) }
            let pivot = a[mid]
            // Three-way partition (Dijkstra): [lo, lt) < pivot, [lt, gt] == pivot, (gt, hi] > pivot.
            // Many equal keys (exact zeros in sparse task vectors) then cost one pass, not many.
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
