import Foundation

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny generator used to expand one 64-bit seed into the
/// state of a stronger generator and to mix seeds together.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    /// Starts from `seed` (any value, zero included).
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mix(state)
    }

    /// The SplitMix64 finaliser: a bijective 64-bit mix in which every input bit affects every output bit.
    @inlinable
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** (Blackman & Vigna), seeded through SplitMix64: the one source of randomness in a search.
///
/// Its whole state is four words, so a run can be saved and resumed bit for bit. Draws: raw 64-bit words,
/// uniform doubles in [0, 1), integers in a range, standard normals (a 256-layer ziggurat), and
/// categorical indices from non-negative weights.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable {
    /// The four state words (all zero is impossible after seeding).
    public private(set) var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose state is expanded from `seed` by SplitMix64.
    public init(seed: UInt64) {
        var s = seed
        state = (Self.splitMix(&s), Self.splitMix(&s), Self.splitMix(&s), Self.splitMix(&s))
    }

    /// A generator resumed from saved state words.
    public init(state: (UInt64, UInt64, UInt64, UInt64)) { self.state = state }

    /// A generator for stream `stream` of `seed`: independent streams for data-split parallel work.
    public init(seed: UInt64, stream: UInt64) {
        var s = seed ^ (stream &* 0xD1B5_4A32_D192_ED03)
        _ = Self.splitMix(&s)
        self.init(seed: Self.splitMix(&s) ^ stream)
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.state.0 == b.state.0 && a.state.1 == b.state.1 && a.state.2 == b.state.2 && a.state.3 == b.state.3
    }

    /// SplitMix64: one step.
    @inline(__always)
    static func splitMix(_ s: inout UInt64) -> UInt64 {
        s &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mix(s)
    }

    /// The next 64 random bits.
    @inline(__always)
    public mutating func next() -> UInt64 { Self.step(&state) }

    /// One xoshiro256** step of `s`: its output, and `s` advanced. On a local copy of the state it stays in
    /// registers (see `addNormals`).
    @inline(__always)
    static func step(_ s: inout (UInt64, UInt64, UInt64, UInt64)) -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 &- k)) }

    /// A uniform double in [0, 1) with 53 random bits.
    @inline(__always)
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in [0, 1) with 53 random bits (the same draw as `uniform()`).
    @inline(__always)
    public mutating func nextDouble() -> Double { uniform() }

    /// Uniform in [0, 1) with 24 random bits.
    @inline(__always)
    public mutating func nextFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// True with probability `p` (exactly: a 53-bit uniform below `p`); p ≤ 0 never, p ≥ 1 always.
    @inline(__always)
    public mutating func bernoulli(_ p: Double) -> Bool { uniform() < p }

    /// A uniform integer in `0..<upperBound` (Lemire's unbiased multiply-shift).
    public mutating func integer(below upperBound: Int) -> Int {
        precondition(upperBound > 0, "integer(below:) needs a positive bound")
        return Int(next(upperBound: UInt64(upperBound)))
    }

    /// A standard normal draw (mean 0, variance 1).
    @inline(__always)
    public mutating func normal() -> Float {
        let bits = next()
        let layer = Int(bits & 0xFF)
        // The sign and magnitude come from the high 32 bits, the layer from the low 8: independent bits,
        // which avoids the correlation Doornik (2005) found in the original ziggurat.
        let u = Int32(truncatingIfNeeded: bits >> 32)
        let z = NormalZiggurat.shared
        if UInt32(u.magnitude) < z.k[layer] { return Float(Double(u) * z.w[layer]) }
        return normalTail(u: u, layer: layer)
    }

    /// Adds `scale · normal()` to each value, in index order: the very draws of one `normal()` per value,
    /// with the ziggurat's tables fetched once per buffer instead of once per draw (a hot loop: M2N2's
    /// mutation draws 19,210 of them per child). The state words live in locals that the rare slow path
    /// copies in and out, so that the fast path keeps them in registers: stepping `self` in place made the
    /// compiler store and reload the four words on every draw (half the loop's time).
    public mutating func addNormals(scale: Float, to values: UnsafeMutableBufferPointer<Float>) {
        let z = NormalZiggurat.shared
        var s = state
        z.k.withUnsafeBufferPointer { k in
            z.w.withUnsafeBufferPointer { w in
                for i in values.indices {
                    let bits = Self.step(&s)
                    let layer = Int(bits & 0xFF)
                    let u = Int32(truncatingIfNeeded: bits >> 32)
                    let draw: Float
                    if UInt32(u.magnitude) < k[layer] {
                        draw = Float(Double(u) * w[layer])
                    } else {
                        var slow = SeededGenerator(state: s)
                        draw = slow.normalTail(u: u, layer: layer)
                        s = slow.state
                    }
                    values[i] += scale * draw
                }
            }
        }
        state = s
    }

    /// The slow path of the ziggurat: the wedge or the tail.
    private mutating func normalTail(u firstU: Int32, layer firstLayer: Int) -> Float {
        let z = NormalZiggurat.shared
        var u = firstU
        var layer = firstLayer
        while true {
            let x = Double(u) * z.w[layer]
            if layer == 0 {
                var tx: Double, ty: Double
                repeat {
                    tx = -log(1 - uniform()) / NormalZiggurat.r
                    ty = -log(1 - uniform())
                } while ty + ty < tx * tx
                return Float(u > 0 ? NormalZiggurat.r + tx : -NormalZiggurat.r - tx)
            }
            if z.f[layer] + uniform() * (z.f[layer - 1] - z.f[layer]) < exp(-0.5 * x * x) { return Float(x) }
            let bits = next()
            layer = Int(bits & 0xFF)
            u = Int32(truncatingIfNeeded: bits >> 32)
            if UInt32(u.magnitude) < z.k[layer] { return Float(Double(u) * z.w[layer]) }
        }
    }

    /// An index drawn with probability proportional to `weights` (non-negative, not all zero), by
    /// inverting the cumulative sum in index order.
    public mutating func categorical(_ weights: [Double]) -> Int {
        let total = weights.reduce(0, +)
        precondition(total > 0 && total.isFinite, "categorical needs positive finite total weight")
        let target = uniform() * total
        var cumulative = 0.0
        for (i, w) in weights.enumerated() {
            cumulative += w
            if target < cumulative { return i }
        }
        return weights.lastIndex { $0 > 0 }!  // rounding left target at the very end
    }
}

