import AmalgamCore
import AmalgamModels
import Foundation
import Testing

/// Deterministic values in [-1, 1).
private func values(_ n: Int, seed: UInt64) -> [Float] {
    var g = SeededGenerator(seed: seed)
    return (0..<n).map { _ in Float(g.uniform() * 2 - 1) }
}

/// Σ dout · y in f64: the scalar whose gradient the backward kernels compute.
private func weighted(_ y: [Float], _ dout: [Float]) -> Double { zip(y, dout).reduce(0) { $0 + Double($1.0) * Double($1.1) } }

/// Checks an analytic gradient against central differences of `loss` at every entry of x.
private func expectMatchesFiniteDifferences(_ analytic: [Float], _ x: [Float], _ what: String, h: Float = 1e-2,
                                            _ loss: ([Float]) -> Double) {
    var numeric = [Float](repeating: 0, count: x.count)
    for i in x.indices {
        var plus = x, minus = x
        plus[i] += h
        minus[i] -= h
        numeric[i] = Float((loss(plus) - loss(minus)) / Double(2 * h))
    }
    let err = relativeError(analytic, numeric)
    #expect(err < 2e-3, "\(what): relative error \(err) against finite differences")
}

@Suite("Backward kernels match finite differences")
struct BackwardKernelTests {
    @Test("linear: dX = dY·W, dW = dYᵀ·X, db = Σ dY, for f32 and bf16 weights")
    func linear() throws {
        let T = 5, inp = 7, out = 6
        let x = values(T * inp, seed: 1), w = values(out * inp, seed: 2), b = values(out, seed: 3), dout = values(T * out, seed: 4)
        for dtype in [DType.f32, .bf16] {
            func forward(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
                let weight = try! WeightMatrix(Tensor(w, shape: [out, inp]).converted(to: dtype), name: "w", path: "test", rows: out, cols: inp)
                var y = [Float](repeating: 0, count: T * out)
                var scratch = [Float](repeating: 0, count: max(1, MatMul.scratchCount(for: weight)))
                MatMul.forward(&y, x, rows: T, weight: weight, bias: b, scratch: &scratch)
                return y
            }
            let weight = try WeightMatrix(Tensor(w, shape: [out, inp]).converted(to: dtype), name: "w", path: "test", rows: out, cols: inp)
            var scratch = [Float](repeating: 0, count: max(1, MatMul.scratchCount(for: weight)))
            var dx = [Float](repeating: 0, count: T * inp), dw = [Float](repeating: 0, count: out * inp), db = [Float](repeating: 0, count: out)
            MatMul.backwardInput(&dx, dout, rows: T, weight: weight, scratch: &scratch)
            MatMul.backwardWeight(&dw, dout, x, rows: T, outFeatures: out, inFeatures: inp)
            MatMul.backwardBias(&db, dout, rows: T, outFeatures: out)
            // bf16 weights are rounded: differentiate through the rounded values
            let wr = Tensor(w, shape: [out, inp]).converted(to: dtype).floats()
            expectMatchesFiniteDifferences(dx, x, "dX \(dtype)") { weighted(forward($0, wr, b), dout) }
            if dtype == .f32 {
                expectMatchesFiniteDifferences(dw, w, "dW") { weighted(forward(x, $0, b), dout) }
            }
            expectMatchesFiniteDifferences(db, b, "db \(dtype)") { weighted(forward(x, wr, $0), dout) }
        }
    }

    @Test("embedding: a repeated token's rows add up")
    func embedding() throws {
        let V = 6, C = 5
        let tokens = [3, 1, 3, 5]
        let table = values(V * C, seed: 5), dout = values(tokens.count * C, seed: 6)
        func forward(_ t: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: tokens.count * C)
            Layers.embeddingForward(&out, tokens: tokens, table: try! WeightMatrix(Tensor(t, shape: [V, C]), name: "e", path: "test", rows: V, cols: C))
            return out
        }
        var d = [Float](repeating: 0, count: V * C)
        Layers.embeddingBackward(&d, dout, tokens: tokens, cols: C)
        expectMatchesFiniteDifferences(d, table, "dTable") { weighted(forward($0), dout) }
        #expect(d[0..<C].allSatisfy { $0 == 0 })   // token 0 unused
    }

    @Test("grouped-query causal attention over packed segments, with and without a sliding window")
    func attention() {
        let Hq = 4, Hkv = 2, D = 8
        let lengths = [5, 3]
        let N = lengths.reduce(0, +)
        var segments: [Attention.Segment] = []
        var start = 0
        for l in lengths { segments.append(.init(queryRow: start, keyRow: start, position: 0, count: l)); start += l }
        let q = values(N * Hq * D, seed: 7), k = values(N * Hkv * D, seed: 8), v = values(N * Hkv * D, seed: 9)
        let dout = values(N * Hq * D, seed: 10)
        for window in [nil, 2] as [Int?] {
            func forward(_ q: [Float], _ k: [Float], _ v: [Float]) -> [Float] {
                var out = [Float](repeating: 0, count: N * Hq * D)
                Attention.forward(&out, q: q, k: k, v: v, segments: segments, heads: Hq, kvHeads: Hkv, headDim: D, window: window)
                return out
            }
            let out = forward(q, k, v)
            var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = [Float](repeating: 0, count: v.count)
            Attention.backward(dq: &dq, dk: &dk, dv: &dv, dout: dout, q: q, k: k, v: v, out: out, segments: segments,
                               heads: Hq, kvHeads: Hkv, headDim: D, window: window)
            let w = window.map { "window \($0)" } ?? "full"
            expectMatchesFiniteDifferences(dq, q, "dq \(w)") { weighted(forward($0, k, v), dout) }
            expectMatchesFiniteDifferences(dk, k, "dk \(w)") { weighted(forward(q, $0, v), dout) }
            expectMatchesFiniteDifferences(dv, v, "dv \(w)") { weighted(forward(q, k, $0), dout) }
        }
    }

    @Test("cross-entropy and distillation gradients match finite differences of their losses")
    func losses() {
        let V = 11, rows = 4
        let logits = values(rows * V, seed: 11).map { $0 * 4 }, teacher = values(rows * V, seed: 12).map { $0 * 4 }
        let targets = [3, Losses.ignoreIndex, 10, 0]
        let ce = Losses.crossEntropy(logits: logits, vocabulary: V, targets: targets)
        expectMatchesFiniteDifferences(ce.gradient, logits, "cross-entropy", h: 1e-2) {
            Losses.crossEntropy(logits: $0, vocabulary: V, targets: targets).loss
        }
        for k in [nil, 4] as [Int?] {
            let kl = Losses.distillation(student: logits, teacher: teacher, vocabulary: V, temperature: 2, topK: k)
            expectMatchesFiniteDifferences(kl.gradient, logits, "distillation top-k \(String(describing: k))", h: 1e-2) {
                Losses.distillation(student: $0, teacher: teacher, vocabulary: V, temperature: 2, topK: k).loss
            }
        }
    }
}
