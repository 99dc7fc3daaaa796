import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// The flat parameter order of a checkpoint: its tensors in the first seed's own order, each a range of
/// one f32 vector.
public struct GenomeLayout: Sendable, Equatable {
    /// The tensors (dtype f32), in flat order.
    public let tensors: [TensorInfo]
    /// First parameter of each tensor.
    public let offsets: [Int]
    public let parameterCount: Int

    /// The layout of `source`; every tensor must be floating point.
    public init(source: any TensorSource) throws(SearchError) {
        var tensors: [TensorInfo] = [], offsets: [Int] = []
        var n = 0
        for info in source.tensorInfos {
            guard info.dtype.isFloatingPoint else {
                throw .badData(path: source.path, reason: "tensor \(info.name) is \(info.dtype), not floating point; M2N2 evolves floating-point checkpoints only")
            }
            tensors.append(TensorInfo(name: info.name, dtype: .f32, shape: info.shape))
            offsets.append(n)
            n += info.elementCount
        }
        guard n > 0 else { throw .badData(path: source.path, reason: "the checkpoint has no tensors") }
        self.tensors = tensors
        self.offsets = offsets
        parameterCount = n
    }

    /// Fails unless `source` holds every tensor of the layout with the same shape, and no other.
    public func check(_ source: any TensorSource) throws(SearchError) {
        guard source.tensorInfos.count == tensors.count else {
            throw .badData(path: source.path, reason: "has \(source.tensorInfos.count) tensors, the first model \(tensors.count); M2N2 needs checkpoints of one architecture")
        }
        for t in tensors {
            guard let info = source.info(t.name) else {
                throw .badData(path: source.path, reason: "has no tensor \(t.name) (the first model has); M2N2 needs checkpoints of one architecture")
            }
            guard info.shape == t.shape, info.dtype.isFloatingPoint else {
                throw .badData(path: source.path, reason: "tensor \(t.name) is \(info.dtype) \(info.shape), the first model's \(t.shape); M2N2 needs checkpoints of one architecture")
            }
        }
    }
}

/// A checkpoint whose tensors are views of one flat f32 genome file (no copy): what the engine loads to
/// score a member, and what an export writes.
public final class FlatGenomeSource: TensorSource, @unchecked Sendable {
    public let path: String
    public let tensorInfos: [TensorInfo]
    private let layout: GenomeLayout
    private let index: [String: Int]
    private let file: MappedFile

    public init(file: MappedFile, layout: GenomeLayout) {
        path = file.path
        self.file = file
        self.layout = layout
        tensorInfos = layout.tensors
        index = Dictionary(uniqueKeysWithValues: layout.tensors.enumerated().map { ($1.name, $0) })
    }

    public func info(_ name: String) -> TensorInfo? { index[name].map { layout.tensors[$0] } }

    public func tensor(_ name: String) throws(CheckpointError) -> Tensor {
        guard let i = index[name] else { throw .tensorNotFound(path: path, tensor: name) }
        let t = layout.tensors[i]
        return Tensor(dtype: .f32, shape: t.shape, storage: TensorStorage(file: file, offset: layout.offsets[i] * 4, count: t.elementCount * 4))
    }
}

/// A genome store whose slots are saved in a run folder and restored from it (what `M2N2Run` needs).
public protocol PersistentGenomeStore: GenomeStore {
    /// Saves slot `slot` (just filled by `keepCandidate`) as genome `name` of `folder`.
    func persistSlot(_ slot: Int, as name: String, in folder: RunFolder) throws(SearchError)
    /// Restores every slot from the genome files named (nil: the initial zero genome).
    func restoreSlots(_ names: [String?], from folder: RunFolder) throws(SearchError)
}

/// M2N2's genome store for LLM checkpoints: every archive member is a flat f32 file in the run folder,
/// memory-mapped; seeds are read tensor by tensor from their checkpoints (folders or GGUF); a child is
/// written by streaming over the mapped parents into one candidate file, which becomes the member's file
/// by a rename when it enters the archive. Disk use: the archive plus one candidate; memory: the pages the
/// kernel keeps.
public final class CheckpointGenomeStore: PersistentGenomeStore {
    public let layout: GenomeLayout
    public var parameterCount: Int { layout.parameterCount }
    /// The seed checkpoints.
    public let seeds: [any TensorSource]
    public var seedCount: Int { seeds.count }
    /// The run folder the files live in.
    public let runDirectory: String
    /// Sync each candidate to disk before it is kept (`machine` durability).
    public let syncWrites: Bool

    private var slots: [MappedFile?]
    private var candidate: MappedFile?
    private var pendingSlot: Int?

    /// Name of the candidate file inside `genomes/` (a dot name: deleted when a killed run is reopened).
    public static let candidateName = ".candidate.partial"

