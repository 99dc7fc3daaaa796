import AmalgamCore

/// The task-arithmetic family (mergekit's `GeneralizedTaskArithmeticMerge`): task vectors
/// `δᵢ = xᵢ − base` are sparsified, weighted, optionally sign-elected, summed, optionally
/// normalised by the weights, scaled by `lambda` and added back to the base. task_arithmetic, ties,
/// dare_ties, dare_linear, breadcrumbs, breadcrumbs_ties, della and della_linear are configurations
/// of this one type.
public struct TaskArithmetic: MergeMethod {
    /// The name configs use.
    public let name: String
    /// Sign election (TIES) or none.
    public let signConsensus: Bool
    /// How each task vector is thinned, if at all.
    public let sparsifier: Sparsifier?
    /// Default of the `normalize` parameter (divide by the sum of the weights).
    public let normalizeByDefault: Bool
    /// Default of the `rescale` parameter (restore each sparsified vector's L1 norm).
    public let rescaleByDefault: Bool

    /// A configuration of the family.
    public init(name: String, signConsensus: Bool, sparsifier: Sparsifier?, normalize: Bool, rescale: Bool) {
        self.name = name
        self.signConsensus = signConsensus
        self.sparsifier = sparsifier
        self.normalizeByDefault = normalize
        self.rescaleByDefault = rescale
    }

    /// The eight configurations mergekit registers.
    public static let family: [TaskArithmetic] = [
        TaskArithmetic(name: "task_arithmetic", signConsensus: false, sparsifier: nil, normalize: false, rescale: false),
        TaskArithmetic(name: "ties", signConsensus: true, sparsifier: .magnitude, normalize: true, rescale: false),
        TaskArithmetic(name: "dare_ties", signConsensus: true, sparsifier: .random, normalize: false, rescale: true),
        TaskArithmetic(name: "dare_linear", signConsensus: false, sparsifier: .random, normalize: false, rescale: true),
        TaskArithmetic(name: "breadcrumbs", signConsensus: false, sparsifier: .magnitudeOutliers, normalize: false, rescale: false),
        TaskArithmetic(name: "breadcrumbs_ties", signConsensus: true, sparsifier: .magnitudeOutliers, normalize: false, rescale: false),
        TaskArithmetic(name: "della", signConsensus: true, sparsifier: .dellaMagprune, normalize: true, rescale: true),
        TaskArithmetic(name: "della_linear", signConsensus: false, sparsifier: .dellaMagprune, normalize: false, rescale: true),
    ]

    /// Parameters read once per tensor, with mergekit 0.1.5's defaults.
    public var globalParameters: [ParameterSpec] {
        [
            ParameterSpec("int8_mask", default: .bool(false)),
            ParameterSpec("normalize", default: .bool(normalizeByDefault)),
            ParameterSpec("rescale", default: .bool(rescaleByDefault)),
            ParameterSpec("lambda", default: .number(1)),
        ]
    }

    /// Parameters read for each model, with mergekit 0.1.5's defaults.
    public var perModelParameters: [ParameterSpec] {
        var specs = [
            ParameterSpec("weight", default: nil, nonBaseOnly: true),
            ParameterSpec("density", default: .number(1), nonBaseOnly: true),
        ]
        if sparsifier == .magnitudeOutliers { specs.append(ParameterSpec("gamma", default: .number(0.01), nonBaseOnly: true)) }
        if sparsifier == .dellaMagprune { specs.append(ParameterSpec("epsilon", default: .number(0.15), nonBaseOnly: true)) }
        return specs
    }

    /// The config must name a `base_model`.
    public var requiresBase: Bool { true }
    /// DARE and DELLA draw their masks from the tensor's seed.
    public var isRandom: Bool { sparsifier == .random || sparsifier == .dellaMagprune }

