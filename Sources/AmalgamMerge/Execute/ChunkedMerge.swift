import AmalgamCheckpoint
import AmalgamCore
import Dispatch

/// A method that can merge a tensor in fixed chunks of elements: zero or more statistics passes over
/// the chunks (norms, magnitude histograms, L1 sums), then one output pass that writes each chunk as it
/// is computed. Memory then holds a few chunks per core, whatever the tensor's size.
protocol ChunkedMergeMethod: MergeMethod {
    /// The kernel merging this tensor in chunks, or nil when it must be merged whole by `merge` (which
    /// then also reports any error). `inputs` are in config order and carry no values; every input has
    /// the output's shape.
    func chunkedKernel(_ inputs: [MergeInput], context: MergeContext) throws(MergeError) -> (any ChunkedKernel)?
}

/// `count` elements, from flat index `start`, of every input of a tensor, converted to f32 (and rounded
/// to the config's `dtype`) as the whole-tensor path would see them.
struct ChunkTile {
    /// The worker running the tile, for per-worker state (workers are numbered from 0).
    let worker: Int
    /// The fixed chunk holding the tile; a chunk's tiles run in order on one worker.
    let chunk: Int
    /// Whether this is the first tile of its chunk.
    let startsChunk: Bool
    let start: Int
    let count: Int
    private let values: UnsafeMutablePointer<Float>
    private let stride: Int
    /// Reads inputs outside the tile.
    let reader: (any ChunkInputReader)?

    init(worker: Int, chunk: Int, startsChunk: Bool, start: Int, count: Int, values: UnsafeMutablePointer<Float>, stride: Int,
         reader: (any ChunkInputReader)? = nil) {
        self.worker = worker
        self.chunk = chunk
        self.startsChunk = startsChunk
        self.start = start
        self.count = count
        self.values = values
        self.stride = stride
        self.reader = reader
    }

    /// Input `i`'s `count` values.
    @inline(__always)
    func input(_ i: Int) -> UnsafeMutablePointer<Float> { values + i * stride }
}

/// Any range of an input, converted as tiles are: for kernels whose elements depend on values outside
/// their tile (DELLA's ranks along rows). Reads stay within `ChunkedKernel.reach` elements of the chunk.
protocol ChunkInputReader: AnyObject, Sendable {
    func read(_ input: Int, from start: Int, count: Int, into values: UnsafeMutablePointer<Float>)
}

/// One tensor's chunked merge. The executor calls `prepare`, then for pass = 0, 1, … while
/// `beginPass(pass)` is true: `gather` on every tile, `endPass`; then `apply` on every tile.
/// Tiles run on several threads at once; state a tile touches must belong to its worker or its chunk,
/// and results must not depend on which worker ran which chunk.
protocol ChunkedKernel: AnyObject, Sendable {
    /// Sizes per-worker and per-chunk state.
    func prepare(workers: Int, chunks: Int, tileSize: Int)
    /// Whether statistics pass `pass` is needed (false: the output pass comes next).
    func beginPass(_ pass: Int) -> Bool
    /// Gathers the current pass's statistics over one tile.
    func gather(_ tile: ChunkTile)
    /// Combines the workers' statistics of the pass just run (an error here, e.g. parameters the
    /// statistics make impossible, fails the tensor).
    func endPass() throws(MergeError)
    /// Computes the output of one tile in f32 into `out` (`tile.count` values).
    func apply(_ tile: ChunkTile, into out: UnsafeMutablePointer<Float>)
    /// Whether the current statistics pass needs chunk `chunk`, given the chunks finished so far
    /// (`finished`); chunks are handed out in order, and once this is false the pass ends. Called under
    /// a lock, after `gather` on every tile of each finished chunk.
    func needsChunk(_ chunk: Int, finished: Int) -> Bool
    /// Records that the current pass's chunk `chunk` is done (called under the same lock).
    func finished(_ chunk: Int)
    /// Called once after `prepare`, before the passes, on one thread: `tile(start, count)` loads
    /// `count` (≤ tile size) elements of every input from flat index `start` of the `n`, so the kernel
    /// can look at a sample of the tensor.
    func sample(count n: Int, _ tile: (_ start: Int, _ count: Int) -> ChunkTile)
    /// How many elements beyond its chunk, on either side, a tile may read through `ChunkTile.reader`
    /// (their pages are released with the chunk's).
    var reach: Int { get }
}