    /// A store of `slotCount` empty (zero) slots over the given seeds, writing into `runDirectory/genomes/`.
    public init(runDirectory: String, seeds: [any TensorSource], slotCount: Int, syncWrites: Bool = false) throws(SearchError) {
        guard let first = seeds.first else { throw .invalidConfiguration(key: "models", reason: "give at least one seed checkpoint") }
        layout = try GenomeLayout(source: first)
        for s in seeds.dropFirst() { try layout.check(s) }
        self.seeds = seeds
        self.runDirectory = runDirectory
        self.syncWrites = syncWrites
        slots = Array(repeating: nil, count: slotCount)
    }

    private var candidatePath: String { runDirectory + "/genomes/" + Self.candidateName }

    /// The member in `slot` as a checkpoint (its tensors are views of the mapped file).
    public func source(slot: Int) throws(SearchError) -> FlatGenomeSource {
        guard let file = slots[slot] else { throw .invalidConfiguration(key: "slot", reason: "archive slot \(slot) holds no member yet") }
        return FlatGenomeSource(file: file, layout: layout)
    }

    /// The candidate built by the last `makeCandidate`.
    public func candidateSource() throws(SearchError) -> FlatGenomeSource {
        guard let file = candidate else { throw .invalidConfiguration(key: "candidate", reason: "no candidate has been built") }
        return FlatGenomeSource(file: file, layout: layout)
    }

    /// Blocks of this many parameters are the unit of parallel work (whole `Mutation` blocks).
    static let blockParameters = 1 << 20

    public func innerProducts(_ a: Int, _ b: Int) throws(SearchError) -> InnerProducts {
        let n = parameterCount, size = Self.blockParameters
        let blocks = (n + size - 1) / size
        let pa = slots[a].map { SendableConstPointer($0.base!.assumingMemoryBound(to: Float.self)) }
        let pb = slots[b].map { SendableConstPointer($0.base!.assumingMemoryBound(to: Float.self)) }
        // One result per block, summed in block order: the same bytes at any thread count.
        var partial = [InnerProducts](repeating: InnerProducts(ab: 0, aa: 0, bb: 0), count: blocks)
        partial.withUnsafeMutableBufferPointer { out in
            let o = SendablePointer(out.baseAddress!)
            parallelChunks(blocks, minimumChunk: 1) { range in
                for block in range {
                    let lo = block * size, count = min(n, lo + size) - lo
                    switch (pa, pb) {
                    case let (x?, y?):
                        o.base[block] = flatInnerProducts(UnsafeBufferPointer(start: x.base + lo, count: count),
                                                          UnsafeBufferPointer(start: y.base + lo, count: count))
                    case let (x?, nil):
                        let s = flatInnerProducts(UnsafeBufferPointer(start: x.base + lo, count: count), UnsafeBufferPointer(start: x.base + lo, count: count))
                        o.base[block] = InnerProducts(ab: 0, aa: s.aa, bb: 0)
                    case let (nil, y?):
                        let s = flatInnerProducts(UnsafeBufferPointer(start: y.base + lo, count: count), UnsafeBufferPointer(start: y.base + lo, count: count))
                        o.base[block] = InnerProducts(ab: 0, aa: 0, bb: s.bb)
                    case (nil, nil):
                        break
                    }
                }
            }
        }
        var total = InnerProducts(ab: 0, aa: 0, bb: 0)
        for p in partial {
            total.ab += p.ab
            total.aa += p.aa
            total.bb += p.bb
        }
        return total
    }

    public func makeCandidate(_ recipe: ChildRecipe, mutation: Mutation?) throws(SearchError) {
        precondition(pendingSlot == nil, "persistSlot must follow keepCandidate before the next candidate")
        candidate = nil
        let path = candidatePath
        // A fresh file each time: a mapping of the previous candidate (if anyone still holds one) keeps its bytes.
        unlink(path)
        let n = parameterCount, bytes = n * 4
        let fd = Foundation.open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .runFolder(path: path, reason: "cannot create the candidate (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        // Allocated, not just sized: a page that a full disk cannot hold would otherwise kill the program
        // (SIGBUS) when the mapping first touches it, instead of failing here with a clear error.
        let allocation = posix_fallocate(fd, 0, off_t(bytes))
        guard allocation == 0 else {
            unlink(path)
            throw .runFolder(path: path, reason: RunFolder.writeFailure(path, errno: allocation, needed: bytes))
        }
        guard let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), raw != MAP_FAILED else {
            throw .runFolder(path: path, reason: "cannot map the candidate (\(String(cString: strerror(errno))))")
        }
        let out = SendablePointer(raw.assumingMemoryBound(to: Float.self))
        var failure: SearchError?
        switch recipe {
        case let .seed(i):
            failure = writeSeed(seeds[i], into: out.base)
            if failure == nil, let mutation { mix(nil, nil, into: out, mutation: mutation, head: (1, 0), tail: (1, 0), split: n, keep: true) }
        case let .copy(slot):
            if let x = slots[slot] {
                out.base.update(from: x.base!.assumingMemoryBound(to: Float.self), count: n)
            }
            if let mutation { mix(nil, nil, into: out, mutation: mutation, head: (1, 0), tail: (1, 0), split: n, keep: true) }
        case let .crossover(a, b, plan):
            let x = slots[a].map { SendableConstPointer($0.base!.assumingMemoryBound(to: Float.self)) }
            let y = slots[b].map { SendableConstPointer($0.base!.assumingMemoryBound(to: Float.self)) }
            mix(x, y, into: out, mutation: mutation, head: plan.head, tail: plan.tail, split: min(max(plan.splitPoint, 0), n), keep: false)
        }
        if failure == nil, syncWrites, msync(raw, bytes, MS_SYNC) != 0 {
            failure = .runFolder(path: path, reason: "cannot sync the candidate (\(String(cString: strerror(errno))))")
        }
        munmap(raw, bytes)
        if let failure { throw failure }
        do { candidate = try MappedFile(path: path) } catch {
            throw .runFolder(path: path, reason: "cannot map the candidate back (\(error))")
        }
    }

