import Foundation

/// Spherical interpolation between the base (t = 0) and one other model (t = 1), over the whole
/// flattened tensor, in f32 as mergekit does for every dtype.
public struct Slerp: MergeMethod {
    /// The method; it has no configuration of its own.
    public init() {}
    /// The name configs use.
    public var name: String { "slerp" }
    /// Parameters read once per tensor, with mergekit 0.1.5's defaults.
    public var globalParameters: [ParameterSpec] { [ParameterSpec("t", default: nil)] }
    /// Parameters read for each model, with mergekit 0.1.5's defaults.
    public var perModelParameters: [ParameterSpec] { [] }
    /// The config must name a `base_model`.
    public var requiresBase: Bool { true }
    /// A tensor only one model has passes through unchanged.
    public var missingTensorPolicy: MissingTensorPolicy { .passthroughSingleton }

    /// Merges one tensor as the type's summary describes.
    public func merge(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (values: [Float], shape: [Int]) {
        if inputs.count == 1 { return (inputs[0].values, inputs[0].shape) }
        let baseIndex = try requireBase(context)
        let aligned = try align(inputs, context)
        guard inputs.count == 2 else {
            throw fail(context, "interpolates exactly two models (the base and one other), got \(inputs.count): "
                + inputs.map(\.model).joined(separator: ", ") + "; use multislerp or karcher for more")
        }
        let t = try globalNumber("t", context)
        let v0 = aligned.tensors[baseIndex], v1 = aligned.tensors[1 - baseIndex]
        let (c0, c1) = Slerp.coefficients(t: t, v0, v1)
        var out = [Float](repeating: 0, count: v0.count)
        for i in out.indices { out[i] = c0 * v0[i] + c1 * v1[i] }
        // mergekit writes the f32 result into a tensor of the inputs' dtype.
        context.rounding.apply(&out)
        return (out, aligned.shape)
    }

    /// The two coefficients of `slerp(t, v0, v1)`: norms (only above 1e-8) normalise the dot product;
    /// `|dot| > 0.9995` falls back to linear interpolation.
    static func coefficients(t: Double, _ v0: [Float], _ v1: [Float]) -> (Float, Float) {
        if v0.isEmpty { return (Float(1 - t), Float(t)) }
        return coefficients(t: t, squares0: Kernels.sumOfSquares(v0), squares1: Kernels.sumOfSquares(v1), dot: Kernels.dot(v0, v1))
    }

    /// The coefficients from `Σv0²`, `Σv1²` and `Σv0·v1`.
    static func coefficients(t: Double, squares0: Double, squares1: Double, dot rawDot: Double) -> (Float, Float) {
        var n0 = squares0.squareRoot(), n1 = squares1.squareRoot()
        if !(n0 > 1e-8) { n0 = 1 }
        if !(n1 > 1e-8) { n1 = 1 }
        let dot = min(max(rawDot / (n0 * n1), -1), 1)
        if abs(dot) > 0.9995 { return (Float(1 - t), Float(t)) }
        let theta = acos(dot)
        let s = sin(theta)
        return (Float(sin((1 - t) * theta) / s), Float(sin(t * theta) / s))
    }
}

extension Slerp: ChunkedMergeMethod {
    /// One pass for the norms and the dot product (per-chunk f64 sums), then the interpolation.
    func chunkedKernel(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (any ChunkedKernel)? {
        guard inputs.count == 2, let base = context.baseIndex else { return nil }
        return SlerpChunks(t: try globalNumber("t", context), base: base)
    }
}

/// `Slerp.merge` over chunks: `Σv0², Σv1², Σv0·v1` per chunk, summed in chunk order, then `c0·v0 + c1·v1`.
final class SlerpChunks: ChunkedKernel, @unchecked Sendable {
    let t: Double
    let base: Int
    /// Per chunk: Σv0², Σv1², Σv0·v1.
    private var sums: ChunkSums?
    private var c0: Float = 0
    private var c1: Float = 0

    init(t: Double, base: Int) {
        self.t = t
        self.base = base
    }

    func prepare(workers: Int, chunks: Int, tileSize: Int) {
        sums = ChunkSums(chunks: chunks, perChunk: 3)
    }

    func beginPass(_ pass: Int) -> Bool { pass == 0 }

    func gather(_ tile: ChunkTile) {
        let v0 = UnsafeBufferPointer(start: tile.input(base), count: tile.count)
        let v1 = UnsafeBufferPointer(start: tile.input(1 - base), count: tile.count)
        let s = sums![tile.chunk]
        s[0] += Kernels.dot(v0, v0)
        s[1] += Kernels.dot(v1, v1)
        s[2] += Kernels.dot(v0, v1)
    }

    func endPass() {
        let total = sums!.totals()
        (c0, c1) = Slerp.coefficients(t: t, squares0: total[0], squares1: total[1], dot: total[2])
    }

    func apply(_ tile: ChunkTile, into out: UnsafeMutablePointer<Float>) {
        let v0 = tile.input(base), v1 = tile.input(1 - base)
        for j in 0..<tile.count { out[j] = c0 * v0[j] + c1 * v1[j] }
    }
}
