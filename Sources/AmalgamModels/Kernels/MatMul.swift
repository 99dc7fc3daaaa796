import AmalgamCore
import CAmalgamBLAS

/// The engine's matrix products, all in one place: `out = x · Wᵀ (+ b)`.
///
/// - Several rows of `x` (prompt scoring, prefill): OpenBLAS `sgemm`. f32 weights go straight from the
///   mapped file; bf16/f16 weights are decoded one panel of rows at a time into a reused f32 scratch
///   (about 4 MB, stays in cache) and multiplied panel by panel, so no f32 copy of the model exists.
/// - One row (token-by-token decoding): our SIMD16 GEMV reading the weights in their own dtype (bf16
///   halves the bytes read, and decoding is memory-bound), split by rows over the cores. It measures
///   faster than `cblas_sgemv` here (see `amalgam-bench inference`).
public enum MatMul {
    /// Largest f32 panel decoded at once, in elements (4 MiB).
    static let panelElements = 1 << 20
    /// Below this many rows of `x`, repeated GEMV beats GEMM.
    static let gemmMinimumRows = 4

    /// out[T × W.rows] = x[T × W.cols] · Wᵀ (+ bias[W.rows]). `scratch` holds `scratchCount(for:)` floats.
    public static func forward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows T: Int,
                               weight w: WeightMatrix, bias: UnsafePointer<Float>?, scratch: UnsafeMutablePointer<Float>?) {
        if w.blockType != nil {
            quantizedGroup([Product(out: out, weight: w, bias: bias)], x, rows: T)
            return
        } else if T < gemmMinimumRows {
            forwardGroup([Product(out: out, weight: w, bias: bias)], x, rows: T, scratch: scratch)
            return
        } else if w.tensor.dtype == .f32 {
            let wp = w.tensor.storage.base!.assumingMemoryBound(to: Float.self)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(w.rows), Int32(w.cols),
                        1, x, Int32(w.cols), wp, Int32(w.cols), 0, out, Int32(w.rows))
        } else {
            let panel = panelRows(w)
            var r0 = 0
            while r0 < w.rows {
                let n = min(panel, w.rows - r0)
                w.decodeRows(r0..<(r0 + n), into: scratch!)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(n), Int32(w.cols),
                            1, x, Int32(w.cols), scratch!, Int32(w.cols), 0, out + r0, Int32(w.rows))
                r0 += n
            }
        }
        if let bias {
            for t in 0..<T {
                let o = out + t * w.rows
                for r in 0..<w.rows { o[r] += bias[r] }
            }
        }
    }

    /// Floats of scratch `forward` needs for this weight.
    public static func scratchCount(for w: WeightMatrix) -> Int {
        w.tensor.dtype == .f32 || w.blockType != nil ? 0 : panelRows(w) * w.cols
    }

    static func panelRows(_ w: WeightMatrix) -> Int { max(16, min(w.rows, panelElements / max(w.cols, 1))) }

    /// y[W.rows] = W · x[W.cols], parallel over rows.
    public static func gemv(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: WeightMatrix) {
        if w.blockType != nil { quantizedGroup([Product(out: y, weight: w, bias: nil)], x, rows: 1); return }
        gemvGroup([Product(out: y, weight: w, bias: nil)], x)
    }

    /// One product of a group sharing an input: out = x · Wᵀ (+ bias).
    public struct Product: @unchecked Sendable {
        public var out: UnsafeMutablePointer<Float>
        public var weight: WeightMatrix
        public var bias: UnsafePointer<Float>?

        /// A product writing `out` [T × weight.rows].
        public init(out: UnsafeMutablePointer<Float>, weight: WeightMatrix, bias: UnsafePointer<Float>?) {
            self.out = out
            self.weight = weight
            self.bias = bias
        }
    }

    /// Several products of the same input x[T × cols] (q/k/v, gate/up). One-row inputs run as one
    /// parallel GEMV over all the weights' rows: one dispatch instead of one per weight, which matters
    /// when decoding a token costs a few milliseconds. Block-quantized weights run as one quantized
    /// job for any T (`quantizedGroup`).
    public static func forwardGroup(_ products: [Product], _ x: UnsafePointer<Float>, rows T: Int,
                                    scratch: UnsafeMutablePointer<Float>?) {
        if products.contains(where: { $0.weight.blockType != nil }) {
            quantizedGroup(products.filter { $0.weight.blockType != nil }, x, rows: T)
            let plain = products.filter { $0.weight.blockType == nil }
            if !plain.isEmpty { forwardGroup(plain, x, rows: T, scratch: scratch) }
            return
        }
        guard T < gemmMinimumRows else {
            for p in products { forward(p.out, x, rows: T, weight: p.weight, bias: p.bias, scratch: scratch) }
            return
        }
        let cols = products[0].weight.cols
        for t in 0..<T {
            let shifted = products.map { Product(out: $0.out + t * $0.weight.rows, weight: $0.weight, bias: $0.bias) }
            gemvGroup(shifted, x + t * cols)
        }
    }

    /// y_i = W_i · x (+ b_i) for every product, split by rows over the cores as one job.
    static func gemvGroup(_ products: [Product], _ x: UnsafePointer<Float>) {
        let cols = products[0].weight.cols
        var starts = [0]
        for p in products {
            precondition(p.weight.cols == cols, "a GEMV group shares one input")
            starts.append(starts.last! + p.weight.rows)
        }
        let first = starts
        let xp = SendableConstPointer(x)
        parallelChunks(first.last!, minimumChunk: max(16, 65536 / max(cols, 1))) { range in
            for (i, p) in products.enumerated() {
                let lo = max(range.lowerBound, first[i]) - first[i]
                let hi = min(range.upperBound, first[i + 1]) - first[i]
                guard lo < hi else { continue }
                let w = p.weight
                switch w.tensor.dtype {
                case .bf16: gemvRows(BF16Lanes.self, p.out, xp.base, w.rowBytes(0), cols, lo..<hi)
                case .f16: gemvRows(F16Lanes.self, p.out, xp.base, w.rowBytes(0), cols, lo..<hi)
                default: gemvRows(F32Lanes.self, p.out, xp.base, w.rowBytes(0), cols, lo..<hi)
                }
                if let b = p.bias { for r in lo..<hi { p.out[r] += b[r] } }
            }
        }
    }

    /// y[W.rows] = W · x[W.cols] by OpenBLAS `cblas_sgemv` (f32 weights only): the reference our GEMV
    /// is benchmarked against.
    public static func blasGEMV(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: WeightMatrix) {
        precondition(w.tensor.dtype == .f32, "cblas_sgemv needs f32 weights")
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(w.rows), Int32(w.cols), 1,
                    w.tensor.storage.base!.assumingMemoryBound(to: Float.self), Int32(w.cols), x, 1, 0, y, 1)
    }

    /// The GEMV hot loop: four rows at a time share each load of x; 16 lanes per step.
    @inline(__always)
    static func gemvRows<E: WeightLanes>(_: E.Type, _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                                         _ w: UnsafeRawPointer, _ cols: Int, _ range: Range<Int>) {
        let vectorCols = cols & ~15
        let rowBytes = cols * E.byteSize
        var r = range.lowerBound
        while r + 4 <= range.upperBound {
            let w0 = w + r * rowBytes, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            var c = 0
            while c < vectorCols {
                let xv = UnsafeRawPointer(x + c).loadUnaligned(as: SIMD16<Float>.self)
                a0.addProduct(E.load16(w0, c), xv)
                a1.addProduct(E.load16(w1, c), xv)
                a2.addProduct(E.load16(w2, c), xv)
                a3.addProduct(E.load16(w3, c), xv)
                c += 16
            }
            var s0 = a0.sum(), s1 = a1.sum(), s2 = a2.sum(), s3 = a3.sum()
            while c < cols {
                s0 += E.load1(w0, c) * x[c]; s1 += E.load1(w1, c) * x[c]
                s2 += E.load1(w2, c) * x[c]; s3 += E.load1(w3, c) * x[c]
                c += 1
            }
            y[r] = s0; y[r + 1] = s1; y[r + 2] = s2; y[r + 3] = s3
            r += 4
        }
        while r < range.upperBound {
            let w0 = w + r * rowBytes
            var a0 = SIMD16<Float>()
            var c = 0
            while c < vectorCols {
                a0.addProduct(E.load16(w0, c), UnsafeRawPointer(x + c).loadUnaligned(as: SIMD16<Float>.self))
                c += 16
            }
            var s0 = a0.sum()
            while c < cols { s0 += E.load1(w0, c) * x[c]; c += 1 }
            y[r] = s0
            r += 1
        }
    }
}

