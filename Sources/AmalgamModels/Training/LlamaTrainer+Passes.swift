import AmalgamCore
import Foundation

/// What one layer's forward pass keeps for its backward pass (N rows; shapes per buffer).
final class LayerActivations {
    let input: FloatBuffer      // residual stream entering the layer [N × C]
    let xn1: FloatBuffer        // rmsnorm(input) [N × C]
    let rstd1: FloatBuffer      // [N]
    let q: FloatBuffer          // after q-norm and rope [N × Hq·D]
    let k: FloatBuffer          // after k-norm and rope [N × Hkv·D]
    let v: FloatBuffer          // [N × Hkv·D]
    let qPre, kPre: FloatBuffer?       // qwen3: q, k before their norms
    let rstdQ, rstdK: FloatBuffer?     // qwen3: [N·Hq], [N·Hkv]
    let att: FloatBuffer        // attention output, o_proj's input [N × Hq·D]
    let mid: FloatBuffer        // residual stream after attention [N × C]
    let xn2: FloatBuffer        // rmsnorm(mid) [N × C]
    let rstd2: FloatBuffer      // [N]
    let gate: FloatBuffer       // gate_proj output before silu [N × I]
    let up: FloatBuffer         // up_proj output [N × I]

    init(N: Int, C: Int, I: Int, qDim: Int, kvDim: Int, qkNorm: Bool, Hq: Int, Hkv: Int) {
        input = FloatBuffer(N * C); xn1 = FloatBuffer(N * C); rstd1 = FloatBuffer(N)
        q = FloatBuffer(N * qDim); k = FloatBuffer(N * kvDim); v = FloatBuffer(N * kvDim)
        qPre = qkNorm ? FloatBuffer(N * qDim) : nil; kPre = qkNorm ? FloatBuffer(N * kvDim) : nil
        rstdQ = qkNorm ? FloatBuffer(N * Hq) : nil; rstdK = qkNorm ? FloatBuffer(N * Hkv) : nil
        att = FloatBuffer(N * qDim); mid = FloatBuffer(N * C); xn2 = FloatBuffer(N * C); rstd2 = FloatBuffer(N)
        gate = FloatBuffer(N * I); up = FloatBuffer(N * I)
    }
}

