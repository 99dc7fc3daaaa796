import AmalgamCore

/// Which examples of each source's dataset a step uses: each dataset is read in a seeded random order,
/// reshuffled every epoch, `batchSize` examples per step. Epoch e of dataset k is a permutation drawn from
/// its own stream, so the examples of step s follow from (seed, s) alone: a resumed run needs no saved
/// generator state and sees the same batches as an uninterrupted one.
public struct DAMBatchOrder: Sendable {
    /// Examples in each dataset.
    public let datasetSizes: [Int]
    /// Examples per dataset and step.
    public let batchSize: Int
    /// The run's seed.
    public let seed: UInt64

    /// The order of datasets of these sizes.
    public init(datasetSizes: [Int], batchSize: Int, seed: UInt64) {
        self.datasetSizes = datasetSizes
        self.batchSize = batchSize
        self.seed = seed
    }

    /// Indices into dataset `dataset` for step `step` (0-based).
    public func indices(dataset: Int, step: Int) -> [Int] {
        let n = datasetSizes[dataset]
        var out: [Int] = [], position = step * batchSize
        var cachedEpoch = -1, permutation: [Int] = []
        while out.count < batchSize {
            let epoch = position / n
            if epoch != cachedEpoch { permutation = self.permutation(dataset: dataset, epoch: epoch); cachedEpoch = epoch }
            out.append(permutation[position % n])
            position += 1
        }
        return out
    }

    /// Fisher–Yates shuffle of `0..<n` from the stream of (dataset, epoch).
    func permutation(dataset: Int, epoch: Int) -> [Int] {
        var g = SeededGenerator(seed: SeedDerivation.seed(seed, stream: dataset), stream: UInt64(epoch))
        var p = Array(0..<datasetSizes[dataset])
        for i in stride(from: p.count - 1, to: 0, by: -1) { p.swapAt(i, g.integer(below: i + 1)) }
        return p
    }
}
