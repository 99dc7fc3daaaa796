import AmalgamCore
import Foundation

/// Training losses over rows of logits, forward and backward in one pass (the softmax is computed once).
///
/// Every kernel returns a `LossTotal` (the summed loss and the rows it counted) and, when given a
/// gradient buffer, writes `gradientScale · ∂(row loss)/∂logits` into it (written, not accumulated; it
/// may be the logits buffer itself, overwritten in place to save a [rows × V] buffer). The mean over
/// counted rows is `gradientScale = 1 / count`, with `count` over the whole batch when the logits come
/// in chunks. Log-sum-exp is taken from the row maximum, sums run in f64, and rows run in parallel with
/// the totals added in row order, so results do not depend on the thread count.
public enum Losses {
    /// A cross-entropy target that excludes its row (PyTorch's default `ignore_index`). Any negative
    /// target is ignored.
    public static let ignoreIndex = -100

    /// Rows per parallel task.
    static let rowBlock = 4

    /// Softmax cross-entropy: row loss = logsumexp(logits) − logits[target].
    /// logits, dlogits [rows × V]; targets [rows] (negative: row ignored, its gradient zero).
    /// dlogits = gradientScale · (softmax(logits) − onehot(target)).
    public static func crossEntropy(_ logits: UnsafePointer<Float>, rows: Int, vocabulary V: Int,
                                    targets: UnsafePointer<Int>, dlogits: UnsafeMutablePointer<Float>?,
                                    gradientScale: Float) -> LossTotal {
        let lp = SendableConstPointer(logits), tp = SendableConstPointer(targets)
        let gp = dlogits.map(SendablePointer.init)
        return perRow(rows) { r in
            let x = lp.base + r * V
            let target = tp.base[r]
            guard target >= 0 else {
                if let g = gp?.base { (g + r * V).update(repeating: 0, count: V) }
                return nil
            }
            precondition(target < V, "target \(target) of row \(r) is outside the vocabulary (0..<\(V))")
            let (m, sum) = maxAndSumExp(x, V, scale: 1)
            let lse = Double(m) + Foundation.log(sum)
            let loss = lse - Double(x[target])
            if let g = gp?.base {
                let row = g + r * V
                softmaxTimes(row, x, V, shift: Float(lse), scale: 1, multiplier: gradientScale)
                row[target] -= gradientScale
            }
            return loss
        }
    }

    /// The DAM distillation loss, KL(softmax(teacher/T) ‖ softmax(student/T)) · T² per row.
    /// student, teacher, dstudent [rows × V]; counted [rows] (false: row ignored, gradient zero; nil:
    /// all rows count). With `topK`, each row keeps the teacher's k largest logits (lowest indices win
    /// ties) and both softmaxes run over those k entries only; the other entries get zero gradient.
    /// dstudent = gradientScale · T · (softmax(student/T) − softmax(teacher/T)).
    public static func distillation(student: UnsafePointer<Float>, teacher: UnsafePointer<Float>, rows: Int,
                                    vocabulary V: Int, temperature T: Float, topK: Int? = nil,
                                    counted: UnsafePointer<Bool>? = nil, dstudent: UnsafeMutablePointer<Float>?,
                                    gradientScale: Float) -> LossTotal {
        precondition(T > 0, "the distillation temperature must be positive")
        let sp = SendableConstPointer(student), tp = SendableConstPointer(teacher)
        let cp = counted.map(SendableConstPointer.init), gp = dstudent.map(SendablePointer.init)
        let k = topK.map { min(max($0, 1), V) }
        return perRow(rows) { r in
            let s = sp.base + r * V, t = tp.base + r * V
            guard cp?.base[r] ?? true else {
                if let g = gp?.base { (g + r * V).update(repeating: 0, count: V) }
                return nil
            }
            let g = gp.map { $0.base + r * V }
            if let k, k < V {
                return topKDistillation(s, t, V, T, k, g, gradientScale)
            }
            let inv = 1 / T
            let (ms, zs) = maxAndSumExp(s, V, scale: inv)
            let (mt, zt) = maxAndSumExp(t, V, scale: inv)
            let lseS = Double(ms) + Foundation.log(zs), lseT = Double(mt) + Foundation.log(zt)
            var kl = 0.0
            for i in 0..<V {
                let logP = Double(t[i] * inv) - lseT
                let p = Foundation.exp(logP)
                let logQ = Double(s[i] * inv) - lseS
                if p > 0 { kl += p * (logP - logQ) }
                if let g { g[i] = Float((Foundation.exp(logQ) - p) * Double(T)) * gradientScale }
            }
            return kl * Double(T * T)
        }
    }