extension LlamaTrainer {
    func run(_ batch: TokenBatch, objective: TrainingObjective, gradientScale: Float, backward: Bool) throws(ModelError) -> LossTotal {
        let config = model.config
        let N = batch.tokenCount
        let C = config.hiddenSize, I = config.intermediateSize, V = config.vocabSize
        let Hq = config.numAttentionHeads, Hkv = config.numKeyValueHeads, D = config.headDim
        let qDim = Hq * D, kvDim = Hkv * D
        let eps = Float(config.rmsNormEps)
        let tokens = batch.packed
        for t in tokens where t < 0 || t >= V { throw .tokenOutOfRange(token: t, vocabSize: V) }
        let targets: [Int]
        switch objective {
        case .nextToken: targets = Self.nextTokenTargets(batch)
        case let .targets(t):
            guard t.count == N else { throw .inputSize(expected: N, actual: t.count) }
            targets = t
        case let .distillation(teacher, _, _, counted):
            guard teacher.rows == N, teacher.cols == V else { throw .inputSize(expected: N * V, actual: teacher.values.count) }
            if let counted, counted.count != N { throw .inputSize(expected: N, actual: counted.count) }
            targets = []
        }
        var positions: [Int] = []
        var segments: [Attention.Segment] = []
        for (i, s) in batch.sequences.enumerated() {
            positions.append(contentsOf: 0..<s.count)
            segments.append(.init(queryRow: batch.offsets[i], keyRow: batch.offsets[i], position: 0, count: s.count))
        }
        let cos = FloatBuffer(N * D / 2), sin = FloatBuffer(N * D / 2)
        model.rope.tables(positions, cos: cos.pointer, sin: sin.pointer)
        let scratch = FloatBuffer(scratchCount)
        let keep = backward
        let qkNorm = layers.first?.qNorm != nil

        // ---- forward, keeping activations
        var acts: [LayerActivations] = []
        let final = FloatBuffer(N * C)       // residual stream after the last layer [N × C]
        let xf = FloatBuffer(N * C)          // final rmsnorm output [N × C]
        let rstdF = FloatBuffer(N)
        let hidden = FloatBuffer(N * I)      // silu(gate)·up [N × I]
        let proj = FloatBuffer(N * C)
        let x = FloatBuffer(N * C)
        Layers.embeddingForward(x.pointer, tokens: tokens, table: embed.weight)
        func linear(_ out: FloatBuffer, _ inp: FloatBuffer, _ l: Linear) {
            MatMul.forward(out.pointer, inp.pointer, rows: N, weight: l.weight, bias: l.bias?.tensor.value, scratch: scratch.pointer)
        }
        for layer in layers {
            let a = keep || acts.isEmpty ? LayerActivations(N: N, C: C, I: I, qDim: qDim, kvDim: kvDim, qkNorm: qkNorm, Hq: Hq, Hkv: Hkv) : acts[0]
            a.input.pointer.update(from: x.pointer, count: N * C)
            Layers.rmsnormForward(a.xn1.pointer, a.rstd1.pointer, a.input.pointer, layer.inputNorm.tensor.value, rows: N, cols: C, eps: eps)
            linear(a.q, a.xn1, layer.q); linear(a.k, a.xn1, layer.k); linear(a.v, a.xn1, layer.v)
            if let qNorm = layer.qNorm, let kNorm = layer.kNorm, let qPre = a.qPre, let kPre = a.kPre {
                qPre.pointer.update(from: a.q.pointer, count: N * qDim)
                kPre.pointer.update(from: a.k.pointer, count: N * kvDim)
                Layers.rmsnormForward(a.q.pointer, a.rstdQ!.pointer, qPre.pointer, qNorm.tensor.value, rows: N * Hq, cols: D, eps: eps)
                Layers.rmsnormForward(a.k.pointer, a.rstdK!.pointer, kPre.pointer, kNorm.tensor.value, rows: N * Hkv, cols: D, eps: eps)
            }
            Layers.ropeForward(a.q.pointer, rows: N, heads: Hq, headDim: D, cos: cos.pointer, sin: sin.pointer)
            Layers.ropeForward(a.k.pointer, rows: N, heads: Hkv, headDim: D, cos: cos.pointer, sin: sin.pointer)
            Attention.forward(a.att.pointer, q: a.q.pointer, k: a.k.pointer, v: a.v.pointer, segments: segments,
                              heads: Hq, kvHeads: Hkv, headDim: D, window: layer.window)
            linear(proj, a.att, layer.o)
            a.mid.pointer.update(from: a.input.pointer, count: N * C)
            Layers.residualForward(a.mid.pointer, proj.pointer, count: N * C)
            Layers.rmsnormForward(a.xn2.pointer, a.rstd2.pointer, a.mid.pointer, layer.postNorm.tensor.value, rows: N, cols: C, eps: eps)
            linear(a.gate, a.xn2, layer.gate); linear(a.up, a.xn2, layer.up)
            Layers.swigluForward(hidden.pointer, a.gate.pointer, a.up.pointer, count: N * I)
            linear(proj, hidden, layer.down)
            x.pointer.update(from: a.mid.pointer, count: N * C)
            Layers.residualForward(x.pointer, proj.pointer, count: N * C)
            if keep || acts.isEmpty { acts.append(a) }
        }
        final.pointer.update(from: x.pointer, count: N * C)
        Layers.rmsnormForward(xf.pointer, rstdF.pointer, final.pointer, norm.tensor.value, rows: N, cols: C, eps: eps)

        // ---- loss over chunks of rows, and the vocabulary projection's backward
        let dxf = FloatBuffer(N * C)
        dxf.pointer.update(repeating: 0, count: N * C)
        let chunk = max(1, logitsChunkRows)
        let logits = FloatBuffer(min(chunk, N) * V)
        var total = LossTotal(sum: 0, count: 0)
        var r0 = 0
        while r0 < N {
            let n = min(chunk, N - r0)
            MatMul.forward(logits.pointer, xf.pointer + r0 * C, rows: n, weight: lmHead.weight, bias: nil, scratch: scratch.pointer)
            let grad: UnsafeMutablePointer<Float>? = backward ? logits.pointer : nil
            switch objective {
            case let .distillation(teacher, temperature, topK, counted):
                let part = teacher.values.withUnsafeBufferPointer { t in
                    counted.map { c in
                        c.withUnsafeBufferPointer { cb in
                            Losses.distillation(student: logits.pointer, teacher: t.baseAddress! + r0 * V, rows: n, vocabulary: V,
                                                temperature: temperature, topK: topK, counted: cb.baseAddress! + r0,
                                                dstudent: grad, gradientScale: gradientScale)
                        }
                    } ?? Losses.distillation(student: logits.pointer, teacher: t.baseAddress! + r0 * V, rows: n, vocabulary: V,
                                             temperature: temperature, topK: topK, counted: nil,
                                             dstudent: grad, gradientScale: gradientScale)
                }
                total = total + part
            default:
                let part = targets.withUnsafeBufferPointer { t in
                    Losses.crossEntropy(logits.pointer, rows: n, vocabulary: V, targets: t.baseAddress! + r0, dlogits: grad,
                                        gradientScale: gradientScale)
                }
                total = total + part
            }
            if backward {
                MatMul.backwardInput(dxf.pointer + r0 * C, logits.pointer, rows: n, weight: lmHead.weight, scratch: scratch.pointer)
                if let t = lmHead.trainable {
                    MatMul.backwardWeight(t.gradient, logits.pointer, xf.pointer + r0 * C, rows: n, outFeatures: V, inFeatures: C)
                }
                linearObserver?(LinearActivations(name: model.config.tieWordEmbeddings ? embed.name : "lm_head.weight",
                                                  firstRow: r0, rows: n, inFeatures: C, outFeatures: V,
                                                  input: xf.pointer + r0 * C, outputGradient: logits.pointer))
            }
            r0 += n
        }
        guard backward else { return total }

        // ---- backward through the decoder
        let dx = FloatBuffer(N * C)          // ∂L/∂(residual stream) [N × C]
        dx.pointer.update(repeating: 0, count: N * C)
        Layers.rmsnormBackward(dx.pointer, norm.tensor.gradient, dxf.pointer, final.pointer, norm.tensor.value, rstdF.pointer, rows: N, cols: C)
        let dxn = FloatBuffer(N * C)
        let dh = FloatBuffer(N * I), dgate = FloatBuffer(N * I), dup = FloatBuffer(N * I)
        let datt = FloatBuffer(N * qDim), dq = FloatBuffer(N * qDim), dk = FloatBuffer(N * kvDim), dv = FloatBuffer(N * kvDim)
        let dqPre = qkNorm ? FloatBuffer(N * qDim) : nil, dkPre = qkNorm ? FloatBuffer(N * kvDim) : nil

        /// dX += dY · W, dW += dYᵀ · X, db += Σ dY, and the observer.
        func linearBackward(_ dX: FloatBuffer, _ dY: FloatBuffer, _ X: FloatBuffer, _ l: Linear) {
            MatMul.backwardInput(dX.pointer, dY.pointer, rows: N, weight: l.weight, scratch: scratch.pointer)
            if let t = l.trainable {
                MatMul.backwardWeight(t.gradient, dY.pointer, X.pointer, rows: N, outFeatures: l.weight.rows, inFeatures: l.weight.cols)
            }
            if let b = l.bias { MatMul.backwardBias(b.tensor.gradient, dY.pointer, rows: N, outFeatures: l.weight.rows) }
            linearObserver?(LinearActivations(name: l.name, firstRow: 0, rows: N, inFeatures: l.weight.cols,
                                              outFeatures: l.weight.rows, input: X.pointer, outputGradient: dY.pointer))
        }
        func zero(_ b: FloatBuffer) { b.pointer.update(repeating: 0, count: b.count) }

        let lowest = linearObserver == nil ? lowestLayer : 0
        for (index, layer) in layers.enumerated().reversed() where index >= lowest {
            let a = acts[index]
            // MLP block: x = mid + down(silu(gate)·up)
            Layers.swigluForward(hidden.pointer, a.gate.pointer, a.up.pointer, count: N * I)
            zero(dh)
            linearBackward(dh, dx, hidden, layer.down)
            zero(dgate); zero(dup)
            Layers.swigluBackward(dgate.pointer, dup.pointer, dh.pointer, a.gate.pointer, a.up.pointer, count: N * I)
            zero(dxn)
            linearBackward(dxn, dgate, a.xn2, layer.gate)
            linearBackward(dxn, dup, a.xn2, layer.up)
            Layers.rmsnormBackward(dx.pointer, layer.postNorm.tensor.gradient, dxn.pointer, a.mid.pointer,
                                   layer.postNorm.tensor.value, a.rstd2.pointer, rows: N, cols: C)
            // attention block: mid = input + o(attention(rope(q), rope(k), v))
            zero(datt)
            linearBackward(datt, dx, a.att, layer.o)
            zero(dq); zero(dk); zero(dv)
            Attention.backward(dq: dq.pointer, dk: dk.pointer, dv: dv.pointer, dout: datt.pointer, q: a.q.pointer, k: a.k.pointer,
                               v: a.v.pointer, out: a.att.pointer, segments: segments, heads: Hq, kvHeads: Hkv, headDim: D,
                               window: layer.window)
            Layers.ropeBackward(dq.pointer, rows: N, heads: Hq, headDim: D, cos: cos.pointer, sin: sin.pointer)
            Layers.ropeBackward(dk.pointer, rows: N, heads: Hkv, headDim: D, cos: cos.pointer, sin: sin.pointer)
            var dqIn = dq, dkIn = dk
            if let qNorm = layer.qNorm, let kNorm = layer.kNorm, let dqPre, let dkPre {
                zero(dqPre); zero(dkPre)
                Layers.rmsnormBackward(dqPre.pointer, qNorm.tensor.gradient, dq.pointer, a.qPre!.pointer, qNorm.tensor.value,
                                       a.rstdQ!.pointer, rows: N * Hq, cols: D)
                Layers.rmsnormBackward(dkPre.pointer, kNorm.tensor.gradient, dk.pointer, a.kPre!.pointer, kNorm.tensor.value,
                                       a.rstdK!.pointer, rows: N * Hkv, cols: D)
                dqIn = dqPre
                dkIn = dkPre
            }
            zero(dxn)
            linearBackward(dxn, dqIn, a.xn1, layer.q)
            linearBackward(dxn, dkIn, a.xn1, layer.k)
            linearBackward(dxn, dv, a.xn1, layer.v)
            Layers.rmsnormBackward(dx.pointer, layer.inputNorm.tensor.gradient, dxn.pointer, a.input.pointer,
                                   layer.inputNorm.tensor.value, a.rstd1.pointer, rows: N, cols: C)
        }
        if let t = embed.trainable {
            Layers.embeddingBackward(t.gradient, dx.pointer, tokens: tokens, cols: C)
        }
        return total
    }
}
