import AmalgamCore
import Foundation

/// Causal grouped-query self-attention, the one place its loops live.
public enum Attention {
    /// One sequence's share of an attention call: its queries are rows `queryRow ..< queryRow + count`
    /// of q/out, at positions `position ..< position + count`; its keys and values for positions
    /// `0 ..< position + count` are rows `keyRow ...` of k/v.
    public struct Segment: Sendable {
        public var queryRow: Int
        public var keyRow: Int
        public var position: Int
        public var count: Int

        /// A segment; see the type's summary for the meaning of each index.
        public init(queryRow: Int, keyRow: Int, position: Int, count: Int) {
            self.queryRow = queryRow
            self.keyRow = keyRow
            self.position = position
            self.count = count
        }
    }

    /// Queries per parallel task.
    static let queryBlock = 16

    /// out[· × Hq·D] = softmax(cap(q kᵀ · scale) + causal/window mask) v, for every segment and head;
    /// scale is 1/√D unless given, cap(s) = c·tanh(s/c) with c = `softCap` (Gemma 2), else s.
    /// q, out [rows × Hq·D]; k, v [rows × Hkv·D]. Query head h reads key/value head h / (Hq / Hkv).
    /// A key at position s is visible from position p when s ≤ p and p − s < window.
    /// Backward needs q, k, v and the probabilities (recomputed from q, k, rather than kept).
    public static func forward(_ out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                               v: UnsafePointer<Float>, segments: [Segment], heads Hq: Int, kvHeads Hkv: Int,
                               headDim D: Int, window: Int?, scale givenScale: Float? = nil, softCap: Float? = nil) {
        struct Task { var segment: Int; var head: Int; var first: Int }
        var taskList: [Task] = []
        for (i, s) in segments.enumerated() {
            for h in 0..<Hq {
                for t in stride(from: 0, to: s.count, by: queryBlock) { taskList.append(Task(segment: i, head: h, first: t)) }
            }
        }
        let tasks = taskList
        let op = SendablePointer(out), qp = SendableConstPointer(q), kp = SendableConstPointer(k), vp = SendableConstPointer(v)
        let scale = givenScale ?? 1 / Float(D).squareRoot()
        let group = Hq / Hkv
        let limit = window ?? Int.max
        let maxKeys = segments.map { $0.position + $0.count }.max() ?? 0
        // one decoded token attends over a short context in microseconds: dispatching costs more
        let work = segments.reduce(0) { $0 + $1.count * ($1.position + $1.count) } * Hq * D
        let runTask: @Sendable (Int) -> Void = { taskIndex in
            let task = tasks[taskIndex]
            let s = segments[task.segment]
            let kvh = task.head / group
            withUnsafeTemporaryAllocation(of: Float.self, capacity: max(maxKeys, 1)) { scores in
                for t in task.first..<min(task.first + queryBlock, s.count) {
                    let p = s.position + t
                    let qRow = qp.base + ((s.queryRow + t) * Hq + task.head) * D
                    let oRow = op.base + ((s.queryRow + t) * Hq + task.head) * D
                    let lo = limit == Int.max ? 0 : max(0, p - limit + 1)
                    var m = -Float.infinity
                    for key in lo...p {
                        var score = dot(qRow, kp.base + ((s.keyRow + key) * Hkv + kvh) * D, D) * scale
                        if let softCap { score = softCap * Foundation.tanh(score / softCap) }
                        scores[key] = score
                        m = max(m, score)
                    }
                    var sum: Float = 0
                    for key in lo...p {
                        let e = Foundation.exp(scores[key] - m)
                        scores[key] = e
                        sum += e
                    }
                    for d in 0..<D { oRow[d] = 0 }
                    let inv = 1 / sum
                    for key in lo...p {
                        axpy(oRow, scores[key] * inv, vp.base + ((s.keyRow + key) * Hkv + kvh) * D, D)
                    }
                }
            }
        }
        if work < serialWork {
            for t in 0..<tasks.count { runTask(t) }
        } else {
            DispatchQueue.concurrentPerform(iterations: tasks.count, execute: runTask)
        }
    }

    /// Multiply-adds below which attention runs on the calling thread.
    static let serialWork = 1 << 18

    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= n {
            acc.addProduct(UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self),
                           UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self))
            i += 16
        }
        var s = acc.sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// y[n] += a · x[n]
    @inline(__always)
    static func axpy(_ y: UnsafeMutablePointer<Float>, _ a: Float, _ x: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + 16 <= n {
            let yv = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD16<Float>.self)
            let xv = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(y + i).storeBytes(of: yv.addingProduct(a, xv), as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { y[i] += a * x[i]; i += 1 }
    }
}
