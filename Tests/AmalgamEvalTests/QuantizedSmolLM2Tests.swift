import AmalgamCore
import AmalgamEval
import AmalgamModels
import AmalgamTestSupport
import Foundation
import Testing

/// SmolLM2-135M-Instruct Q4_1 run with its weights quantized in place (`--weights native`) against the same
/// file dequantized to f32 (`--weights f32`), teacher-forced over 2,000 tokens of Hamlet.
///
/// The two differ only by the activation quantization of the native path (the kernels themselves are exact
/// up to f32 summation, QuantizedKernelTests): every matmul input is rounded to Q8_1 blocks of 32 (Q8_0 for
/// the Q8_0 head), an error up to max|x|/254 per value, ≈ 0.5 % of a block's RMS, in 211 matmuls. How much
/// that moves this model's logits is measured against llama.cpp, which quantizes activations the same way:
/// `scripts/fixtures/check_smollm2_quantized.py` (2026-12-07, 400 tokens of this text) gives llama.cpp
/// against Amalgam's f32 path a top-1 agreement of 96.0 % and a mean relative logit error
/// (‖Δ‖ / ‖logits − mean‖ per position) of 5.2 %; Amalgam's native path against its f32 path 96.5 % and
/// 5.4 %. So the 99 % top-1 bar is not reachable by llama.cpp-style activation quantization on this
/// model (llama.cpp itself misses it), and the bounds here are llama.cpp's own distance with a margin:
/// agreement ≥ 94 %, mean error ≤ 7 %, no position above 50 % (measured here: 95.6 %, 5.6 %, 35 %).
@Suite(.requires(smolLM2GGUF), .requires(shakespeareData))
struct QuantizedSmolLM2Tests {
    @Test("SmolLM2 Q4_1 run quantized in place agrees with its f32-dequantized weights over 2,000 tokens of Shakespeare")
    func nativeWeightsAgreeWithF32() throws {
        let path = try smolLM2GGUF.require()
        try shakespeareData.require()
        let native = try LanguageModel(path: path, precision: .native)
        #expect(native.model.weightBlockType == .q4_1)
        let f32 = try LlamaModel(folder: path, precision: .f32)
        #expect(f32.weightBlockType == nil && f32.weightDType == .f32)

        let text = try String(contentsOfFile: shakespeareDirectory + "/shakespeare/hamlet_gut.txt", encoding: .utf8)
        let body = String(text.utf8.dropFirst(20_000).prefix(30_000))!
        let ids = native.tokenizer.encode(body, addSpecialTokens: false)
        try #require(ids.count >= 2000)
        var agree = 0, positions = 0
        var relativeErrors: [Double] = []
        for start in stride(from: 0, to: 2000, by: 250) {
            let window = Array(ids[start..<(start + 250)])
            let batch = try TokenBatch([window])
            let a = try native.model.logits(batch), b = try f32.logits(batch)
            let V = a.cols
            for r in 0..<a.rows {
                let x = a.values[(r * V)..<((r + 1) * V)], y = b.values[(r * V)..<((r + 1) * V)]
                if x.indices.max(by: { x[$0] < x[$1] }) == y.indices.max(by: { y[$0] < y[$1] }) { agree += 1 }
                positions += 1
                let mean = y.reduce(0.0) { $0 + Double($1) } / Double(V)
                var diff = 0.0, spread = 0.0
                for i in x.indices {
                    diff += pow(Double(x[i]) - Double(y[i]), 2)
                    spread += pow(Double(y[i]) - mean, 2)
                }
                relativeErrors.append((diff / spread).squareRoot())
            }
        }
        let agreement = Double(agree) / Double(positions)
        let meanError = relativeErrors.reduce(0, +) / Double(relativeErrors.count)
        let maxError = relativeErrors.max()!
        print("native vs f32: top-1 agreement \(agree)/\(positions), relative logit error mean \(meanError), max \(maxError)")
        #expect(positions == 2000)
        #expect(agreement >= 0.94, "top-1 agreement \(agree)/\(positions)")
        #expect(meanError <= 0.07, "mean relative logit error \(meanError)")
        #expect(maxError <= 0.5, "max relative logit error \(maxError)")
    }
}
