import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamTestSupport
import Testing

/// What karcher and arcee_fusion must achieve on bf16 models, beyond BF16Tests' closeness to mergekit's
/// bf16 arithmetic (a bound that the plain mean, or the base model, would also meet).
@Suite struct BF16MethodTests {
    /// karcher on bf16 models: we compute in f32 and round once whatever `dtype` says, so our result for
    /// the `dtype: bfloat16` config must equal, within one bf16 step everywhere, what mergekit computes
    /// in f32 for the same models (`karcher_bf16_f32math`). The plain mean of the models is checked to
    /// fail the same comparison, so the bound tells the methods apart.
    @Test func karcherOnBF16ModelsIsMergekitsF32KarcherMeanRoundedOnce() throws {
        let outputs = try Reference.outputs("karcher_bf16")
        #expect(!outputs.isEmpty)
        let f32Math = try SafetensorsFile(path: fixturesDirectory + "/merge/expected/karcher_bf16_f32math/model.safetensors")
        var meanFailures = 0
        for output in outputs {
            let expected = try f32Math.tensor(output.tensor).floats()
            let ours = Reference.compare(output.ours, expected, bf16: true, tensor: output.tensor)
            #expect(ours.failures == 0, "\(ours)")
            let count = Float(output.inputs.count)
            let mean = (0..<expected.count).map { i in output.inputs.reduce(Float(0)) { $0 + $1.values[i] } / count }
            meanFailures += Reference.compare(mean, expected, bf16: true, tensor: output.tensor).failures
        }
        #expect(meanFailures > 0, "the plain mean passes this comparison too: it cannot tell karcher from the mean")
    }

    /// arcee_fusion takes, element by element, either the base's value or the other model's: in bf16
    /// every output element is one of the two (within the one step of mergekit's bf16 addition), in
    /// mergekit's output and in ours. Which elements
    /// take the other model's value depends on outliers of an importance that bf16 rounding blurs, so
    /// the sets differ (BF16Tests); but as mergekit does, ours must take some and not all:
    /// returning the base (none taken), or the other model (all taken), fails.
    @Test func arceeFusionOnBF16ModelsTakesEachElementFromTheBaseOrTheOtherModel() throws {
        let outputs = try Reference.outputs("arcee_fusion_bf16")
        #expect(!outputs.isEmpty)
        var differing = 0, takenByMergekit = 0, takenByOurs = 0
        for output in outputs {
            let base = output.inputs[output.baseIndex!].values, other = output.inputs[1 - output.baseIndex!].values
            let ours = output.ours.map(BFloat16.round)
            var neither = 0
            // mergekit adds the mask times (other − base) to the base in bf16, which can land one step
            // from the other model's value; a value is the nearer input's within one step.
            func taken(_ v: Float, _ i: Int) -> Bool? {
                let step = Reference.bf16Step(max(abs(base[i]), abs(other[i])))
                if abs(v - other[i]) <= step && abs(v - other[i]) < abs(v - base[i]) { return true }
                if abs(v - base[i]) <= step { return false }
                return nil
            }
            for i in base.indices where base[i] != other[i] {
                differing += 1
                switch taken(output.mergekit[i], i) { case true?: takenByMergekit += 1; case false?: break; case nil: neither += 1 }
                switch taken(ours[i], i) { case true?: takenByOurs += 1; case false?: break; case nil: neither += 1 }
            }
            #expect(neither == 0, "\(output.tensor): \(neither) values are neither the base's nor the other model's")
        }
        #expect(takenByMergekit > 0)
        #expect(takenByOurs > 0 && takenByOurs < differing,
                "ours take \(takenByOurs) of \(differing) differing elements from the other model, mergekit \(takenByMergekit)")
    }
}
