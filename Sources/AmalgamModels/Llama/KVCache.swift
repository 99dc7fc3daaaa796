/// Keys and values of the positions seen so far, per layer, for token-by-token generation.
public final class KVCache: @unchecked Sendable {
    /// Positions the cache can hold.
    public let capacity: Int
    /// Positions it holds.
    public internal(set) var count = 0
    let keys: [FloatBuffer]    // per layer [capacity × Hkv·D], rope already applied
    let values: [FloatBuffer]  // per layer [capacity × Hkv·D]

    /// An empty cache for `model` holding up to `capacity` positions.
    public init(for model: LlamaModel, capacity: Int) {
        let c = model.config
        let width = c.numKeyValueHeads * c.headDim
        self.capacity = capacity
        keys = (0..<c.numHiddenLayers).map { _ in FloatBuffer(capacity * width) }
        values = (0..<c.numHiddenLayers).map { _ in FloatBuffer(capacity * width) }
    }

    /// Forgets every position (the memory is kept).
    public func reset() { count = 0 }
}
