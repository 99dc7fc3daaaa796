import AmalgamCheckpoint
import AmalgamCore

extension MatMul {
    /// Weight rows per tile of the quantized product: a tile's blocks (a few KB) stay in L1 while every
    /// group of four tokens passes over them.
    static let quantizedTileRows = 16

    /// out_i[T × W_i.rows] = x[T × cols] · W_iᵀ (+ b_i) for block-quantized weights sharing one input:
    /// x is quantized once per activation format (as llama.cpp does for each matmul), then one parallel
    /// job runs over all the weights' rows. A row's outputs are computed whole by one thread, in an order
    /// that depends on nothing but the data, so results are the same at any thread count.
    static func quantizedGroup(_ products: [Product], _ x: UnsafePointer<Float>, rows T: Int) {
        guard T > 0, !products.isEmpty else { return }
        let cols = products[0].weight.cols
        var formats: [QuantizedActivations.Format] = []
        var activations: [QuantizedActivations] = []
        var starts = [0]
        var activationOf: [Int] = []
        for p in products {
            precondition(p.weight.cols == cols, "a product group shares one input")
            let format = QuantizedActivations.Format(weight: p.weight.blockType!)!
            if let i = formats.firstIndex(of: format) {
                activationOf.append(i)
            } else {
                formats.append(format)
                activations.append(QuantizedActivations(x, rows: T, cols: cols, format: format))
                activationOf.append(activations.count - 1)
            }
            starts.append(starts.last! + p.weight.rows)
        }
        let first = starts, acts = activations, which = activationOf
        let tile = quantizedTileRows
        // Chunks of whole tiles, at least ≈ 64 KB of weights each (fewer dispatches when decoding).
        let tiles = (first.last! + tile - 1) / tile
        let bytesPerTile = max(1, tile * products[0].weight.rowByteCount)
        parallelChunks(tiles, minimumChunk: max(1, 65536 / bytesPerTile)) { tileRange in
            let range = (tileRange.lowerBound * tile)..<min(first.last!, tileRange.upperBound * tile)
            for (i, p) in products.enumerated() {
                let lo = max(range.lowerBound, first[i]) - first[i]
                let hi = min(range.upperBound, first[i + 1]) - first[i]
                guard lo < hi else { continue }
                quantizedRows(p, acts[which[i]], rows: lo..<hi, tokens: T)
            }
        }
    }

    /// Rows `rows` of one quantized product for all T tokens, tile by tile.
    @inline(__always)
    static func quantizedRows(_ p: Product, _ a: QuantizedActivations, rows: Range<Int>, tokens T: Int) {
        let w = p.weight, type = w.blockType!, outRows = w.rows
        var r0 = rows.lowerBound
        while r0 < rows.upperBound {
            let r1 = min(rows.upperBound, r0 + quantizedTileRows)
            var t0 = 0
            while t0 < T {
                let n = min(4, T - t0)
                for r in r0..<r1 {
                    let v = QuantizedDot.dot(type, w.rowBytes(r), a, t0, n)
                    let b = p.bias?[r] ?? 0
                    for k in 0..<n { p.out[(t0 + k) * outRows + r] = p.bias == nil ? v[k] : v[k] + b }
                }
                t0 += n
            }
            r0 = r1
        }
    }
}
