import AmalgamCore
import AmalgamModels
import AmalgamSearch
import Foundation

/// `amalgam-bench dam-step`: one DAM step (merge, 2 teacher and 2 merged forwards, backward to the
/// coefficients, KL at T = 2, cosine penalty, clipped AdamW) on a digits-shaped MLP pair, beside the same
/// step in PyTorch autograd (scripts/bench/dam_step_reference.py) with the same threads, plus peak memory.
enum DAMStepBenchmark {
    static let summary = "one DAM step on the digits MLP pair beside the same step in PyTorch autograd"

    static func run(_ arguments: [String]) throws {
        let a = try BenchArguments(arguments, options: ["batch", "repeats"])
        let batch = try a.int("batch", 64), repeats = try a.int("repeats", 200)
        let threads = prepareThreads()
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
        do {
            let json = try runReference("scripts/bench/dam_step_reference.py", ["--batch", "\(batch)", "--threads", "\(threads)", "--repeats", "\(repeats)"])
            let seconds = try referenceNumber(json, "seconds")
            let rss = (json["peak_rss_bytes"]?.doubleValue ?? 0) / 1_048_576
            print(String(format: "  PyTorch: %.3f ms per step, peak RSS %.0f MB; amalgam is %.2f× as fast", seconds * 1e3, rss, seconds / best))
        } catch {
            print("  PyTorch: \(error)")
        }
    }
}
