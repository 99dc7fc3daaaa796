import AmalgamCore

/// A genome store holding every member as one `[Float]` in memory: for small models (the digits MLP).
public final class FlatGenomeStore: GenomeStore {
    public let parameterCount: Int
    /// The seed genomes.
    public let seeds: [[Float]]
    /// The archive slots (zero vectors until filled).
    public private(set) var slots: [[Float]]
    /// The candidate built by the last `makeCandidate`.
    public private(set) var candidate: [Float]

    public var seedCount: Int { seeds.count }

    /// A store of `slotCount` zero slots and the given seeds, all of `parameterCount` parameters.
    public init(parameterCount: Int, slotCount: Int, seeds: [[Float]]) throws(SearchError) {
        for (i, s) in seeds.enumerated() where s.count != parameterCount {
            throw .parameterCountMismatch(expected: parameterCount, found: s.count, what: "seed \(i)")
        }
        self.parameterCount = parameterCount
        self.seeds = seeds
        slots = [[Float]](repeating: [Float](repeating: 0, count: parameterCount), count: slotCount)
        candidate = [Float](repeating: 0, count: parameterCount)
    }

    /// Replaces the whole archive (restoring a saved run).
    public func restore(slots newSlots: [[Float]]) throws(SearchError) {
        guard newSlots.count == slots.count else {
            throw .invalidConfiguration(key: "archive", reason: "\(newSlots.count) slots saved, \(slots.count) expected")
        }
        for (i, s) in newSlots.enumerated() where s.count != parameterCount {
            throw .parameterCountMismatch(expected: parameterCount, found: s.count, what: "saved slot \(i)")
        }
        slots = newSlots
    }

    public func innerProducts(_ a: Int, _ b: Int) throws(SearchError) -> InnerProducts {
        slots[a].withUnsafeBufferPointer { x in
            slots[b].withUnsafeBufferPointer { y in flatInnerProducts(x, y) }
        }
    }

    public func makeCandidate(_ recipe: ChildRecipe, mutation: Mutation?) throws(SearchError) {
        let n = parameterCount
        let blocks = (n + Mutation.blockSize - 1) / Mutation.blockSize
        switch recipe {
        case let .seed(i):
            candidate = seeds[i]
        case let .copy(slot):
            candidate = slots[slot]
        case .crossover:
            break
        }
        let plan: (a: Int, b: Int, plan: CrossoverPlan)?
        if case let .crossover(a, b, p) = recipe { plan = (a, b, p) } else { plan = nil }
        if plan == nil && mutation == nil { return }
        // One pass over blocks of parameters on all cores: the crossover, then the block's noise.
        // An empty array may still hand out a base address: crossover only when there is a plan.
        let x = plan.map { slots[$0.a] } ?? [], y = plan.map { slots[$0.b] } ?? []
        x.withUnsafeBufferPointer { pa in
            y.withUnsafeBufferPointer { pb in
                candidate.withUnsafeMutableBufferPointer { pc in
                    let xa = plan == nil ? nil : pa.baseAddress.map(SendableConstPointer.init)
                    let yb = plan == nil ? nil : pb.baseAddress.map(SendableConstPointer.init)
                    let c = SendablePointer(pc.baseAddress!)
                    let head: (a: Float, b: Float) = plan?.plan.head ?? (a: 1, b: 0)
                    let tail: (a: Float, b: Float) = plan?.plan.tail ?? (a: 1, b: 0)
                    let split = min(max(plan?.plan.splitPoint ?? n, 0), n)
                    ParallelTeam.shared.chunks(blocks, minimumChunk: 2) { range in
                        for block in range {
                            let lo = block * Mutation.blockSize
                            let hi = min(n, lo + Mutation.blockSize)
                            if let xa, let yb {
                                let mid = min(max(split, lo), hi)
                                for i in lo..<mid { c.base[i] = head.a * xa.base[i] + head.b * yb.base[i] }
                                for i in mid..<hi { c.base[i] = tail.a * xa.base[i] + tail.b * yb.base[i] }
                            }
                            mutation?.add(block: block, to: UnsafeMutableBufferPointer(start: c.base + lo, count: hi - lo))
                        }
                    }
                }
            }
        }
    }

    public func keepCandidate(inSlot slot: Int) throws(SearchError) {
        swap(&slots[slot], &candidate)
    }
}

/// Inner products accumulated in Float SIMD lanes within blocks of 1024 and in Double across blocks.
func flatInnerProducts(_ x: UnsafeBufferPointer<Float>, _ y: UnsafeBufferPointer<Float>) -> InnerProducts {
    var result = InnerProducts(ab: 0, aa: 0, bb: 0)
    let px = x.baseAddress!, py = y.baseAddress!
    var lo = 0
    while lo < x.count {
        let hi = min(x.count, lo + 1024)
        var ab = SIMD16<Float>(), aa = SIMD16<Float>(), bb = SIMD16<Float>()
        var i = lo
        while i + 16 <= hi {
            let a = UnsafeRawPointer(px + i).loadUnaligned(as: SIMD16<Float>.self)
            let b = UnsafeRawPointer(py + i).loadUnaligned(as: SIMD16<Float>.self)
            ab += a * b
            aa += a * a
            bb += b * b
            i += 16
        }
        var sab = Double(ab.sum()), saa = Double(aa.sum()), sbb = Double(bb.sum())
        while i < hi {
            sab += Double(px[i] * py[i])
            saa += Double(px[i] * px[i])
            sbb += Double(py[i] * py[i])
            i += 1
        }
        result.ab += sab
        result.aa += saa
        result.bb += sbb
        lo = hi
    }
    return result
}