/// How the GEMV reads 16 (or 1) weights of one storage type as f32.
protocol WeightLanes {
    static var byteSize: Int { get }
    static func load16(_ row: UnsafeRawPointer, _ c: Int) -> SIMD16<Float>
    static func load1(_ row: UnsafeRawPointer, _ c: Int) -> Float
}

struct F32Lanes: WeightLanes {
    static let byteSize = 4
    @inline(__always) static func load16(_ row: UnsafeRawPointer, _ c: Int) -> SIMD16<Float> {
        row.loadUnaligned(fromByteOffset: c * 4, as: SIMD16<Float>.self)
    }
    @inline(__always) static func load1(_ row: UnsafeRawPointer, _ c: Int) -> Float {
        row.loadUnaligned(fromByteOffset: c * 4, as: Float.self)
    }
}

struct BF16Lanes: WeightLanes {
    static let byteSize = 2
    @inline(__always) static func load16(_ row: UnsafeRawPointer, _ c: Int) -> SIMD16<Float> {
        let u = SIMD16<UInt32>(truncatingIfNeeded: row.loadUnaligned(fromByteOffset: c * 2, as: SIMD16<UInt16>.self)) &<< 16
        return unsafeBitCast(u, to: SIMD16<Float>.self)
    }
    @inline(__always) static func load1(_ row: UnsafeRawPointer, _ c: Int) -> Float {
        BFloat16.float(fromBits: row.loadUnaligned(fromByteOffset: c * 2, as: UInt16.self))
    }
}

struct F16Lanes: WeightLanes {
    static let byteSize = 2
    @inline(__always) static func load16(_ row: UnsafeRawPointer, _ c: Int) -> SIMD16<Float> {
        SIMD16<Float>(row.loadUnaligned(fromByteOffset: c * 2, as: SIMD16<Float16>.self))
    }
    @inline(__always) static func load1(_ row: UnsafeRawPointer, _ c: Int) -> Float {
        Float(row.loadUnaligned(fromByteOffset: c * 2, as: Float16.self))
    }
}
