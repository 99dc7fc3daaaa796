import AmalgamCore
import AmalgamModels
import Foundation

/// `amalgam-bench inference --model DIR`: prompt-scoring and generation tokens/s of the engine beside
/// PyTorch (transformers, f32, same thread count) measured in the same run, peak memory, and GEMM/GEMV
/// throughput measured here to say how far from peak each figure is.
enum InferenceBenchmark {
    struct Options {
        var model = ""
        var batch = 4, length = 128, prompt = 32, newTokens = 64, repeats = 3
        var threads: Int?
        var torch = true
    }

    static func run(_ arguments: [String]) throws {
        let a = try BenchArguments(arguments, options: ["model", "batch", "length", "prompt", "new-tokens", "repeats", "threads"], flags: ["no-torch"])
        var o = Options()
        o.model = a.string("model", "")
        o.batch = try a.int("batch", o.batch)
        o.length = try a.int("length", o.length)
        o.prompt = try a.int("prompt", o.prompt)
        o.newTokens = try a.int("new-tokens", o.newTokens)
        o.repeats = try a.int("repeats", o.repeats)
        o.threads = try a["threads"].map { _ in try a.int("threads", 0) }
        o.torch = !a.has("no-torch")
        guard !o.model.isEmpty else { throw BenchError("--model DIR is required (a Llama-family model folder)") }
        let threads = prepareThreads(o.threads)

        let model = try LlamaModel(folder: o.model)
        let c = model.config
        var lcg: UInt64 = 2024
        func nextId() -> Int { lcg = lcg &* 6364136223846793005 &+ 1442695040888963407; return 100 + Int((lcg >> 33) % UInt64(c.vocabSize - 100)) }
        let scoreIds = (0..<o.batch).map { _ in (0..<o.length).map { _ in nextId() } }
        let promptIds = (0..<o.prompt).map { _ in nextId() }

        // scoring: one pass over the batch, best of repeats
        let batch = try TokenBatch(scoreIds)
        _ = try model.score(TokenBatch(scoreIds.map { Array($0[0..<16]) }))
        var scoreSeconds = Double.infinity, scoreCPU = Double.infinity
        for _ in 0..<o.repeats {
            let (wall, cpu) = try wallAndCPUSeconds { _ = try model.score(batch) }
            scoreSeconds = min(scoreSeconds, wall)
            scoreCPU = min(scoreCPU, cpu)
        }
        let scoreTPS = Double(batch.tokenCount) / scoreSeconds
        let scoreCPUTPS = Double(batch.tokenCount) / scoreCPU

        // generation: prefill, then one token at a time with the KV cache (greedy), best of repeats
        var generateSeconds = Double.infinity, generateCPU = Double.infinity
        for _ in 0..<o.repeats {
            let cache = KVCache(for: model, capacity: o.prompt + o.newTokens + 1)
            var logits = try model.nextTokenLogits(promptIds, cache: cache)
            let (wall, cpu) = try wallAndCPUSeconds {
                for _ in 0..<o.newTokens {
                    let next = logits.indices.max { logits[$0] < logits[$1] }!
                    logits = try model.nextTokenLogits([next], cache: cache)
                }
            }
            generateSeconds = min(generateSeconds, wall)
            generateCPU = min(generateCPU, cpu)
        }
        let generateTPS = Double(o.newTokens) / generateSeconds
        let generateCPUTPS = Double(o.newTokens) / generateCPU
        let ourRSS = peakResidentBytes()

        // what a token costs: matrix-product FLOPs (2 per weight) plus attention at the mean context
        let C = c.hiddenSize, I = c.intermediateSize, D = c.headDim
        let perLayer = C * c.numAttentionHeads * D * 2 + C * c.numKeyValueHeads * D * 2 + 3 * C * I
        let weightsPerToken = c.numHiddenLayers * perLayer + c.vocabSize * C
        let matmulFlops = 2.0 * Double(weightsPerToken)
        func attentionFlops(_ context: Double) -> Double { 4.0 * Double(c.numHiddenLayers * c.numAttentionHeads * D) * context }
        let scoreFlops = matmulFlops + attentionFlops(Double(o.length) / 2)
        let generateFlops = matmulFlops + attentionFlops(Double(o.prompt) + Double(o.newTokens) / 2)
        let weightBytes = Double(weightsPerToken * model.weightBytesPerElement)

        // GEMM and GEMV throughput on this model's shapes, measured now
        let gemm = measureGEMM(rows: o.batch * o.length, out: I, inner: C, dtype: .f32)
        let gemmBF16 = measureGEMM(rows: o.batch * o.length, out: I, inner: C, dtype: .bf16)
        let gemvOurs = measureGEMV(out: c.vocabSize, inner: C, dtype: model.weightDType, blas: false)
        let gemvOursF32 = measureGEMV(out: c.vocabSize, inner: C, dtype: .f32, blas: false)
        let gemvBLAS = measureGEMV(out: c.vocabSize, inner: C, dtype: .f32, blas: true)

        var torch: [String: Double] = [:]
        var torchNote = "not run (--no-torch)"
        if o.torch { (torch, torchNote) = runTorch(o, threads: threads, scoreIds: scoreIds, promptIds: promptIds) }

        func f(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }
        print("amalgam-bench inference: \(o.model)")
        print("  model: \(c.modelType), \(c.numHiddenLayers) layers, hidden \(C), vocab \(c.vocabSize), weights \(model.weightDType.rawValue); threads \(threads); OPENBLAS_CORETYPE=\(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "(unset)")")
        print("  scoring \(o.batch) × \(o.length) tokens, generating \(o.newTokens) tokens after a \(o.prompt)-token prompt, best of \(o.repeats)")
        print("")
        print("  GEMM f32 weights  (\(o.batch * o.length)×\(C)·\(C)×\(I)): \(f(gemm)) GFLOP/s   [OpenBLAS sgemm]")
        print("  GEMM bf16 weights (same shape):     \(f(gemmBF16)) GFLOP/s   [bf16 panels decoded to f32, then sgemm]")
        print("  GEMV \(c.vocabSize)×\(C) ours \(model.weightDType.rawValue): \(f(gemvOurs.gflops)) GFLOP/s, \(f(gemvOurs.gbps)) GB/s; ours f32: \(f(gemvOursF32.gflops)) GFLOP/s; cblas_sgemv f32: \(f(gemvBLAS.gflops)) GFLOP/s")
        print("")
        print("                      amalgam        PyTorch      ratio")
        let ts = torch["score_tokens_per_s"], tg = torch["generate_tokens_per_s"], tr = torch["peak_rss_bytes"]
        print("  scoring tokens/s    \(pad(f(scoreTPS)))  \(pad(ts.map { f($0) } ?? "-"))  \(ts.map { f(scoreTPS / $0, 2) + "×" } ?? "-")")
        print("  generate tokens/s   \(pad(f(generateTPS)))  \(pad(tg.map { f($0) } ?? "-"))  \(tg.map { f(generateTPS / $0, 2) + "×" } ?? "-")")
        let cs = torch["score_tokens_per_cpu_s"], cg = torch["generate_tokens_per_cpu_s"]
        print("  scoring tokens/CPU-s\(pad(f(scoreCPUTPS)))  \(pad(cs.map { f($0) } ?? "-"))  \(cs.map { f(scoreCPUTPS / $0, 2) + "×" } ?? "-")")
        print("  generate tokens/CPU-s\(pad(f(generateCPUTPS)).dropFirst())  \(pad(cg.map { f($0) } ?? "-"))  \(cg.map { f(generateCPUTPS / $0, 2) + "×" } ?? "-")")
        print("  peak RSS MB         \(pad(f(Double(ourRSS) / 1e6, 0)))  \(pad(tr.map { f($0 / 1e6, 0) } ?? "-"))")
        print("")
        let gemmPeak = model.weightDType == .f32 ? gemm : gemmBF16
        print("  scoring:  \(f(scoreFlops / 1e9, 3)) GFLOP/token → \(f(scoreTPS * scoreFlops / 1e9)) GFLOP/s = \(f(100 * scoreTPS * scoreFlops / 1e9 / gemmPeak, 0))% of the measured GEMM"
              + (ts.map { "; PyTorch \(f($0 * scoreFlops / 1e9)) GFLOP/s = \(f(100 * $0 * scoreFlops / 1e9 / gemmPeak, 0))%" } ?? ""))
        print("  generate: \(f(generateFlops / 1e9, 3)) GFLOP/token → \(f(generateTPS * generateFlops / 1e9)) GFLOP/s = \(f(100 * generateTPS * generateFlops / 1e9 / gemvOurs.gflops, 0))% of the measured GEMV, \(f(100 * generateTPS * generateFlops / 1e9 / gemmPeak, 0))% of the GEMM; weights read \(f(generateTPS * weightBytes / 1e9)) GB/s"
              + (tg.map { "; PyTorch \(f($0 * generateFlops / 1e9)) GFLOP/s = \(f(100 * $0 * generateFlops / 1e9 / gemvOurs.gflops, 0))% of the GEMV, \(f(100 * $0 * generateFlops / 1e9 / gemmPeak, 0))% of the GEMM" } ?? ""))
        print("  PyTorch: \(torchNote)")
    }

