import AmalgamCheckpoint
import AmalgamCore
import AmalgamLab
import AmalgamModels
import AmalgamSearch
import Foundation

/// `amalgam-bench dam-step`: one DAM step (merge, 2 teacher and 2 merged forwards, backward to the
/// coefficients, KL at T = 2, cosine penalty, clipped AdamW) on a digits-shaped MLP pair, beside the same
/// step in PyTorch autograd (scripts/bench/dam_step_reference.py) with the same threads, plus peak memory.
enum DAMStepBenchmark {
    static let summary = "one DAM step on the digits MLP pair (or, with --llama A B, two Llama folders) beside the same step in PyTorch autograd"

    static func run(_ arguments: [String]) throws {
        var rest = arguments, llama: [String] = []
        if let i = rest.firstIndex(of: "--llama") {
            guard i + 2 < rest.count else { throw BenchError("--llama needs two model folders") }
            llama = Array(rest[(i + 1)...(i + 2)])
            rest.removeSubrange(i...(i + 2))
        }
        let a = try BenchArguments(rest, options: ["batch", "repeats", "seq-len"])
        let batch = try a.int("batch", 64), repeats = try a.int("repeats", 200), seqLen = try a.int("seq-len", 128)
        let threads = prepareThreads()
        if !llama.isEmpty { return try runLlama(llama, batch: batch, seqLen: seqLen, repeats: repeats, threads: threads) }
        let classifier = MLPClassifier.digits
        var g = SeededGenerator(seed: 0)
        let sources = (0..<2).map { _ in (0..<classifier.parameterCount).map { _ in 0.1 * g.normal() } }
        let data = (0..<2).map { _ in
            MLPBatch(features: (0..<(batch * 64)).map { _ in Float(g.integer(below: 17)) }, inputs: 64,
                     labels: [Int32](repeating: 0, count: batch))
        }
        var configuration = DAMConfiguration()
        configuration.batchSize = batch
        configuration.steps = 10 + repeats
        let family = try DAMMLPFamily(classifier: classifier, sources: sources)
        let trainer = try DAMTrainer(configuration: configuration, family: family,
                                     datasets: data.map { d in DAMDataset(count: d.count) { d.rows($0) } })
        for _ in 0..<10 { try trainer.trainStep() }
        var best = Double.infinity
        for _ in 0..<repeats { best = min(best, try wallSeconds { try trainer.trainStep() }) }
        print("amalgam-bench dam-step: 2 sources × \(batch) examples, MLP 64-256-10, tanh, AdamW, \(threads) threads, best of \(repeats)")
        print(String(format: "  amalgam: %.3f ms per step, peak RSS %.0f MB", best * 1e3, peakMemoryMB()))
        reference(["--batch", "\(batch)", "--threads", "\(threads)", "--repeats", "\(repeats)"], ours: best)
    }

    /// One DAM step on two Llama-family folders (every linear layer, tanh, T = 2, full vocabulary, cosine
    /// penalty, clip 1, AdamW) on `batch` random sequences of `seqLen` tokens per source.
    static func runLlama(_ folders: [String], batch: Int, seqLen: Int, repeats: Int, threads: Int) throws {
        let models = try folders.map { try ModelFolder(path: $0) }
        let family = try DAMLlamaFamily(sources: models.map { (config: $0.config, weights: $0.weights as TensorSource) })
        var g = SeededGenerator(seed: 0)
        let vocabulary = family.classCount
        let datasets = (0..<2).map { _ in
            let sequences = (0..<batch).map { _ in (0..<seqLen).map { _ in g.integer(below: vocabulary) } }
            return DAMDataset(count: batch) { indices in try! TokenBatch(indices.map { sequences[$0] }) }
        }
        var configuration = DAMConfiguration()
        configuration.batchSize = batch
        configuration.steps = 1 + repeats
        let trainer = try DAMTrainer(configuration: configuration, family: family, datasets: datasets)
        try trainer.trainStep()
        var best = Double.infinity
        for _ in 0..<repeats { best = min(best, try wallSeconds { try trainer.trainStep() }) }
        print("amalgam-bench dam-step --llama: 2 sources × \(batch) × \(seqLen) tokens, \(family.layers.count) layers, tanh, AdamW, \(threads) threads, best of \(repeats)")
        print(String(format: "  amalgam: %.4f s per step, peak RSS %.0f MB", best, peakMemoryMB()))
        reference(["--llama"] + folders + ["--batch", "\(batch)", "--seq-len", "\(seqLen)", "--threads", "\(threads)", "--repeats", "\(repeats)"],
                  ours: best, unit: 1)
    }

    /// Runs scripts/bench/dam_step_reference.py with `arguments` and prints its time beside `ours` (seconds).
    static func reference(_ arguments: [String], ours best: Double, unit: Double = 1e3) {
        do {
            let json = try runReference("scripts/bench/dam_step_reference.py", arguments)
            let seconds = try referenceNumber(json, "seconds")
            let rss = (json["peak_rss_bytes"]?.doubleValue ?? 0) / 1_048_576
            print(String(format: "  PyTorch: %.4f %@ per step, peak RSS %.0f MB; amalgam is %.2f× as fast",
                         seconds * unit, unit == 1 ? "s" : "ms", rss, seconds / best))
        } catch {
            print("  PyTorch: \(error)")
        }
    }
}
