import AmalgamCore
import AmalgamLab
import AmalgamModels
import AmalgamSearch
import Foundation

/// `amalgam-bench m2n2 [--passes N] [--seed S] [--data digits.csv] [--reference-passes N]`: wall time of one
/// from-scratch M2N2 run on the digits MLP (50,000 forward passes by default) beside the dense GEMM floor
/// measured in the same run and the JAX reference's time (measured on `--reference-passes`, default 1000,
/// and scaled linearly: the reference's time per pass does not depend on the pass number).
func m2n2Benchmark(_ arguments: [String]) throws {
    let a = try BenchArguments(arguments, options: ["passes", "seed", "data", "reference-passes"])
    let passes = try a.int("passes", 50_000), seed = UInt64(try a.int("seed", 0))
    let data = a.string("data", "fixtures/digits/digits.csv")
    let experiment = try DigitsExperiment(csvPath: data)
    let mlp = experiment.classifier, train = experiment.train
    let uptime = loadAverage()

    // The floor: the dense forward (two BLAS sgemm, all threads) of one pass, timed in this run.
    let workspace = MLPWorkspace(classifier: mlp, count: train.count)
    let parameters = DigitsExperiment.gaussianSeedsForBenchmark(count: mlp.parameterCount)
    var best = Double.infinity
    for _ in 0..<200 {
        best = min(best, wallSeconds { parameters.withUnsafeBufferPointer { mlp.forward(parameters: $0.baseAddress!, batch: train, workspace: workspace) } })
    }
    let denseFlops = 2.0 * Double(train.count) * Double(mlp.parameterCount)  // one multiply-add per parameter per example
    let gemmRate = denseFlops / best
    let kernel = MLPSparseScoring(classifier: mlp, batch: train)
    let kernelFlops = 2.0 * Double(kernel.multiplyAdds)

    let cpuStart = processCPUSeconds()
    let result = try experiment.run(setting: .scratch, variant: .m2n2, seed: seed, forwardPasses: passes)
    let cpu = processCPUSeconds() - cpuStart
    let threads = ProcessInfo.activeProcessorCountCached
    let team = threads == 1 ? "one thread (no parallel regions)"
        : ParallelTeam.shared.threads > 1 ? "ParallelTeam (the default)" : "Dispatch regions (AMALGAM_PARALLEL_TEAM=0)"
    print("m2n2 digits from scratch, \(passes) forward passes (1437 train examples, 19,210 parameters), seed \(seed), \(threads) threads, \(team), load at start \(uptime)")
    print(String(format: "  amalgam:    wall %8.2f s  %6.0f passes/s   CPU %8.2f s (%.3f ms/pass, all threads)   test accuracy %.3f   peak memory %.0f MB",
                 result.seconds, Double(passes) / result.seconds, cpu, cpu / Double(passes) * 1e3, result.testAccuracy, peakMemoryMB()))
    print(String(format: "  GEMM floor: dense forward %.1f MFLOP/pass; BLAS sgemm pair measured now: %.1f µs = %.1f GFLOP/s → %.2f s for %d passes",
                 denseFlops / 1e6, best * 1e6, gemmRate / 1e9, denseFlops * Double(passes) / gemmRate, passes))
    print(String(format: "              our kernel visits %.1f MFLOP/pass (block-sparse first layer, second layer padded to 16) → %.2f s at that rate",
                 kernelFlops / 1e6, kernelFlops * Double(passes) / gemmRate))
    print(String(format: "  our wall ÷ dense GEMM floor: %.2f", result.seconds / (denseFlops * Double(passes) / gemmRate)))
    let referencePasses = min(passes, try a.int("reference-passes", 1000))
    if let measured = try? jaxReference(passes: referencePasses, data: data) {
        let reference = measured * Double(passes) / Double(referencePasses)
        print(String(format: "  JAX reference (scripts/bench/m2n2_reference.py, measured now on %d passes: %.2f s, scaled to %d): wall %.2f s → amalgam is %.2f× as fast",
                     referencePasses, measured, passes, reference, reference / result.seconds))
    } else {
        print("  JAX reference: not measured (needs jax in the reference environment \(referencePython): scripts/refenv.sh)")
    }
    print("  load average at the end: \(loadAverage())" +
          " on \(ProcessInfo.processInfo.activeProcessorCount) cores (other work on the machine inflates the wall time)")
}

/// Runs the JAX re-implementation of the released algorithm for timing; its wall seconds for `passes`.
func jaxReference(passes: Int, data: String) throws -> Double {
    try referenceNumber(try runReference("scripts/bench/m2n2_reference.py", ["--passes", "\(passes)", "--data", data]), "seconds")
}

