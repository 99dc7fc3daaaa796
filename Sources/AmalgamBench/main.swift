import Foundation

/// `amalgam-bench NAME [ARGS]`: each benchmark prints our figure beside a reference measured in the
/// same run, plus peak memory.
let benchmarks: [(name: String, summary: String, run: ([String]) throws -> Void)] = [
    ("read-checkpoint", ReadCheckpointBench.summary, ReadCheckpointBench.run),
    ("synth-models", "write random Llama-shaped bf16 models (a base and fine-tunes) for merge benchmarks", SynthModels.run),
    ("memcpy", "memory bandwidth of memcpy (the reference for streaming kernels)", MemcpyBench.run),
    ("dequant", "GGUF dequantization GB/s per type beside memcpy", DequantBench.run),
    ("tokenize", "tokens/s encoding Shakespeare beside the Python tokenizers library", runTokenizeBenchmark),
    ("inference", "SmolLM2 scoring and generation tokens/s beside transformers", InferenceBenchmark.run),
    ("mlp", "digits MLP classifier forward beside PyTorch addmm", MLPBenchmark.run),
    ("m2n2", "wall time and passes/s of one from-scratch M2N2 digits run", m2n2Benchmark),
    ("m2n2-parts", "time of each part of an M2N2 step on digits", m2n2PartsBenchmark),
    ("eval", EvalBenchmark.summary, EvalBenchmark.run),
    ("dam-step", DAMStepBenchmark.summary, DAMStepBenchmark.run),
    ("train-step", TrainStepBenchmark.summary, TrainStepBenchmark.run),
    ("queue", QueueBenchmark.summary, QueueBenchmark.run),
]

let arguments = Array(CommandLine.arguments.dropFirst())
guard let name = arguments.first, let bench = benchmarks.first(where: { $0.name == name }) else {
    print("usage: amalgam-bench NAME [ARGS]\n")
    for b in benchmarks { print("  \(b.name.padding(toLength: 18, withPad: " ", startingAt: 0)) \(b.summary)") }
    exit(arguments.isEmpty ? 0 : 2)
}
do {
    try bench.run(Array(arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("amalgam-bench \(name): \(error)\n".utf8))
    exit(1)
}