    /// One row of the top-k distillation loss: the teacher's k largest entries, softmax over those only.
    static func topKDistillation(_ s: UnsafePointer<Float>, _ t: UnsafePointer<Float>, _ V: Int, _ T: Float, _ k: Int,
                                 _ g: UnsafeMutablePointer<Float>?, _ gradientScale: Float) -> Double {
        let index = topIndices(t, V, k)
        let inv = Double(1 / T)
        var mt = -Double.infinity, ms = -Double.infinity
        for i in index { mt = max(mt, Double(t[i]) * inv); ms = max(ms, Double(s[i]) * inv) }
        var zt = 0.0, zs = 0.0
        for i in index { zt += Foundation.exp(Double(t[i]) * inv - mt); zs += Foundation.exp(Double(s[i]) * inv - ms) }
        let lseT = mt + Foundation.log(zt), lseS = ms + Foundation.log(zs)
        var kl = 0.0
        var kept = [Float](repeating: 0, count: k)
        for (j, i) in index.enumerated() {
            let logP = Double(t[i]) * inv - lseT, logQ = Double(s[i]) * inv - lseS
            let p = Foundation.exp(logP)
            if p > 0 { kl += p * (logP - logQ) }
            kept[j] = Float((Foundation.exp(logQ) - p) * Double(T)) * gradientScale
        }
        // written only now: g may be the student's own logits
        if let g {
            g.update(repeating: 0, count: V)
            for (j, i) in index.enumerated() { g[i] = kept[j] }
        }
        return kl * Double(T) * Double(T)
    }

    /// Indices of the k largest values of x[n] (any order), by a size-k min-heap: O(n log k), no sort
    /// of the row. Among equal values the lower index is kept.
    static func topIndices(_ x: UnsafePointer<Float>, _ n: Int, _ k: Int) -> [Int] {
        var heap = [Int]()   // heap[0] is the weakest kept: smallest value, then highest index
        heap.reserveCapacity(k)
        @inline(__always) func weaker(_ a: Int, _ b: Int) -> Bool { x[a] < x[b] || (x[a] == x[b] && a > b) }
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var w = i
                if l < heap.count && weaker(heap[l], heap[w]) { w = l }
                if r < heap.count && weaker(heap[r], heap[w]) { w = r }
                if w == i { return }
                heap.swapAt(i, w)
                i = w
            }
        }
        for i in 0..<n {
            if heap.count < k {
                heap.append(i)
                var c = heap.count - 1
                while c > 0 {
                    let p = (c - 1) / 2
                    guard weaker(heap[c], heap[p]) else { break }
                    heap.swapAt(c, p)
                    c = p
                }
            } else if weaker(heap[0], i) {
                heap[0] = i
                siftDown(0)
            }
        }
        return heap
    }

    /// Runs `body` for every row (in parallel blocks); nil means the row is not counted. Totals in row order.
    static func perRow(_ rows: Int, _ body: @Sendable (Int) -> Double?) -> LossTotal {
        var losses = [Double](repeating: 0, count: rows)
        var counted = [Bool](repeating: false, count: rows)
        losses.withUnsafeMutableBufferPointer { l in
            counted.withUnsafeMutableBufferPointer { c in
                let lp = SendablePointer(l.baseAddress!), cp = SendablePointer(c.baseAddress!)
                parallelChunks(rows, minimumChunk: rowBlock) { range in
                    for r in range {
                        if let loss = body(r) { lp.base[r] = loss; cp.base[r] = true }
                    }
                }
            }
        }
        var total = LossTotal(sum: 0, count: 0)
        for r in 0..<rows where counted[r] { total.sum += losses[r]; total.count += 1 }
        return total
    }

    /// max(x·scale) and Σ exp(x·scale − max) over x[n], the sum in f64 (blocks of 16 lanes in f32).
    @inline(__always)
    static func maxAndSumExp(_ x: UnsafePointer<Float>, _ n: Int, scale: Float) -> (Float, Double) {
        var m = -Float.infinity
        for i in 0..<n { m = max(m, x[i] * scale) }
        var sum = 0.0
        var i = 0
        while i < n {
            let end = min(i + 256, n)
            var part: Float = 0
            while i < end { part += Foundation.exp(x[i] * scale - m); i += 1 }
            sum += Double(part)
        }
        return (m, sum)
    }

    /// out[i] = multiplier · exp(x[i]·scale − shift), i < n.
    @inline(__always)
    static func softmaxTimes(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int,
                             shift: Float, scale: Float, multiplier: Float) {
        for i in 0..<n { out[i] = multiplier * Foundation.exp(x[i] * scale - shift) }
    }
}