    static func pad(_ s: String) -> String { String(repeating: " ", count: max(0, 12 - s.count)) + s }

    /// GFLOP/s of `out[rows × out] = x · Wᵀ` through the engine's matrix product.
    static func measureGEMM(rows: Int, out: Int, inner: Int, dtype: DType) -> Double {
        let w = try! WeightMatrix(Tensor(randomLike: dtype, shape: [out, inner]), name: "bench", path: "bench", rows: out, cols: inner)
        let x = (0..<(rows * inner)).map { Float($0 % 7) * 0.01 }
        var y = [Float](repeating: 0, count: rows * out)
        var scratch = [Float](repeating: 0, count: max(1, MatMul.scratchCount(for: w)))
        var best = Double.infinity
        for _ in 0..<5 {
            best = min(best, wallSeconds {
                y.withUnsafeMutableBufferPointer { yp in
                    scratch.withUnsafeMutableBufferPointer { sp in
                        MatMul.forward(yp.baseAddress!, x, rows: rows, weight: w, bias: nil, scratch: sp.baseAddress!)
                    }
                }
            })
        }
        return 2.0 * Double(rows * out * inner) / best / 1e9
    }

    /// GFLOP/s and GB/s (weights read) of `y = W x` by our GEMV or `cblas_sgemv`.
    static func measureGEMV(out: Int, inner: Int, dtype: DType, blas: Bool) -> (gflops: Double, gbps: Double) {
        let w = try! WeightMatrix(Tensor(randomLike: dtype, shape: [out, inner]), name: "bench", path: "bench", rows: out, cols: inner)
        let x = (0..<inner).map { Float($0 % 5) * 0.1 }
        var y = [Float](repeating: 0, count: out)
        var best = Double.infinity
        for _ in 0..<20 {
            best = min(best, wallSeconds {
                y.withUnsafeMutableBufferPointer { yp in
                    if blas { MatMul.blasGEMV(yp.baseAddress!, x, w) } else { MatMul.gemv(yp.baseAddress!, x, w) }
                }
            })
        }
        return (2.0 * Double(out * inner) / best / 1e9, Double(out * inner * dtype.byteSize) / best / 1e9)
    }