    /// Merges one tensor as the type's summary describes.
    public func merge(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (values: [Float], shape: [Int]) {
        let (aligned, base, others) = try baseRelative(inputs, context)
        if others.isEmpty { return (base, aligned.shape) }

        let normalize = try globalBool("normalize", context)
        let rescale = try globalBool("rescale", context)
        let lambda = Float(try globalNumber("lambda", context))
        // mergekit's arithmetic rounds, in the working dtype, each delta, each weight (a tensor of that
        // dtype), each weighted delta, each sum over the models (accumulated in f32), the quotient, the
        // product by lambda and the final sum; exact arithmetic rounds nothing (`r` is the identity).
        let r = context.rounding

        var deltas: [[Float]] = []
        var weights: [Float] = []
        for (position, index) in others.enumerated() {
            let input = inputs[index]
            let weight = r(Float(try modelNumber("weight", input, context)))
            var delta = Kernels.difference(aligned.tensors[index], base)
            r.apply(&delta)
            try sparsify(&delta, input: input, shape: aligned.shape, rescale: rescale,
                         seed: SeedDerivation.seed(context.seed, stream: position), context: context)
            delta.withUnsafeMutableBufferPointer { d in
                for i in d.indices { d[i] *= weight }
            }
            r.apply(&delta)
            deltas.append(delta)
            weights.append(weight)
        }

        let n = base.count
        var mixed: [Float]
        if signConsensus {
            let ones = [Float](repeating: 1, count: weights.count)
            let (m, d) = SignConsensus.mix(deltas, scales: ones, coefficients: weights)
            mixed = m
            var divisor = d
            if normalize {
                r.apply(&mixed)
                r.apply(&divisor)
                for i in 0..<n { mixed[i] /= divisor[i] == 0 ? 1 : divisor[i] }
            }
        } else {
            mixed = deltas[0]
            for d in deltas.dropFirst() {
                mixed.withUnsafeMutableBufferPointer { mx in
                    d.withUnsafeBufferPointer { dp in for i in 0..<n { mx[i] += dp[i] } }
                }
            }
            if normalize {
                var divisor: Float = r(weights.reduce(0, +))
                if abs(divisor) < 1e-8 { divisor = 1 }
                r.apply(&mixed)
                mixed.withUnsafeMutableBufferPointer { mx in for i in 0..<n { mx[i] /= divisor } }
            }
        }
        r.apply(&mixed)
        if r.followsMergekit && lambda != 1 {
            // Rounded between the product and the sum, as two torch operations.
            mixed.withUnsafeMutableBufferPointer { mx in for i in 0..<n { mx[i] = r(mx[i] * lambda) } }
        }
        mixed.withUnsafeMutableBufferPointer { mx in
            base.withUnsafeBufferPointer { b in
                if lambda != 1 && !r.followsMergekit { for i in 0..<n { mx[i] = b[i] + mx[i] * lambda } }
                else { for i in 0..<n { mx[i] = b[i] + mx[i] } }
            }
        }
        r.apply(&mixed)
        return (mixed, aligned.shape)
    }

    /// Thins one task vector with this configuration's sparsifier and that model's parameters.
    private func sparsify(_ delta: inout [Float], input: MergeInput, shape: [Int], rescale: Bool, seed: UInt64,
                          context: MergeContext) throws(MergeError) {
        guard let sparsifier else { return }
        let density = try modelNumber("density", input, context)
        switch sparsifier {
        case .magnitude:
            Sparsification.magnitude(&delta, density: density, rescale: rescale)
        case .random:
            Sparsification.random(&delta, density: density, rescale: rescale, seed: seed)
        case .magnitudeOutliers:
            let gamma = try modelNumber("gamma", input, context)
            Sparsification.magnitudeOutliers(&delta, density: density, gamma: gamma, rescale: rescale)
        case .dellaMagprune:
            let epsilon = try dellaEpsilon(input, density: density, context: context)
            Sparsification.dellaMagprune(&delta, shape: shape, density: density, epsilon: epsilon,
                                         rescale: rescale, seed: seed)
        }
    }

    /// DELLA's `epsilon` for this model, checked against its density.
    func dellaEpsilon(_ input: MergeInput, density: Double, context: MergeContext) throws(MergeError) -> Double {
        let epsilon = try modelNumber("epsilon", input, context)
        guard Sparsification.dellaAccepts(density: density, epsilon: epsilon) else {
            throw fail(context, "\(input.model): density ± epsilon must lie strictly between 0 and 1 "
                + "(density \(density), epsilon \(epsilon)); lower epsilon or move density away from 0 and 1")
        }
        return epsilon
    }
}
