import AmalgamModels
import AmalgamSearch
import Foundation

/// `amalgam-bench m2n2 [--passes N] [--seed S] [--data digits.csv]`: wall time of one from-scratch M2N2
/// run on the digits MLP (50,000 forward passes by default) and passes per second.
func m2n2Benchmark(_ arguments: [String]) throws {
    let passes = Int(option("--passes", in: arguments) ?? "") ?? 50_000
    let seed = UInt64(option("--seed", in: arguments) ?? "") ?? 0
    let data = option("--data", in: arguments) ?? "fixtures/digits/digits.csv"
    let experiment = try DigitsExperiment(csvPath: data)
    let cpuStart = processCPUSeconds()
    let result = try experiment.run(setting: .scratch, variant: .m2n2, seed: seed, forwardPasses: passes)
    let cpu = processCPUSeconds() - cpuStart
    let reference = 260.0 * Double(passes) / 50_000
    print("m2n2 digits from scratch, \(passes) forward passes (1437 train examples, 19,210 parameters), seed \(seed)")
    print(String(format: "  amalgam:   wall %8.2f s  %6.0f passes/s   CPU %8.2f s (%.2f ms/pass, all threads)   test accuracy %.3f   peak memory %.0f MB",
                 result.seconds, Double(passes) / result.seconds, cpu, cpu / Double(passes) * 1e3, result.testAccuracy, peakMemoryMB()))
    print(String(format: "  reference: wall %8.2f s  %6.0f passes/s   (SakanaAI/natural_niches, JAX: ~260 s per 50,000 passes,", reference, Double(passes) / reference))
    print("             a figure QUOTED from the reference note, NOT measured here: JAX is not installed on this machine)")
    print(String(format: "  quoted reference wall ÷ our wall: %.2f   (÷ our CPU time: %.2f)", reference / result.seconds, reference / cpu))
    print("  load average at the end: \((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?")" +
          " on \(ProcessInfo.processInfo.activeProcessorCount) cores (other work on the machine inflates the wall time)")
}

/// CPU time used so far by every thread of this process.
func processCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// `amalgam-bench m2n2-parts`: CPU time of each part of one pass, averaged over repetitions.
func m2n2PartsBenchmark(_ arguments: [String]) throws {
    let repetitions = Int(option("--repetitions", in: arguments) ?? "") ?? 200
    let experiment = try DigitsExperiment(csvPath: option("--data", in: arguments) ?? "fixtures/digits/digits.csv")
    let mlp = experiment.classifier
    let seeds = experiment.seeds(setting: .scratch, runSeed: 0)
    let store = try FlatGenomeStore(parameterCount: mlp.parameterCount, slotCount: 2, seeds: seeds)
    try store.makeCandidate(.seed(0), mutation: nil); try store.keepCandidate(inSlot: 0)
    try store.makeCandidate(.seed(1), mutation: nil); try store.keepCandidate(inSlot: 1)
    let fused = MLPSparseScoring(classifier: mlp, batch: experiment.train)
    let workspace = MLPWorkspace(classifier: mlp, count: experiment.train.count)
    var scores = [Float](repeating: 0, count: experiment.train.count)
    func cpu(_ body: () throws -> Void) rethrows -> Double {
        var t0 = timespec(), t1 = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0)
        for _ in 0..<repetitions { try body() }
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1)
        return (Double(t1.tv_sec - t0.tv_sec) + Double(t1.tv_nsec - t0.tv_nsec) / 1e9) / Double(repetitions) * 1e3
    }
    let plan = CrossoverPlan(splitPoint: 9000, ratio: 0.3, omega: 1.5)
    let crossover = try cpu { try store.makeCandidate(.crossover(a: 0, b: 1, plan: plan), mutation: nil) }
    var seed: UInt64 = 0
    let mutated = try cpu { seed += 1; try store.makeCandidate(.crossover(a: 0, b: 1, plan: plan), mutation: Mutation(standardDeviation: 0.01, seed: seed)) }
    let angle = try cpu { _ = try store.innerProducts(0, 1) }
    let gemm = cpu {
        store.candidate.withUnsafeBufferPointer { p in
            scores.withUnsafeMutableBufferPointer { mlp.scoreCorrect(parameters: p.baseAddress!, batch: experiment.train, workspace: workspace, into: $0) }
        }
    }
    let sparse = cpu {
        store.candidate.withUnsafeBufferPointer { p in
            scores.withUnsafeMutableBufferPointer { fused.scoreCorrect(parameters: p.baseAddress!, into: $0) }
        }
    }
    print("CPU ms per call over \(repetitions) calls (process CPU time, all threads):")
    print(String(format: "  crossover %.3f   crossover+mutation %.3f   angle %.3f   score (2 GEMMs) %.3f   score (fused sparse) %.3f",
                 crossover, mutated, angle, gemm, sparse))
}