    /// Runs scripts/bench/inference_torch.py on the same ids; returns its JSON numbers and a note.
    static func runTorch(_ o: Options, threads: Int, scoreIds: [[Int]], promptIds: [Int]) -> ([String: Double], String) {
        let spec = "{\"score\": \(scoreIds), \"prompt\": \(promptIds), \"new_tokens\": \(o.newTokens), \"repeats\": \(o.repeats)}"
        let specPath = NSTemporaryDirectory() + "amalgam-bench-\(getpid()).json"
        defer { try? FileManager.default.removeItem(atPath: specPath) }
        do {
            try spec.write(toFile: specPath, atomically: true, encoding: .utf8)
            let json = try runReference("scripts/bench/inference_torch.py", ["--model", o.model, "--threads", "\(threads)", "--ids", specPath])
            return (referenceNumbers(json), "transformers f32, torch \(json["torch"]?.stringValue ?? "?"), \(json["threads"]?.intValue ?? 0) threads")
        } catch {
            return ([:], "\(error)")
        }
    }
}

extension Tensor {
    /// A tensor of small pseudo-random values (deterministic) in the given float dtype.
    init(randomLike dtype: DType, shape: [Int]) {
        var state: UInt32 = 99
        let values = (0..<Tensor.elementCount(shape)).map { _ -> Float in
            state = state &* 1_664_525 &+ 1_013_904_223
            return Float(state >> 8) / Float(1 << 24) - 0.5
        }
        self = Tensor(values, shape: shape).converted(to: dtype)
    }
}