/// Tables of Marsaglia & Tsang's ziggurat for the standard normal, 256 layers, 32-bit magnitudes.
struct NormalZiggurat: Sendable {
    /// Start of the tail.
    static let r = 3.6541528853610088
    /// Area of each layer.
    static let v = 0.00492867323399

    let k: [UInt32]
    let w: [Double]
    let f: [Double]

    static let shared = NormalZiggurat()

    private init() {
        let m = 2147483648.0
        var k = [UInt32](repeating: 0, count: 256)
        var w = [Double](repeating: 0, count: 256)
        var f = [Double](repeating: 0, count: 256)
        var dn = Self.r
        var tn = dn
        let q = Self.v / exp(-0.5 * dn * dn)
        k[0] = UInt32(dn / q * m)
        k[1] = 0
        w[0] = q / m
        w[255] = dn / m
        f[0] = 1
        f[255] = exp(-0.5 * dn * dn)
        for i in stride(from: 254, through: 1, by: -1) {
            dn = (-2 * log(Self.v / dn + exp(-0.5 * dn * dn))).squareRoot()
            k[i + 1] = UInt32(dn / tn * m)
            tn = dn
            f[i] = exp(-0.5 * dn * dn)
            w[i] = dn / m
        }
        self.k = k
        self.w = w
        self.f = f
    }
}

/// Seeds derived from a run seed, so each tensor (and each fixed chunk of a tensor) draws from its own
/// stream: results do not depend on the order tensors are merged in or on the number of threads.
public enum SeedDerivation {
    /// FNV-1a 64 of the UTF-8 bytes: stable across runs and platforms, unlike Swift's `hashValue`.
    public static func fnv1a64(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// The seed for the tensor `name` in a run seeded with `runSeed`.
    public static func seed(run runSeed: UInt64, tensor name: String) -> UInt64 {
        SplitMix64.mix(SplitMix64.mix(runSeed) ^ fnv1a64(name))
    }

    /// The seed of sub-stream `index` (a model, a chunk) of `seed`.
    public static func seed(_ seed: UInt64, stream index: Int) -> UInt64 {
        SplitMix64.mix(seed &+ 0x9E37_79B9_7F4A_7C15 &* (UInt64(truncatingIfNeeded: index) &+ 1))
    }
}
