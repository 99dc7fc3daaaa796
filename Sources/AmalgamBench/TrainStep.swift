import AmalgamCore
import AmalgamModels
import Foundation

/// `amalgam-bench train-step --model DIR`: one forward + backward + AdamW step over every parameter (f32
/// trainable copies) on a fixed batch, beside the same step in PyTorch (transformers, f32, same thread
/// count) measured in the same run; seconds per step, tokens/s and peak memory of both.
enum TrainStepBenchmark {
    static let summary = "one forward+backward+AdamW step of a whole model beside PyTorch"

    static func run(_ arguments: [String]) throws {
        let a = try BenchArguments(arguments, options: ["model", "sequences", "seq-len", "repeats", "threads"], flags: ["no-torch"])
        let modelPath = a.string("model", "")
        guard !modelPath.isEmpty else { throw BenchError("--model DIR is required (e.g. SmolLM2-135M converted with `amalgam convert`)") }
        let sequences = try a.int("sequences", 4), length = try a.int("seq-len", 256), repeats = try a.int("repeats", 3)
        let threadCount = prepareThreads(try a["threads"].map { _ in try a.int("threads", 0) })

        let model = try LlamaModel(folder: modelPath)
        var lcg: UInt64 = 7
        func nextId() -> Int { lcg = lcg &* 6364136223846793005 &+ 1442695040888963407; return 100 + Int((lcg >> 33) % UInt64(model.config.vocabSize - 100)) }
        let ids = (0..<sequences).map { _ in (0..<length).map { _ in nextId() } }
        let batch = try TokenBatch(ids)
        let trainer = try LlamaTrainer(model: model, trainable: .all)
        let optimizer = AdamW(parameters: trainer.parameters, settings: AdamWSettings(weightDecay: 0, clipNorm: 1))
        let count = LlamaTrainer.countedRows(batch, .nextToken)
        func step() throws -> Double {
            trainer.zeroGradients()
            let loss = try trainer.accumulateGradients(batch, gradientScale: 1 / Float(count))
            optimizer.step(learningRate: 1e-5)
            return loss.mean
        }
        let firstLoss = try step()
        var best = Double.infinity, bestCPU = Double.infinity
        for _ in 0..<repeats {
            let (wall, cpu) = try wallAndCPUSeconds { _ = try step() }
            best = min(best, wall)
            bestCPU = min(bestCPU, cpu)
        }
        let ourRSS = peakResidentBytes()
        var torch: [String: Double] = [:], note = "not run (--no-torch)"
        if !a.has("no-torch") {
            (torch, note) = runTorch(model: modelPath, threads: threadCount, ids: ids, repeats: repeats)
        }
        let tokens = Double(batch.tokenCount)
        func f(_ x: Double, _ d: Int = 2) -> String { String(format: "%.\(d)f", x) }
        print("train-step: \(sequences) × \(length) tokens, every parameter trained (\(trainer.parameters.reduce(0) { $0 + $1.count }) in f32), AdamW + clipping; threads \(threadCount)")
        print("  model: \(model.config.modelType), \(model.config.numHiddenLayers) layers, hidden \(model.config.hiddenSize), vocab \(model.config.vocabSize)")
        print("                     seconds/step   tokens/s   cpu-s/step   peak RSS    first loss")
        print("  amalgam          \(InferenceBenchmark.pad(f(best, 3)))\(InferenceBenchmark.pad(f(tokens / best, 0)))\(InferenceBenchmark.pad(f(bestCPU, 3)))\(InferenceBenchmark.pad(f(Double(ourRSS) / 1e6, 0) + " MB"))\(InferenceBenchmark.pad(f(firstLoss, 4)))")
        if let ts = torch["seconds_per_step"], let tc = torch["cpu_seconds_per_step"], let tr = torch["peak_rss_bytes"] {
            print("  PyTorch          \(InferenceBenchmark.pad(f(ts, 3)))\(InferenceBenchmark.pad(f(tokens / ts, 0)))\(InferenceBenchmark.pad(f(tc, 3)))\(InferenceBenchmark.pad(f(tr / 1e6, 0) + " MB"))\(InferenceBenchmark.pad(f(torch["first_loss"] ?? .nan, 4)))")
            print("  speed ratio (PyTorch time / ours): \(f(ts / best))×; memory ratio (ours / PyTorch): \(f(Double(ourRSS) / tr))")
        }
        print("  PyTorch: \(note)")
    }

    /// Runs scripts/bench/train_step_torch.py on the same ids; returns its JSON numbers and a note.
    static func runTorch(model: String, threads: Int, ids: [[Int]], repeats: Int) -> ([String: Double], String) {
        let specPath = NSTemporaryDirectory() + "amalgam-train-bench-\(getpid()).json"
        defer { try? FileManager.default.removeItem(atPath: specPath) }
        do {
            try "{\"ids\": \(ids), \"repeats\": \(repeats), \"lr\": 1e-5}".write(toFile: specPath, atomically: true, encoding: .utf8)
            let json = try runReference("scripts/bench/train_step_torch.py", ["--model", model, "--threads", "\(threads)", "--ids", specPath])
            return (referenceNumbers(json), "transformers f32 (sdpa attention), torch \(json["torch"]?.stringValue ?? "?"), \(json["threads"]?.intValue ?? 0) threads")
        } catch {
            return ([:], "\(error)")
        }
    }
}
