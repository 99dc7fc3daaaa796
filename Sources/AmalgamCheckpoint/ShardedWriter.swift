import AmalgamCore
import Foundation

/// Parses a shard size as `save_pretrained(max_shard_size="…")` does: a plain byte count, or a number
/// (decimals allowed) followed by KB, MB, GB or TB in any case, powers of 10, as huggingface_hub's
/// `parse_size_to_int` reads it (so "5Gb" is 5 GB, not bits); also KiB, MiB, GiB, TiB (powers of 2), as
/// transformers' `convert_file_size_to_int` reads them.
public func parseShardSize(_ text: String) throws(CheckpointError) -> Int {
    let s = text.trimmingCharacters(in: .whitespaces)
    if let n = Int(s) {
        guard n > 0 else { throw .invalidShardSize(text) }
        return n
    }
    let units: [(String, Double)] = [
        ("TIB", 1_099_511_627_776), ("GIB", 1_073_741_824), ("MIB", 1_048_576), ("KIB", 1024),
        ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3),
    ]
    for (unit, factor) in units where s.uppercased().hasSuffix(unit) {
        let numberPart = String(s.dropLast(unit.count)).trimmingCharacters(in: .whitespaces)
        guard let value = Double(numberPart), value.isFinite, value > 0 else { throw .invalidShardSize(text) }
        let bytes = value * factor
        // Python's int() truncates; a size under one byte cannot hold anything.
        guard bytes >= 1, bytes < 9.0e18 else { throw .invalidShardSize(text) }
        return Int(bytes)
    }
    throw .invalidShardSize(text)
}

/// Splits tensors into shards as `huggingface_hub.split_torch_state_dict_into_shards` does (what
/// transformers' `save_pretrained(max_shard_size=…)` uses): in order, a new shard when the next tensor
/// would pass the limit, a tensor larger than the limit alone in its own shard.
public func planShards(_ tensors: [TensorInfo], maxShardSize: Int) -> [[TensorInfo]] {
    var shards: [[TensorInfo]] = []
    var current: [TensorInfo] = []
    var currentSize = 0
    for t in tensors {
        let size = t.byteCount
        if size > maxShardSize {
            shards.append([t])
            continue
        }
        if currentSize + size > maxShardSize {
            shards.append(current)
            current = []
            currentSize = 0
        }
        current.append(t)
        currentSize += size
    }
    if !current.isEmpty { shards.append(current) }
    return shards
}

/// Writes the weights of a model folder: `model.safetensors`, or `model-0000i-of-0000N.safetensors`
/// and `model.safetensors.index.json`, byte for byte as transformers' `save_pretrained` would.
/// Tensors can be written in any order and from several threads.
public final class CheckpointWriter: @unchecked Sendable {
    public let directory: String
    public let tensors: [TensorInfo]
    /// File name of each shard, in order.
    public let shardNames: [String]
    private let writers: [SafetensorsWriter]
    private let shardOf: [String: Int]

    /// Lays out `tensors` (in state-dict order) under `directory` with at most `maxShardSize` bytes a shard.
    /// Files are created (or truncated) in `directory` at once: pass an `AtomicOutput` working folder, never
    /// a folder whose weights are still being read. `durability` is each shard's (see `SafetensorsWriter`).
    public init(directory: String, tensors: [TensorInfo], maxShardSize: Int = 5_000_000_000,
                durability: Durability = .machine) throws(CheckpointError) {
        self.directory = directory
        self.tensors = tensors
        var seen = Set<String>()
        for t in tensors where !seen.insert(t.name).inserted { throw .duplicateTensor(path: directory, tensor: t.name) }
        let shards = planShards(tensors, maxShardSize: maxShardSize)
        let n = shards.count
        var names: [String] = []
        var writers: [SafetensorsWriter] = []
        var shardOf: [String: Int] = [:]
        for (i, shard) in shards.enumerated() {
            let name = n == 1 ? "model.safetensors" : String(format: "model-%05d-of-%05d.safetensors", i + 1, n)
            names.append(name)
            let layout = try SafetensorsLayout(tensors: shard)
            writers.append(try SafetensorsWriter(path: directory + "/" + name, layout: layout, durability: durability))
            for t in shard { shardOf[t.name] = i }
        }
        if shards.isEmpty {
            names = ["model.safetensors"]
            writers = [try SafetensorsWriter(path: directory + "/model.safetensors", layout: try SafetensorsLayout(tensors: []), durability: durability)]
        }
        shardNames = names
        self.writers = writers
        self.shardOf = shardOf
    }

    /// Writes one tensor's bytes (already in its planned dtype).
    public func write(_ name: String, bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        guard let i = shardOf[name] else { throw .unexpectedTensor(path: directory, tensor: name, reason: "not in the output plan") }
        try writers[i].write(name, bytes: bytes)
    }

    /// Writes part of a tensor's bytes (already in its planned dtype) at byte `offset` of its data.
    public func write(_ name: String, bytes: UnsafeRawBufferPointer, at offset: Int) throws(CheckpointError) {
        guard let i = shardOf[name] else { throw .unexpectedTensor(path: directory, tensor: name, reason: "not in the output plan") }
        try writers[i].write(name, bytes: bytes, at: offset)
    }

    /// Writes one tensor, converting to its planned dtype if needed.
    public func write(_ name: String, tensor: Tensor) throws(CheckpointError) {
        guard let i = shardOf[name] else { throw .unexpectedTensor(path: directory, tensor: name, reason: "not in the output plan") }
        try writers[i].write(name, tensor: tensor)
    }

    /// Checks completeness, flushes every shard and writes the index when there are several.
    public func finish() throws(CheckpointError) {
        for w in writers { try w.finish() }
        guard shardNames.count > 1 else { return }
        var weightMap = JSONObject()
        for t in tensors { weightMap[t.name] = .string(shardNames[shardOf[t.name]!]) }
        let index = JSONValue.object(JSONObject([
            ("metadata", .object(JSONObject([
                ("total_parameters", .int(tensors.reduce(0) { $0 + $1.elementCount })),
                ("total_size", .int(tensors.reduce(0) { $0 + $1.byteCount })),
            ]))),
            ("weight_map", .object(weightMap)),
        ]))
        do {
            try writeFileAtomically(index.pythonText() + "\n", to: directory + "/model.safetensors.index.json")
        } catch { throw .file(error) }
    }
}
