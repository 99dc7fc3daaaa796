import AmalgamModels
import Foundation
import Testing

/// Deterministic values in [-1, 1).
private func values(_ n: Int, seed: UInt32) -> [Float] {
    var s = seed
    return (0..<n).map { _ in s = s &* 1_664_525 &+ 1_013_904_223; return Float(s >> 8) / Float(1 << 23) - 1 }
}

/// Central finite difference of L(x) = Σ dout · f(x) with respect to x[i].
private func numericGradient(_ x: [Float], _ i: Int, _ loss: ([Float]) -> Double) -> Double {
    let h: Float = 1e-2
    var plus = x, minus = x
    plus[i] += h
    minus[i] -= h
    return (loss(plus) - loss(minus)) / Double(2 * h)
}

private func close(_ a: Float, _ b: Double) -> Bool { abs(Double(a) - b) <= 2e-3 * max(1, abs(b)) }

@Test("RMSNorm backward matches finite differences for input and weight")
func rmsnormBackwardMatchesFiniteDifferences() {
    let N = 3, C = 8
    let x = values(N * C, seed: 1), w = values(C, seed: 2).map { $0 + 1.5 }, dout = values(N * C, seed: 3)
    func loss(_ x: [Float], _ w: [Float]) -> Double {
        var out = [Float](repeating: 0, count: N * C)
        Layers.rmsnormForward(&out, nil, x, w, rows: N, cols: C, eps: 1e-5)
        return zip(out, dout).reduce(0) { $0 + Double($1.0 * $1.1) }
    }
    var out = [Float](repeating: 0, count: N * C), rstd = [Float](repeating: 0, count: N)
    Layers.rmsnormForward(&out, &rstd, x, w, rows: N, cols: C, eps: 1e-5)
    var dx = [Float](repeating: 0, count: N * C), dw = [Float](repeating: 0, count: C)
    Layers.rmsnormBackward(&dx, &dw, dout, x, w, rstd, rows: N, cols: C)
    for i in 0..<(N * C) { #expect(close(dx[i], numericGradient(x, i) { loss($0, w) }), "dx[\(i)]") }
    for i in 0..<C { #expect(close(dw[i], numericGradient(w, i) { loss(x, $0) }), "dw[\(i)]") }
}

@Test("SwiGLU backward matches finite differences for gate and up")
func swigluBackwardMatchesFiniteDifferences() {
    let n = 12
    let gate = values(n, seed: 4).map { $0 * 3 }, up = values(n, seed: 5), dout = values(n, seed: 6)
    func loss(_ g: [Float], _ u: [Float]) -> Double {
        var out = [Float](repeating: 0, count: n)
        Layers.swigluForward(&out, g, u, count: n)
        return zip(out, dout).reduce(0) { $0 + Double($1.0 * $1.1) }
    }
    var dg = [Float](repeating: 0, count: n), du = [Float](repeating: 0, count: n)
    Layers.swigluBackward(&dg, &du, dout, gate, up, count: n)
    for i in 0..<n {
        #expect(close(dg[i], numericGradient(gate, i) { loss($0, up) }), "dgate[\(i)]")
        #expect(close(du[i], numericGradient(up, i) { loss(gate, $0) }), "dup[\(i)]")
    }
}

@Test("RoPE backward is the inverse rotation: it matches finite differences")
func ropeBackwardMatchesFiniteDifferences() {
    let N = 2, H = 2, D = 4
    let x = values(N * H * D, seed: 7), dout = values(N * H * D, seed: 8)
    let angles = values(N * D / 2, seed: 9).map { $0 * 3 }
    let cos = angles.map { Foundation.cos($0) }, sin = angles.map { Foundation.sin($0) }
    func loss(_ x: [Float]) -> Double {
        var y = x
        Layers.ropeForward(&y, rows: N, heads: H, headDim: D, cos: cos, sin: sin)
        return zip(y, dout).reduce(0) { $0 + Double($1.0 * $1.1) }
    }
    var d = dout
    Layers.ropeBackward(&d, rows: N, heads: H, headDim: D, cos: cos, sin: sin)
    for i in 0..<(N * H * D) { #expect(close(d[i], numericGradient(x, i, loss)), "dx[\(i)]") }
}