/// A loss summed over the rows it counted.
public struct LossTotal: Sendable, Equatable {
    /// Sum of the counted rows' losses.
    public var sum: Double
    /// Rows counted.
    public var count: Int

    /// A total.
    public init(sum: Double, count: Int) {
        self.sum = sum
        self.count = count
    }

    /// sum / count (0 when nothing was counted).
    public var mean: Double { count == 0 ? 0 : sum / Double(count) }

    /// Two totals together (chunks of one batch).
    public static func + (a: LossTotal, b: LossTotal) -> LossTotal { LossTotal(sum: a.sum + b.sum, count: a.count + b.count) }
}

extension Losses {
    /// Mean softmax cross-entropy over the counted rows of logits [rows × V] (negative targets are
    /// ignored) and its gradient [rows × V].
    public static func crossEntropy(logits: [Float], vocabulary V: Int, targets: [Int]) -> (loss: Double, count: Int, gradient: [Float]) {
        precondition(logits.count == targets.count * V, "\(logits.count) logits for \(targets.count) rows of \(V)")
        let count = targets.filter { $0 >= 0 }.count
        var gradient = [Float](repeating: 0, count: logits.count)
        let total = gradient.withUnsafeMutableBufferPointer { g in
            crossEntropy(logits, rows: targets.count, vocabulary: V, targets: targets, dlogits: g.baseAddress!,
                         gradientScale: count == 0 ? 0 : 1 / Float(count))
        }
        return (total.mean, total.count, gradient)
    }

    /// Mean distillation loss over the counted rows (all when `counted` is nil) and its gradient with
    /// respect to the student logits [rows × V].
    public static func distillation(student: [Float], teacher: [Float], vocabulary V: Int, temperature: Float = 2,
                                    topK: Int? = nil, counted: [Bool]? = nil) -> (loss: Double, count: Int, gradient: [Float]) {
        precondition(student.count == teacher.count && student.count % max(V, 1) == 0, "student and teacher logits differ in size")
        let rows = student.count / V
        let mask = counted ?? [Bool](repeating: true, count: rows)
        precondition(mask.count == rows, "\(mask.count) mask entries for \(rows) rows")
        let count = mask.filter { $0 }.count
        var gradient = [Float](repeating: 0, count: student.count)
        let total = gradient.withUnsafeMutableBufferPointer { g in
            distillation(student: student, teacher: teacher, rows: rows, vocabulary: V, temperature: temperature,
                         topK: topK, counted: mask, dstudent: g.baseAddress!, gradientScale: count == 0 ? 0 : 1 / Float(count))
        }
        return (total.mean, total.count, gradient)
    }
}