/// Per-chunk f64 statistics (`perChunk` sums for each chunk) added up in chunk order, so the totals do
/// not depend on which worker ran which chunk.
final class ChunkSums: @unchecked Sendable {
    let perChunk: Int
    let chunks: Int
    private let values: UnsafeMutablePointer<Double>

    init(chunks: Int, perChunk: Int) {
        self.chunks = chunks
        self.perChunk = perChunk
        values = .allocate(capacity: max(1, chunks * perChunk))
        values.initialize(repeating: 0, count: chunks * perChunk)
    }

    deinit { values.deallocate() }

    /// The `perChunk` sums of chunk `chunk` (only the tiles of that chunk touch them).
    subscript(chunk: Int) -> UnsafeMutablePointer<Double> { values + perChunk * chunk }

    /// Each statistic summed over the chunks, in chunk order.
    func totals() -> [Double] {
        var t = [Double](repeating: 0, count: perChunk)
        for c in 0..<chunks { for k in 0..<perChunk { t[k] += values[perChunk * c + k] } }
        return t
    }
}

extension ChunkedKernel {
    func needsChunk(_ chunk: Int, finished: Int) -> Bool { true }
    func finished(_ chunk: Int) {}
    func sample(count n: Int, _ tile: (_ start: Int, _ count: Int) -> ChunkTile) {}
    var reach: Int { 0 }
}

extension MergeExecutor {
    /// Elements per tile: every input's tile and the method's work arrays stay in the core's L2 cache.
    static let tileSize = 4096

    /// Merges one tensor chunk by chunk with `kernel` and writes each chunk where it belongs; returns
    /// the bytes read (each input once) and written.
    static func executeChunked(_ step: MergePlan.Step, plan: MergePlan, writer: CheckpointWriter, kernel: any ChunkedKernel,
                               chunkElements: Int, threads: Int) throws(MergeError) -> Int {
        let name = step.outputName
        return try executeChunked(step, plan: plan, kernel: kernel, chunkElements: chunkElements, threads: threads) {
            bytes, offset throws(CheckpointError) in try writer.write(name, bytes: bytes, at: offset)
        }
    }

    /// The chunked merge of one step, handing each finished part of the output (bytes in the step's
    /// dtype, at a byte offset of the tensor's data) to `write`; returns the bytes read and produced.
    static func executeChunked(_ step: MergePlan.Step, plan: MergePlan, kernel: any ChunkedKernel, chunkElements: Int, threads: Int,
                               write: @escaping @Sendable (UnsafeRawBufferPointer, Int) throws(CheckpointError) -> Void) throws(MergeError) -> Int {
        // Each input as its stored tensors (several for fused experts), mapped, never concatenated.
        var tensors: [[Tensor]] = []
        do throws(CheckpointError) {
            for input in step.inputs { tensors.append(try plan.storedTensors(input)) }
        } catch { throw .checkpoint(error) }
        let n = Tensor.elementCount(step.outputShape)
        let chunks = (n + chunkElements - 1) / chunkElements
        let workers = max(1, min(threads, chunks))
        let run = ChunkedRun(tensors: tensors, compute: plan.computeDType, outputDType: step.outputDType, count: n,
                             chunkElements: chunkElements, workers: workers)
        kernel.prepare(workers: workers, chunks: chunks, tileSize: tileSize)
        run.sample(kernel)
        var pass = 0
        while kernel.beginPass(pass) {
            run.forEachTile(kernel, output: nil)
            try kernel.endPass()
            pass += 1
        }
        run.forEachTile(kernel, output: write)
        withExtendedLifetime(tensors) {}
        if let error = run.error { throw .checkpoint(error) }
        return tensors.joined().reduce(0) { $0 + $1.byteCount } + n * step.outputDType.byteSize
    }
}