    /// Writes `c = head·x + tail·y` by split point (a missing parent reads as zeros), or keeps `c` as it
    /// is (`keep`), then adds the mutation; blocks of `Mutation.blockSize` in parallel.
    private func mix(_ x: SendableConstPointer<Float>?, _ y: SendableConstPointer<Float>?, into c: SendablePointer<Float>,
                     mutation: Mutation?, head: (a: Float, b: Float), tail: (a: Float, b: Float), split: Int, keep: Bool) {
        let n = parameterCount
        let blocks = (n + Mutation.blockSize - 1) / Mutation.blockSize
        parallelChunks(blocks, minimumChunk: 64) { range in
            for block in range {
                let lo = block * Mutation.blockSize, hi = min(n, lo + Mutation.blockSize)
                if !keep {
                    let mid = min(max(split, lo), hi)
                    combineParents(x, y, into: c, lo..<mid, head)
                    combineParents(x, y, into: c, mid..<hi, tail)
                }
                mutation?.add(block: block, to: UnsafeMutableBufferPointer(start: c.base + lo, count: hi - lo))
            }
        }
    }

    /// Streams a seed checkpoint into the flat order, one tensor at a time (converted to f32).
    private func writeSeed(_ seed: any TensorSource, into out: UnsafeMutablePointer<Float>) -> SearchError? {
        for (t, offset) in zip(layout.tensors, layout.offsets) {
            do {
                let tensor = try seed.tensor(t.name)
                guard tensor.elementCount == t.elementCount else {
                    return .badData(path: seed.path, reason: "tensor \(t.name) has \(tensor.elementCount) values, expected \(t.elementCount)")
                }
                Convert.toFloat32(tensor.bytes, from: tensor.dtype, into: UnsafeMutableBufferPointer(start: out + offset, count: t.elementCount))
                seed.release(t.name)
            } catch {
                return .badData(path: seed.path, reason: "cannot read tensor \(t.name): \(error)")
            }
        }
        return nil
    }

    public func keepCandidate(inSlot slot: Int) throws(SearchError) {
        guard let file = candidate else { throw .invalidConfiguration(key: "candidate", reason: "no candidate to keep") }
        slots[slot] = file
        candidate = nil
        pendingSlot = slot
    }

    public func persistSlot(_ slot: Int, as name: String, in folder: RunFolder) throws(SearchError) {
        guard pendingSlot == slot else {
            throw .runFolder(path: folder.path, reason: "slot \(slot) was not just filled by a candidate; the run is out of step")
        }
        try folder.adoptGenome(name, from: candidatePath)
        // The mapping follows the file through the rename (same inode).
        pendingSlot = nil
    }

    public func restoreSlots(_ names: [String?], from folder: RunFolder) throws(SearchError) {
        guard names.count == slots.count else {
            throw .invalidConfiguration(key: "archive", reason: "\(names.count) slots saved, \(slots.count) expected")
        }
        var restored: [MappedFile?] = []
        for name in names {
            guard let name else { restored.append(nil); continue }
            restored.append(try folder.mapGenome(name, count: parameterCount))
        }
        slots = restored
        candidate = nil
        pendingSlot = nil
    }
}

/// `c[r] = k.a · x[r] + k.b · y[r]`, a missing parent reading as zeros.
@inline(__always)
private func combineParents(_ x: SendableConstPointer<Float>?, _ y: SendableConstPointer<Float>?, into c: SendablePointer<Float>,
                            _ r: Range<Int>, _ k: (a: Float, b: Float)) {
    switch (x, y) {
    case let (x?, y?): for i in r { c.base[i] = k.a * x.base[i] + k.b * y.base[i] }
    case let (x?, nil): for i in r { c.base[i] = k.a * x.base[i] }
    case let (nil, y?): for i in r { c.base[i] = k.b * y.base[i] }
    case (nil, nil): for i in r { c.base[i] = 0 }
    }
}
