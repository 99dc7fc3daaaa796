import AmalgamModels
import ArgumentParser

/// `--weights native|bf16|f32`: how `eval`, `score`, `generate` and `evolve` hold a model's weights.
struct WeightsOption: ParsableArguments {
    @Option(help: "How the engine holds the weights: native (as stored: a GGUF's Q8_0/Q4_0/Q4_1/Q5_0/Q5_1/Q4_K/Q5_K/Q6_K stay quantized, f32/bf16/f16 in place), bf16 or f32 (converted once in memory). See docs/engine.md.")
    var weights: String = WeightPrecision.native.rawValue

    func validate() throws {
        guard WeightPrecision(rawValue: weights) != nil else {
            throw ValidationError("--weights must be native, bf16 or f32 (got '\(weights)')")
        }
    }

    /// The chosen precision.
    var precision: WeightPrecision { WeightPrecision(rawValue: weights) ?? .native }
}