/// The buffers and chunk dispatch of one chunked tensor merge.
private final class ChunkedRun: ChunkInputReader, @unchecked Sendable {
    typealias Write = @Sendable (UnsafeRawBufferPointer, Int) throws(CheckpointError) -> Void

    /// One stored tensor of an input: its elements are the input's `[start, start + count)`.
    private struct Segment {
        let base: UnsafeRawPointer
        let storage: TensorStorage
        let start: Int
        let count: Int
    }

    private let inputs: [(segments: [Segment], dtype: DType, roundTo: DType?)]
    private let outputDType: DType
    private let count: Int
    private let chunkElements: Int
    private let workers: Int
    private let tile = MergeExecutor.tileSize
    /// Per worker: every input's tile, then the output tile (f32), then one chunk of output bytes.
    private let buffers: [UnsafeMutableRawPointer]
    private let lock = Lock()
    private var nextChunk = 0
    private(set) var error: CheckpointError?

    init(tensors: [[Tensor]], compute: DType?, outputDType: DType, count: Int, chunkElements: Int, workers: Int) {
        inputs = tensors.map { parts in
            let dtype = parts.first?.dtype ?? outputDType
            let narrower = compute.flatMap { c in c != dtype && c.byteSize < dtype.byteSize ? c : nil }
            var start = 0
            var segments: [Segment] = []
            for t in parts {
                segments.append(Segment(base: t.storage.base ?? UnsafeRawPointer(bitPattern: 64)!, storage: t.storage, start: start, count: t.elementCount))
                start += t.elementCount
            }
            return (segments, dtype, narrower)
        }
        self.outputDType = outputDType
        self.count = count
        self.chunkElements = chunkElements
        self.workers = workers
        let floats = (tensors.count + 1) * tile
        buffers = (0..<workers).map { _ in
            UnsafeMutableRawPointer.allocate(byteCount: floats * 4 + chunkElements * outputDType.byteSize, alignment: 64)
        }
    }

    deinit { for b in buffers { b.deallocate() } }

    /// Input bytes of a tensor whose pages stay mapped between passes.
    static let keptAcrossPasses = 64 << 20
    private var inputBytes: Int { inputs.reduce(0) { $0 + count * $1.dtype.byteSize } }

    /// The next chunk of the pass (after recording `done`, the chunk this worker just finished).
    private func takeChunk(_ kernel: any ChunkedKernel, after done: Int?, statistics: Bool) -> Int? {
        lock.withLock {
            if let done, statistics { finishedChunks += 1; kernel.finished(done) }
            guard error == nil, nextChunk * chunkElements < count,
                  !statistics || kernel.needsChunk(nextChunk, finished: finishedChunks) else { return nil }
            defer { nextChunk += 1 }
            return nextChunk
        }
    }
    private var finishedChunks = 0

    /// Runs `kernel` over every tile on all workers: `gather` when `output` is nil, else `apply`, with
    /// each finished chunk converted to the output dtype and handed to `output`.
    func forEachTile(_ kernel: any ChunkedKernel, output: Write?) {
        nextChunk = 0
        finishedChunks = 0
        // A small tensor's pages stay mapped from pass to pass (refaulting them costs more); a large
        // one's are released chunk by chunk, so memory holds a few chunks whatever the tensor size.
        let release = output != nil || inputBytes > Self.keptAcrossPasses
        let work: @Sendable (Int) -> Void = { [self] w in
            let values = buffers[w].assumingMemoryBound(to: Float.self)
            let out = values + inputs.count * tile
            let chunkBytes = buffers[w] + (inputs.count + 1) * tile * 4
            let size = outputDType.byteSize
            var done: Int? = nil
            while let c = takeChunk(kernel, after: done, statistics: output == nil) {
                done = c
                let lo = c * chunkElements, hi = min(count, lo + chunkElements)
                var start = lo
                while start < hi {
                    let m = min(tile, hi - start)
                    load(start, m, into: values)
                    let t = ChunkTile(worker: w, chunk: c, startsChunk: start == lo, start: start, count: m, values: values, stride: tile,
                                      reader: self)
                    if output == nil {
                        kernel.gather(t)
                    } else {
                        kernel.apply(t, into: out)
                        Convert.fromFloat32(UnsafeBufferPointer(start: out, count: m), to: outputDType,
                                            into: UnsafeMutableRawBufferPointer(start: chunkBytes + (start - lo) * size, count: m * size))
                    }
                    start += m
                }
                if let output {
                    do throws(CheckpointError) {
                        try output(UnsafeRawBufferPointer(start: chunkBytes, count: (hi - lo) * size), lo * size)
                    } catch {
                        lock.withLock { if self.error == nil { self.error = error } }
                    }
                }
                // Pages of a mapped input come back from the page cache on the next pass: releasing
                // them keeps the resident set at a few chunks.
                if release {
                    let from = max(0, lo - kernel.reach), to = min(count, hi + kernel.reach)
                    for input in inputs { releasePages(input, from..<to) }
                }
            }
        }
        if workers == 1 { work(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: work) }
    }