/// `amalgam-bench m2n2-parts`: CPU time of each part of one pass (crossover, mutation, angle, scoring, the
/// competition bookkeeping), averaged over repetitions, and the wall time of the pass's two parallel regions
/// beside their CPU time ÷ threads (what splitting them over the cores costs).
func m2n2PartsBenchmark(_ arguments: [String]) throws {
    let a = try BenchArguments(arguments, options: ["repetitions", "data"])
    let repetitions = try a.int("repetitions", 200)
    let experiment = try DigitsExperiment(csvPath: a.string("data", "fixtures/digits/digits.csv"))
    let mlp = experiment.classifier
    let seeds = experiment.seeds(setting: .scratch, runSeed: 0)
    let store = try FlatGenomeStore(parameterCount: mlp.parameterCount, slotCount: 2, seeds: seeds)
    try store.makeCandidate(.seed(0), mutation: nil); try store.keepCandidate(inSlot: 0)
    try store.makeCandidate(.seed(1), mutation: nil); try store.keepCandidate(inSlot: 1)
    let fused = MLPSparseScoring(classifier: mlp, batch: experiment.train)
    let workspace = MLPWorkspace(classifier: mlp, count: experiment.train.count)
    var scores = [Float](repeating: 0, count: experiment.train.count)
    func cpu(_ body: () throws -> Void) rethrows -> Double {
        let start = processCPUSeconds()
        for _ in 0..<repetitions { try body() }
        return (processCPUSeconds() - start) / Double(repetitions) * 1e3
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
    // The competition bookkeeping of one pass on a 21 × 1437 matrix of 0/1 scores, as `M2N2Search.step` runs it:
    // inverse crowding and fitness of the 20 members, attraction to parent 1, then with the child's row
    // inverse crowding and fitness of all 21.
    var g = SeededGenerator(seed: 7)
    let n = experiment.train.count
    let matrix = ScoreMatrix(rows: 21, columns: n, values: (0..<(21 * n)).map { _ in g.uniform() < 0.6 ? 1 : 0 })
    let sums = matrix.columnSums()
    let bookkeeping = cpu {
        let inverse = Competition.inverseCrowding(columnSums: sums, alpha: 1)
        _ = Competition.fitness(matrix, rows: 20, inverseCrowding: inverse)
        _ = Competition.attraction(matrix, rows: 20, to: 3, inverseCrowding: inverse)
        _ = Competition.fitness(matrix, inverseCrowding: Competition.inverseCrowding(columnSums: sums, alpha: 1))
    }
    let columnSums = cpu { _ = matrix.columnSums() }
    // What splitting a pass's two parallel regions over the threads costs: their wall time per call (best of
    // five batches) beside their CPU time; with perfect splitting wall = CPU / threads. Through Dispatch
    // (`parallelChunks`, with AMALGAM_PARALLEL_TEAM=0) or the yielding `ParallelTeam` (the default).
    let threads = ProcessInfo.activeProcessorCountCached
    func bestWall(_ body: () throws -> Void) rethrows -> Double {
        var best = Double.infinity
        for _ in 0..<5 { best = min(best, try wallSeconds { for _ in 0..<repetitions { try body() } } / Double(repetitions)) }
        return best * 1e3
    }
    let sparseWall = bestWall {
        store.candidate.withUnsafeBufferPointer { p in
            scores.withUnsafeMutableBufferPointer { fused.scoreCorrect(parameters: p.baseAddress!, into: $0) }
        }
    }
    let mutatedWall = try bestWall { seed += 1; try store.makeCandidate(.crossover(a: 0, b: 1, plan: plan), mutation: Mutation(standardDeviation: 0.01, seed: seed)) }
    print("CPU ms per call over \(repetitions) calls (process CPU time, all threads):")
    print(String(format: "  crossover %.3f   crossover+mutation %.3f   angle %.3f   score (2 GEMMs) %.3f   score (fused sparse) %.3f",
                 crossover, mutated, angle, gemm, sparse))
    print(String(format: "  competition bookkeeping of one pass (fitness, attraction, fitness with the child) %.3f   column sums of 21 rows %.3f",
                 bookkeeping, columnSums))
    print(String(format: "  wall ms per call on %d threads (%@), best of 5 batches: score (fused sparse) %.3f (CPU ÷ threads %.3f)   crossover+mutation %.3f (CPU ÷ threads %.3f)",
                 threads, ParallelTeam.shared.threads > 1 ? "ParallelTeam" : "Dispatch", sparseWall, sparse / Double(threads),
                 mutatedWall, mutated / Double(threads)))
}
