import AmalgamModels

/// AdamW or MoFO (`AmalgamModels.AdamW`) over DAM's coefficients, held as the released code holds them:
/// one tensor per layer and source for the weight coefficients (`fc1.weight_coefficients.0`, `[inputs]`)
/// and one per layer and source for the bias scalar (`[1]`), so MoFO's top fraction is taken within each.
final class DAMOptimiser {
    let tensors: [TrainableTensor]
    let ranges: [Range<Int>]
    let adamw: AdamW
    let learningRate: Double

    init(configuration c: DAMConfiguration, layout: DAMLayout) {
        var tensors: [TrainableTensor] = [], ranges: [Range<Int>] = []
        for (l, layer) in layout.layers.enumerated() {
            for k in 0..<layout.sourceCount {
                let r = layout.weightRange(layer: l, model: k)
                tensors.append(TrainableTensor(zeros: "\(layer.name).weight_coefficients.\(k)", shape: [r.count]))
                ranges.append(r)
            }
            if layer.hasBias {
                for k in 0..<layout.sourceCount {
                    let i = layout.biasIndex(layer: l, model: k)
                    tensors.append(TrainableTensor(zeros: "\(layer.name).bias_coefficients.\(k)", shape: [1]))
                    ranges.append(i ..< i + 1)
                }
            }
        }
        self.tensors = tensors
        self.ranges = ranges
        learningRate = c.learningRate
        adamw = AdamW(parameters: tensors, settings: AdamWSettings(
            beta1: c.beta1, beta2: c.beta2, epsilon: c.epsilon, weightDecay: c.weightDecay, clipNorm: c.gradientClip,
            mofoFraction: c.optimiser == .mofo ? c.mofoFraction : nil))
    }

    /// One step from `gradient` (clipped by AdamW when configured); returns the norm before clipping.
    func update(_ coefficients: inout [Float], gradient: [Float]) -> Double {
        for (t, r) in zip(tensors, ranges) {
            for (j, i) in r.enumerated() {
                t.value[j] = coefficients[i]
                t.gradient[j] = gradient[i]
            }
        }
        let norm = adamw.step(learningRate: learningRate)
        for (t, r) in zip(tensors, ranges) {
            for (j, i) in r.enumerated() { coefficients[i] = t.value[j] }
        }
        return norm
    }

    /// Steps taken.
    var stepCount: Int { adamw.stepCount }

}
