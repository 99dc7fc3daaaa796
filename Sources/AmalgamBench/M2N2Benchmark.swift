import AmalgamSearch
import Foundation

/// `amalgam-bench m2n2 [--passes N] [--seed S] [--data digits.csv]`: wall time of one from-scratch M2N2
/// run on the digits MLP (50,000 forward passes by default) and passes per second.
func m2n2Benchmark(_ arguments: [String]) throws {
    let passes = Int(option("--passes", in: arguments) ?? "") ?? 50_000
    let seed = UInt64(option("--seed", in: arguments) ?? "") ?? 0
    let data = option("--data", in: arguments) ?? "fixtures/digits/digits.csv"
    let experiment = try DigitsExperiment(csvPath: data)
    let result = try experiment.run(setting: .scratch, variant: .m2n2, seed: seed, forwardPasses: passes)
    let reference = 260.0 * Double(passes) / 50_000
    print("m2n2 digits from scratch, \(passes) forward passes (1437 train examples, 19,210 parameters), seed \(seed)")
    print(String(format: "  amalgam:   %8.2f s   %8.0f passes/s   test accuracy %.3f   peak memory %.0f MB",
                 result.seconds, Double(passes) / result.seconds, result.testAccuracy, peakMemoryMB()))
    print(String(format: "  reference: %8.2f s   %8.0f passes/s   (SakanaAI/natural_niches in JAX: the ~260 s per 50,000",
                 reference, Double(passes) / reference))
    print("             passes figure is quoted from the reference note, NOT measured here: JAX cannot run on this machine)")
    print(String(format: "  ratio:     %.1f× faster than the quoted figure", reference / result.seconds))
    print("  OPENBLAS_CORETYPE=\(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "(unset: set SKYLAKEX at start for faster GEMM)")")
}
