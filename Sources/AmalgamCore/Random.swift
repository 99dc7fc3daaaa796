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

/// xoshiro256** (Blackman & Vigna 2018): fast, 256-bit state, passes BigCrush. Every random draw in
/// Amalgam comes from one of these, seeded explicitly, so a seed fixes the output bytes.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    @usableFromInline var s0, s1, s2, s3: UInt64
    /// The second normal of the last Box-Muller pair, if not used yet.
    @usableFromInline var spareNormal: Double?

    /// Seeds the 256-bit state from `seed` through SplitMix64, as the xoshiro authors recommend
    /// (never all zero).
    public init(seed: UInt64) {
        var sm = SplitMix64(seed: seed)
        s0 = sm.next(); s1 = sm.next(); s2 = sm.next(); s3 = sm.next()
        spareNormal = nil
    }

    /// The next 64 random bits.
    @inlinable
    public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inlinable @inline(__always)
    func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 &- k)) }

    /// Uniform in [0, 1) with 53 random bits.
    @inlinable
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in [0, 1) with 24 random bits.
    @inlinable
    public mutating func nextFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// True with probability `p` (exactly: a 53-bit uniform below `p`); p ≤ 0 never, p ≥ 1 always.
    @inlinable
    public mutating func bernoulli(_ p: Double) -> Bool { nextDouble() < p }

    /// A standard normal draw (Box-Muller; the pair's second value is kept for the next call).
    public mutating func nextNormal() -> Double {
        if let spare = spareNormal { spareNormal = nil; return spare }
        // 1 - u is in (0, 1], so the logarithm is finite.
        let u1 = 1 - nextDouble()
        let u2 = nextDouble()
        let radius = (-2 * Foundation.log(u1)).squareRoot()
        let angle = 2 * Double.pi * u2
        spareNormal = radius * Foundation.sin(angle)
        return radius * Foundation.cos(angle)
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
