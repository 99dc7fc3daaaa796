import AmalgamCheckpoint
import AmalgamCore

/// Rows of a matmul's f32 input quantized as llama.cpp quantizes them for a block-quantized weight
/// (ggml's `quantize_row_q8_0_ref`, `quantize_row_q8_1_ref`, `quantize_row_q8_K_ref`).
///
/// The quants are kept widened to f32: they are integers in −127…127, and a product of such an integer
/// with a weight quant, and a sum of those up to 2²⁴, are exact in f32. So the dot kernels can multiply
/// with float SIMD FMAs and still get each block's integer sum exactly, as ggml's int32 arithmetic does.
public final class QuantizedActivations: @unchecked Sendable {
    /// ggml's activation block type.
    public enum Format: Sendable {
        /// 32 values, d = max|x|/127 stored as f16, q = round-half-away(x/d): for Q4_0, Q5_0, Q8_0 weights.
        case q8_0
        /// Q8_0 plus s = f16(d·Σq) per block: for Q4_1 and Q5_1 weights (their min term).
        case q8_1
        /// 256 values, d = −max/127 in f32 (max is the signed value of largest magnitude),
        /// q = min(127, round-half-even(x/d)), Σq per 16: for the K-quants.
        case q8_K

        /// Values per block.
        public var blockSize: Int { self == .q8_K ? 256 : 32 }

        /// The format ggml pairs with weights of `type` (its `vec_dot_type`), nil when the engine has no
        /// quantized kernel for that type.
        public init?(weight type: GGMLType) {
            switch type {
            case .q4_0, .q5_0, .q8_0: self = .q8_0
            case .q4_1, .q5_1: self = .q8_1
            case .q4_K, .q5_K, .q6_K: self = .q8_K
            default: return nil
            }
        }
    }

    public let format: Format
    /// Input rows (tokens).
    public let rows: Int
    /// Values per row (a multiple of the block size).
    public let cols: Int
    let quants: UnsafeMutablePointer<Float>   // [rows × cols], integer-valued
    let scales: UnsafeMutablePointer<Float>   // [rows × cols/blockSize]: d
    let sums: UnsafeMutablePointer<Float>     // q8_1: [rows × cols/32] f16(d·Σq); q8_K: [rows × cols/16] Σq

    /// Quantizes x[rows × cols] row by row (in parallel over rows; each row is independent).
    public init(_ x: UnsafePointer<Float>, rows: Int, cols: Int, format: Format) {
        precondition(cols % format.blockSize == 0, "\(cols) values are not whole \(format) blocks")
        self.format = format
        self.rows = rows
        self.cols = cols
        let sumCount = format == .q8_K ? cols / 16 : cols / 32
        quants = .allocate(capacity: max(rows * cols, 1))
        scales = .allocate(capacity: max(rows * cols / format.blockSize, 1))
        sums = .allocate(capacity: max(rows * sumCount, 1))
        let xp = SendableConstPointer(x)
        let q = SendablePointer(quants), s = SendablePointer(scales), m = SendablePointer(sums)
        let blocks = cols / format.blockSize
        parallelChunks(rows, minimumChunk: max(1, 16384 / max(cols, 1))) { range in
            for r in range {
                for b in 0..<blocks {
                    let x = xp.base + r * cols + b * format.blockSize
                    let qb = q.base + r * cols + b * format.blockSize
                    switch format {
                    case .q8_0, .q8_1:
                        let (d, sum) = QuantizedActivations.quantize32(x, qb)
                        s.base[r * blocks + b] = Float(Float16(d))
                        if format == .q8_1 { m.base[r * blocks + b] = Float(Float16(d * Float(sum))) }
                    case .q8_K:
                        s.base[r * blocks + b] = QuantizedActivations.quantize256(x, qb, m.base + r * sumCount + b * 16)
                    }
                }
            }
        }
    }

    deinit {
        quants.deallocate()
        scales.deallocate()
        sums.deallocate()
    }

    /// Quant `i` of row `row` (an integer in −127…127).
    public func quant(_ row: Int, _ i: Int) -> Float { quants[row * cols + i] }
    /// The scale d of block `block` of row `row` (f16-rounded for q8_0/q8_1, f32 for q8_K).
    public func scale(_ row: Int, block: Int) -> Float { scales[row * (cols / format.blockSize) + block] }
    /// q8_1: the stored s = f16(d·Σq) of a 32-block; q8_K: Σq of a group of 16.
    public func sum(_ row: Int, _ index: Int) -> Float { sums[row * (format == .q8_K ? cols / 16 : cols / 32) + index] }

    /// ggml's `quantize_row_q8_0_ref` on 32 values: d = amax/127, q = roundf(x·(1/d)). Returns the
    /// unrounded d and Σq (for q8_1's s).
    @inline(__always)
    static func quantize32(_ x: UnsafePointer<Float>, _ q: UnsafeMutablePointer<Float>) -> (Float, Int) {
        var amax: Float = 0
        for j in 0..<32 { amax = max(amax, abs(x[j])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        var sum = 0
        for j in 0..<32 {
            let v = (x[j] * id).rounded(.toNearestOrAwayFromZero)
            q[j] = v
            sum += Int(v)
        }
        return (d, sum)
    }

    /// ggml's `quantize_row_q8_K_ref` on 256 values; writes the 16 group sums, returns d.
    @inline(__always)
    static func quantize256(_ x: UnsafePointer<Float>, _ q: UnsafeMutablePointer<Float>, _ bsums: UnsafeMutablePointer<Float>) -> Float {
        var amax: Float = 0, signedMax: Float = 0
        for j in 0..<256 {
            let ax = abs(x[j])
            if ax > amax { amax = ax; signedMax = x[j] }
        }
        guard amax != 0 else {
            q.update(repeating: 0, count: 256)
            bsums.update(repeating: 0, count: 16)
            return 0
        }
        let iscale = -127 / signedMax
        for j in 0..<256 { q[j] = min(127, (iscale * x[j]).rounded(.toNearestOrEven)) }
        for g in 0..<16 {
            var s: Float = 0
            for j in 0..<16 { s += q[g * 16 + j] }
            bsums[g] = s
        }
        return 1 / iscale
    }
}
