/// Settings of one DAM run, checked once by `validate()`. Defaults are the released code's (dam.md) except
/// where noted.
public struct DAMConfiguration: Sendable, Equatable, Codable {
    /// Which optimiser updates the coefficients.
    public enum Optimiser: String, Sendable, Codable, CaseIterable {
        /// AdamW on every coefficient.
        case adamw
        /// MoFO: AdamW restricted, each step, to the entries whose |first moment| is in the top fraction
        /// of their tensor (the released default).
        case mofo
    }

    /// The initial value of the bias scalars.
    public enum BiasInitialisation: String, Sendable, Codable, CaseIterable {
        /// 1/N, so the untrained merge's bias is the sources' average, as its weights (up to f) are.
        case mean
        /// 1.0 per model (the released code): the untrained merge's bias is the SUM of the N biases,
        /// N times their average.
        case one

        /// The value for `sourceCount` models.
        public func value(sourceCount: Int) -> Float { self == .one ? 1 : 1 / Float(sourceCount) }
    }

    /// f in `W = Σ f(m_i) ⊙ W_i`: tanh as released, or identity.
    public var scaleFunction = DAMScaleFunction.tanh
    /// Initial weight coefficients: 1/N, or a softmax over models of random normals.
    public var initialisation = DAMInitialisation.uniform
    /// Initial bias scalars. Default `mean` (1/N), a deliberate difference from the released 1.0.
    public var biasInitialisation = BiasInitialisation.mean
    /// Distillation temperature T.
    public var temperature = 2.0
    /// Teacher top-k (softmax over the teacher's k largest logits only), or nil for every class.
    public var topK: Int?
    /// λ_sim of the cosine-similarity penalty on raw coefficients.
    public var similarityWeight = 0.01
    /// λ₁ of Σ|m| (off by default; the reference's option is 1e-6).
    public var l1Weight = 0.0
    /// λ₂ of Σ m² (off by default; the reference's option is 1e-6).
    public var l2Weight = 0.0
    /// The optimiser.
    public var optimiser = Optimiser.adamw
    /// MoFO's fraction of entries updated per tensor and step.
    public var mofoFraction = 0.3
    /// Learning rate (constant).
    public var learningRate = 1e-3
    /// Adam's β₁.
    public var beta1 = 0.9
    /// Adam's β₂.
    public var beta2 = 0.999
    /// Adam's ε.
    public var epsilon = 1e-8
    /// Decoupled weight decay.
    public var weightDecay = 0.01
    /// Global gradient-norm clip, or nil for none.
    public var gradientClip: Double? = 1.0
    /// Examples drawn from each source's dataset per step.
    public var batchSize = 1
    /// Optimisation steps.
    public var steps = 100
    /// Seed of the batch order and of a random initialisation.
    public var seed: UInt64 = 0
    /// Write the run folder's state every this many steps (0: only at the end).
    public var checkpointEvery = 0
    /// Whether the token embedding gets trainable coefficients (one per source and hidden dimension,
    /// `E = Σᵢ f(eᵢ) ⊙ Eᵢ`), like a linear layer's input columns; off: the sources' mean (dam.md: a fixed
    /// mixture unless asked). For families with an embedding (Llama); the MLP family has none.
    public var trainEmbeddings = false
    /// Whether every RMSNorm weight gets trainable coefficients (one per source and element,
    /// `w = Σᵢ f(nᵢ) ⊙ wᵢ`); off: the sources' mean. For families with norms (Llama); the MLP has none.
    public var trainNorms = false

    /// The released defaults (plain AdamW unless `optimiser` is set).
    public init() {}

    /// Fails on values training cannot run with, naming the key.
    public func validate() throws(DAMError) {
        func fail(_ key: String, _ reason: String) -> DAMError { .invalidConfiguration(key: key, reason: reason) }
        if !(temperature > 0) || !temperature.isFinite { throw fail("temperature", "\(temperature) is not > 0") }
        if let k = topK, k < 1 { throw fail("top_k", "\(k) < 1") }
        for (key, v) in [("lambda_sim", similarityWeight), ("l1", l1Weight), ("l2", l2Weight), ("weight_decay", weightDecay)]
        where !(v >= 0) || !v.isFinite { throw fail(key, "\(v) is not ≥ 0") }
        if !(learningRate > 0) || !learningRate.isFinite { throw fail("lr", "\(learningRate) is not > 0") }
        if !(mofoFraction > 0 && mofoFraction <= 1) { throw fail("mofo_fraction", "\(mofoFraction) is not in (0, 1]") }
        if !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) { throw fail("betas", "(\(beta1), \(beta2)) must lie in [0, 1)") }
        if let c = gradientClip, !(c > 0) { throw fail("clip", "\(c) is not > 0") }
        if batchSize < 1 { throw fail("batch_size", "\(batchSize) < 1") }
        if steps < 0 { throw fail("steps", "\(steps) < 0") }
        if checkpointEvery < 0 { throw fail("checkpoint_every", "\(checkpointEvery) < 0") }
    }
}
