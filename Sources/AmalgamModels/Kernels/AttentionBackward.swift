import AmalgamCore
import Foundation

extension Attention {
    /// Backward of `forward`: dq [rows × Hq·D], dk, dv [rows × Hkv·D] += gradients, from dout (∂L/∂out)
    /// and the forward's q, k, v (after rotary embedding) and out. The probabilities are recomputed from
    /// q and k. With P = softmax(s), s = q·k/√D: dv += P·dout, ds = P ⊙ (dout·v − dout·out),
    /// dq += ds·k/√D, dk += ds·q/√D.
    /// One task per (segment, key/value head) owns that head's rows of dk and dv and its query heads'
    /// rows of dq, so nothing is written twice and sums run in a fixed order at any thread count.
    public static func backward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                v: UnsafePointer<Float>, out: UnsafePointer<Float>, segments: [Segment],
                                heads Hq: Int, kvHeads Hkv: Int, headDim D: Int, window: Int?) {
        let dqp = SendablePointer(dq), dkp = SendablePointer(dk), dvp = SendablePointer(dv)
        let dop = SendableConstPointer(dout), qp = SendableConstPointer(q), kp = SendableConstPointer(k)
        let vp = SendableConstPointer(v), op = SendableConstPointer(out)
        let scale = 1 / Float(D).squareRoot()
        let group = Hq / Hkv
        let limit = window ?? Int.max
        let maxKeys = segments.map { $0.position + $0.count }.max() ?? 0
        let runTask: @Sendable (Int) -> Void = { task in
            let s = segments[task / Hkv]
            let kvh = task % Hkv
            withUnsafeTemporaryAllocation(of: Float.self, capacity: max(maxKeys, 1)) { p in
                for h in (kvh * group)..<((kvh + 1) * group) {
                    for t in 0..<s.count {
                        let pos = s.position + t
                        let row = (s.queryRow + t) * Hq + h
                        let qRow = qp.base + row * D, dqRow = dqp.base + row * D
                        let doRow = dop.base + row * D, oRow = op.base + row * D
                        let lo = limit == Int.max ? 0 : max(0, pos - limit + 1)
                        var m = -Float.infinity
                        for key in lo...pos {
                            let score = dot(qRow, kp.base + ((s.keyRow + key) * Hkv + kvh) * D, D) * scale
                            p[key] = score
                            m = max(m, score)
                        }
                        var sum: Float = 0
                        for key in lo...pos {
                            let e = Foundation.exp(p[key] - m)
                            p[key] = e
                            sum += e
                        }
                        let inv = 1 / sum
                        let rowDot = dot(doRow, oRow, D)
                        for key in lo...pos {
                            let kvRow = ((s.keyRow + key) * Hkv + kvh) * D
                            let prob = p[key] * inv
                            axpy(dvp.base + kvRow, prob, doRow, D)
                            let ds = prob * (dot(doRow, vp.base + kvRow, D) - rowDot) * scale
                            axpy(dqRow, ds, kp.base + kvRow, D)
                            axpy(dkp.base + kvRow, ds, qRow, D)
                        }
                    }
                }
            }
        }
        let tasks = segments.count * Hkv
        let work = segments.reduce(0) { $0 + $1.count * ($1.position + $1.count) } * Hq * D
        if work < serialWork {
            for t in 0..<tasks { runTask(t) }
        } else {
            DispatchQueue.concurrentPerform(iterations: tasks, execute: runTask)
        }
    }
}
