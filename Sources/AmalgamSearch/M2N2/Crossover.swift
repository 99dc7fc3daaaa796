import AmalgamCore
import Foundation

/// Inner products of two genomes over their whole flat parameter order.
public struct InnerProducts: Sendable, Equatable {
    /// Σ a_i b_i.
    public var ab: Double
    /// Σ a_i².
    public var aa: Double
    /// Σ b_i².
    public var bb: Double

    /// The products.
    public init(ab: Double, aa: Double, bb: Double) {
        self.ab = ab
        self.aa = aa
        self.bb = bb
    }

    /// The angle ω between the two vectors: `acos` of their cosine clipped to [−1, 1]. Zero when either
    /// vector is zero (the crossover then falls back to linear interpolation).
    public var angle: Double {
        let norms = aa.squareRoot() * bb.squareRoot()
        guard norms > 0 else { return 0 }
        return acos(min(1, max(-1, ab / norms)))
    }
}

/// How a child is made from parents A and B: split-point slerp with ONE angle over the flat vectors.
///
/// Parameter i takes the interpolation weight `t_i = w` when `i < splitPoint` and `1 − w` otherwise, and
/// `child_i = sin((1 − t_i) ω) / sin ω · A_i + sin(t_i ω) / sin ω · B_i`, or the linear
/// `(1 − t_i) A_i + t_i B_i` when `sin ω ≤ 1e-6`. Plain slerp is `splitPoint = parameterCount`.
public struct CrossoverPlan: Sendable, Equatable, Codable {
    /// First parameter that takes the weight `1 − w`.
    public var splitPoint: Int
    /// The mixing ratio w in [0, 1).
    public var ratio: Double
    /// The angle between the parents.
    public var omega: Double

    /// A plan from its three numbers.
    public init(splitPoint: Int, ratio: Double, omega: Double) {
        self.splitPoint = splitPoint
        self.ratio = ratio
        self.omega = omega
    }

    /// Coefficients on A and B for interpolation weight `t`.
    public func coefficients(t: Double) -> (a: Double, b: Double) {
        let s = sin(omega)
        if s > 1e-6 { return (sin((1 - t) * omega) / s, sin(t * omega) / s) }
        return (1 - t, t)
    }

    /// Coefficients for parameters before the split point (weight w).
    public var head: (a: Float, b: Float) {
        let c = coefficients(t: ratio)
        return (Float(c.a), Float(c.b))
    }

    /// Coefficients for parameters from the split point on (weight 1 − w).
    public var tail: (a: Float, b: Float) {
        let c = coefficients(t: 1 - ratio)
        return (Float(c.a), Float(c.b))
    }
}

/// Gaussian noise added to every parameter of a child.
///
/// The noise is a pure function of (seed, parameter index): parameters come in blocks of
/// `blockSize`, each drawn from its own generator stream, so any split of the work gives the same bytes.
public struct Mutation: Sendable, Equatable, Codable {
    /// Parameters per independent noise stream.
    public static let blockSize = 1024
    /// Standard deviation of the noise.
    public var standardDeviation: Float
    /// Seed of this child's noise.
    public var seed: UInt64

    /// Noise of the given size from the given seed.
    public init(standardDeviation: Float, seed: UInt64) {
        self.standardDeviation = standardDeviation
        self.seed = seed
    }

    /// Adds the noise of block `block` to `values` (the parameters `block·blockSize ..< +values.count`).
    @inline(__always)
    public func add(block: Int, to values: UnsafeMutableBufferPointer<Float>) {
        var g = SeededGenerator(seed: seed, stream: UInt64(block))
        g.addNormals(scale: standardDeviation, to: values)
    }
}

/// What the store must build as its candidate.
public enum ChildRecipe: Sendable, Equatable {
    /// Seed genome number `index`, unchanged.
    case seed(Int)
    /// A copy of archive slot `slot` (the "no crossover" ablation; mutation follows).
    case copy(slot: Int)
    /// A crossover of archive slots `a` and `b`.
    case crossover(a: Int, b: Int, plan: CrossoverPlan)
}
