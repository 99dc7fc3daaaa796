/// SCE (select, calculate, erase): keep the positions where the task vectors vary most
/// (`select_topk`), weight each task vector by its mean square, erase entries that disagree with the
/// elected sign, and add the weighted mean back to the base.
public struct SCE: MergeMethod {
    /// The method; it has no configuration of its own.
    public init() {}
    /// The name configs use.
    public var name: String { "sce" }
    /// Parameters read once per tensor, with mergekit 0.1.5's defaults.
    public var globalParameters: [ParameterSpec] {
        [ParameterSpec("int8_mask", default: .bool(false)), ParameterSpec("select_topk", default: .number(1))]
    }
    /// Parameters read for each model, with mergekit 0.1.5's defaults.
    public var perModelParameters: [ParameterSpec] { [] }
    /// The config must name a `base_model`.
    public var requiresBase: Bool { true }

    /// Merges one tensor as the type's summary describes.
    public func merge(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (values: [Float], shape: [Int]) {
        let (aligned, base, others) = try baseRelative(inputs, context)
        if others.isEmpty { return (base, aligned.shape) }
        // mergekit's arithmetic rounds the task vectors, the variances ranked, each mean square, their
        // sum, each weight, each weighted entry, both sums over the models and the last two steps.
        let r = context.rounding
        var vectors = others.map { i in
            var v = Kernels.difference(aligned.tensors[i], base)
            r.apply(&v)
            return v
        }
        let n = base.count

        let topk = try globalNumber("select_topk", context)
        if topk < 1 {
            let keep = SCE.selection(vectors, density: topk, rounding: r)
            for v in vectors.indices {
                vectors[v].withUnsafeMutableBufferPointer { p in
                    for i in 0..<n where !keep[i] { p[i] = 0 }
                }
            }
        }
        // ωᵢ = mean(τᵢ²) / Σⱼ mean(τⱼ²), uniform when that sum is below 1e-6.
        var weights = vectors.map { v in
            r.isExact ? Float(Kernels.sumOfSquares(v) / Double(max(n, 1)))
                : r(Float(v.reduce(0.0) { $0 + Double(r($1 * $1)) } / Double(max(n, 1))))
        }
        let total = r(weights.reduce(0, +))
        weights = abs(total) < 1e-6 ? weights.map { _ in r(1 / Float(weights.count)) } : weights.map { r($0 / total) }

        var (mixed, divisor) = SignConsensus.mix(vectors, scales: weights, coefficients: weights, rounding: r)
        r.apply(&mixed)
        r.apply(&divisor)
        let floor = r(1e-6)
        for i in 0..<n { mixed[i] = r(base[i] + r(mixed[i] / max(divisor[i], floor))) }
        return (mixed, aligned.shape)
    }

    /// The positions kept by `select_topk`: the `int(count_nonzero(var)·density)` largest variances
    /// across models (biased), ties at the threshold to the lowest indices.
    /// With a rounding (mergekit's arithmetic) the variances are ranked as rounded to the working dtype.
    static func selection(_ vectors: [[Float]], density: Double, rounding: Rounding = .exact) -> [Bool] {
        let n = vectors.first?.count ?? 0
        if density <= 0 || n == 0 { return [Bool](repeating: false, count: n) }
        var nonzero = 0
        var keys = Gram.withPointers(vectors) { pointers in
            [UInt32](unsafeUninitializedCapacity: n) { out, count in
                nonzero = varianceKeys(pointers, count: n, into: out.baseAddress!)
                count = n
            }
        }
        if !rounding.isExact {
            nonzero = 0
            for i in keys.indices {
                keys[i] = Selection.key(rounding(Float(bitPattern: keys[i])))
                if keys[i] != 0 { nonzero += 1 }
            }
        }
        let k = Int(Double(nonzero) * density)
        var scratch = keys
        return Selection.mask(keys, Selection.cut(&scratch, count: k, descending: true))
    }

    /// The magnitude keys of the variances across `vectors` (biased, in f64, rounded to f32) of
    /// `count` positions; returns how many are non-zero.
    @inline(__always)
    static func varianceKeys(_ vectors: [UnsafePointer<Float>], count: Int, into keys: UnsafeMutablePointer<UInt32>) -> Int {
        let m = Double(vectors.count)
        var nonzero = 0
        // Eight positions at a time: each lane does the scalar loop's operations in the same order.
        let lanes = SIMD8<Double>(repeating: m), zero = SIMD8<Float>(), one = SIMD8<Int32>(repeating: 1)
        var counted = SIMD8<Int32>()
        var start = 0
        @inline(__always) func load(_ v: UnsafePointer<Float>) -> SIMD8<Double> {
            SIMD8<Double>(UnsafeRawPointer(v + start).loadUnaligned(as: SIMD8<Float>.self))
        }
        while start + 8 <= count {
            var mean = SIMD8<Double>()
            for v in vectors { mean += load(v) }
            mean /= lanes
            var variance = SIMD8<Double>()
            for v in vectors { let d = load(v) - mean; variance += d * d }
            let value = SIMD8<Float>(variance / lanes)
            counted.replace(with: counted &+ one, where: value .!= zero)
            UnsafeMutableRawPointer(keys + start).storeBytes(of: unsafeBitCast(value, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF,
                                                             as: SIMD8<UInt32>.self)
            start += 8
        }
        for lane in 0..<8 { nonzero += Int(counted[lane]) }
        for i in start..<count {
            var mean = 0.0
            for v in vectors { mean += Double(v[i]) }
            mean /= m
            var variance = 0.0
            for v in vectors { let d = Double(v[i]) - mean; variance += d * d }
            let value = Float(variance / m)
            if value != 0 { nonzero += 1 }
            keys[i] = Selection.key(value)
        }
        return nonzero
    }
}