    /// Hands `kernel` a loader of tiles anywhere in the tensor (worker 0's buffers).
    func sample(_ kernel: any ChunkedKernel) {
        let values = buffers[0].assumingMemoryBound(to: Float.self)
        let release = inputBytes > Self.keptAcrossPasses
        kernel.sample(count: count) { start, m in
            precondition(start >= 0 && m <= tile && start + m <= count, "sample tile out of range")
            load(start, m, into: values)
            // Each sampled run faults in a whole fault-around window of every input (64 KB: 512 runs
            // would map 128 MB of four 65 MB inputs): a large tensor's are released at once.
            if release { for input in inputs { releasePages(input, start..<(start + m)) } }
            return ChunkTile(worker: 0, chunk: start / chunkElements, startsChunk: false, start: start, count: m, values: values, stride: tile)
        }
    }

    /// Converts elements `[start, start + m)` of every input to f32, rounded to the compute dtype.
    @inline(__always)
    private func load(_ start: Int, _ m: Int, into values: UnsafeMutablePointer<Float>) {
        for i in inputs.indices { read(i, from: start, count: m, into: values + i * tile) }
    }

    /// Releases the pages of an input's elements `range` (of each stored tensor they fall in).
    private func releasePages(_ input: (segments: [Segment], dtype: DType, roundTo: DType?), _ range: Range<Int>) {
        let size = input.dtype.byteSize
        for s in input.segments where s.start < range.upperBound && s.start + s.count > range.lowerBound {
            let lo = max(range.lowerBound, s.start) - s.start, hi = min(range.upperBound, s.start + s.count) - s.start
            s.storage.releasePages(lo * size..<hi * size)
        }
    }

    /// Converts elements `[start, start + m)` of input `i` to f32, rounded to the compute dtype.
    @inline(__always)
    func read(_ i: Int, from start: Int, count m: Int, into dst: UnsafeMutablePointer<Float>) {
        let input = inputs[i]
        let size = input.dtype.byteSize
        if input.segments.count == 1 {
            Convert.toFloat32(UnsafeRawBufferPointer(start: input.segments[0].base + start * size, count: m * size), from: input.dtype,
                              into: UnsafeMutableBufferPointer(start: dst, count: m))
        } else {
            // A fused input: the part of each stored tensor the range crosses.
            var at = start
            for s in input.segments where s.start < start + m && s.start + s.count > start {
                let lo = max(at, s.start), hi = min(start + m, s.start + s.count)
                Convert.toFloat32(UnsafeRawBufferPointer(start: s.base + (lo - s.start) * size, count: (hi - lo) * size), from: input.dtype,
                                  into: UnsafeMutableBufferPointer(start: dst + (lo - start), count: hi - lo))
                at = hi
            }
        }
        switch input.roundTo {
        case .bf16?: for j in 0..<m { dst[j] = BFloat16.round(dst[j]) }
        case .f16?: for j in 0..<m { dst[j] = Float(Float16(dst[j])) }
        default: break
        }
    }
}
