import AmalgamCheckpoint
import AmalgamCore

/// How the experts of an MoE checkpoint are merged.
public enum MoEExperts: String, Sendable, CaseIterable {
    /// As mergekit 0.1.5 with transformers 5 does (the default): the experts of a layer are one tensor
    /// per projection, transformers 5's fused `mlp.experts.gate_up_proj` [E, 2I, H] (each expert's gate
    /// rows, then its up rows) and `mlp.experts.down_proj` [E, H, I], so a method's per-tensor statistics
    /// (TIES' top-k cut, slerp's norms, model_stock's cosines) are taken over all experts together, and
    /// the output has the fused names (Mixtral's `block_sparse_moe.` becomes `mlp.`).
    case fused
    /// Each stored tensor alone (`experts.N.w1.weight`, …), names as stored: statistics per expert.
    case perExpert = "per-expert"
}

/// A model's tensors as a merge sees them: each logical tensor is the flat concatenation of one or more
/// stored tensors (`segments`). Without fusion every logical tensor is one stored tensor of the same
/// name; with it, the per-expert tensors of a layer become transformers 5's fused tensors, read segment
/// by segment (never concatenated in memory by the chunked executor).
struct LogicalTensors: Sendable {
    struct Entry: Sendable {
        let info: TensorInfo
        let segments: [String]
    }

    /// Logical tensors in the checkpoint's order (a fused tensor where its first expert was).
    let infos: [TensorInfo]
    private let entries: [String: Entry]

    func info(_ name: String) -> TensorInfo? { entries[name]?.info }
    func entry(_ name: String) -> Entry? { entries[name] }

    /// Model types whose experts transformers 5 (`conversion_mapping.py`) fuses on load, and so mergekit
    /// 0.1.5 merges fused: mixtral's `.experts.*.w1/w3/w2.weight` (after renaming `.block_sparse_moe.` to
    /// `.mlp.`), and the qwen2_moe pattern `mlp.experts.*.gate_proj/up_proj/down_proj.weight` (qwen2_moe,
    /// qwen3_moe; a qwen2_moe shared expert stays as it is).
    static let fusingModelTypes: Set<String> = ["mixtral", "qwen2_moe", "qwen3_moe"]

    /// The logical view of `source`'s tensors for `mode`.
    init(_ source: ModelSource, mode: MoEExperts) throws(MergeError) {
        let tensors = source.tensors
        guard mode == .fused, let type = source.config.modelType, Self.fusingModelTypes.contains(type) else {
            infos = tensors.tensorInfos
            entries = Dictionary(tensors.tensorInfos.map { ($0.name, Entry(info: $0, segments: [$0.name])) }, uniquingKeysWith: { a, _ in a })
            return
        }
        let mixtral = type == "mixtral"
        // prefix (… "mlp.") → expert → projection (0 gate, 1 up, 2 down) → stored tensor.
        var groups: [String: [Int: [Int: TensorInfo]]] = [:]
        // In the checkpoint's order: a tensor as the merge names it with the stored one, or a group's prefix (nil).
        var order: [(name: String, stored: TensorInfo?)] = []
        for info in tensors.tensorInfos {
            let name = mixtral ? info.name.replacingOccurrences(of: ".block_sparse_moe.", with: ".mlp.") : info.name
            if let (prefix, expert, projection) = Self.expertTensor(name, mixtral: mixtral) {
                if groups[prefix] == nil { order.append((prefix, nil)) }
                groups[prefix, default: [:]][expert, default: [:]][projection] = info
            } else {
                order.append((name, info))
            }
        }
        var infos: [TensorInfo] = []
        var entries: [String: Entry] = [:]
        for (name, stored) in order {
            if let stored {
                let info = TensorInfo(name: name, dtype: stored.dtype, shape: stored.shape)
                infos.append(info)
                entries[name] = Entry(info: info, segments: [stored.name])
                continue
            }
            for entry in try Self.fuse(prefix: name, experts: groups[name]!, path: tensors.path) {
                infos.append(entry.info)
                entries[entry.info.name] = entry
            }
        }
        self.infos = infos
        self.entries = entries
    }

    /// (prefix up to and including `experts.`'s parent, expert, projection) of a per-expert tensor name.
    private static func expertTensor(_ name: String, mixtral: Bool) -> (String, Int, Int)? {
        guard let range = name.range(of: ".experts.", options: .backwards) else { return nil }
        let rest = name[range.upperBound...].split(separator: ".", omittingEmptySubsequences: false)
        guard rest.count == 3, rest[2] == "weight", let expert = Int(rest[0]), expert >= 0 else { return nil }
        let projections = mixtral ? ["w1", "w3", "w2"] : ["gate_proj", "up_proj", "down_proj"]
        guard let projection = projections.firstIndex(of: String(rest[1])) else { return nil }
        if !mixtral && !name[..<range.lowerBound].hasSuffix(".mlp") { return nil }
        return (String(name[..<range.lowerBound]) + ".", expert, projection)
    }

    /// The two fused tensors of one layer's experts, checked: experts 0..<E each with gate, up and down,
    /// gate and up [I, H], down [H, I], one dtype.
    private static func fuse(prefix: String, experts: [Int: [Int: TensorInfo]], path: String) throws(MergeError) -> [Entry] {
        let count = experts.count
        let hint = "; merge with --moe-experts per-expert to take the stored tensors as they are"
        guard experts.keys.sorted() == Array(0..<count) else {
            throw .config(path: path, key: prefix + "experts",
                          reason: "expert indices \(experts.keys.sorted()) are not 0..<\(count), so the experts cannot be fused as transformers 5 fuses them" + hint)
        }
        var gateUp: [String] = [], down: [String] = []
        var shapes: (gate: [Int], down: [Int], dtype: DType)? = nil
        for e in 0..<count {
            let p = experts[e]!
            guard let g = p[0], let u = p[1], let d = p[2] else {
                throw .config(path: path, key: prefix + "experts.\(e)",
                              reason: "expert \(e) lacks \(["gate", "up", "down"].enumerated().filter { p[$0.offset] == nil }.map(\.element).joined(separator: ", ")) projection weights" + hint)
            }
            let first = shapes ?? (g.shape, d.shape, g.dtype)
            guard g.shape.count == 2, g.shape == first.gate, u.shape == first.gate, d.shape == first.down,
                  d.shape == [g.shape[1], g.shape[0]], [g.dtype, u.dtype, d.dtype].allSatisfy({ $0 == first.dtype }) else {
                throw .config(path: path, key: g.name,
                              reason: "expert \(e)'s gate/up/down are \(g.shape)/\(u.shape)/\(d.shape) (\(g.dtype.rawValue)/\(u.dtype.rawValue)/\(d.dtype.rawValue)); fusing needs gate and up [I, H], down [H, I] and one dtype across every expert" + hint)
            }
            shapes = first
            gateUp += [g.name, u.name]
            down.append(d.name)
        }
        let (gate, _, dtype) = shapes!
        let (i, h) = (gate[0], gate[1])
        return [Entry(info: TensorInfo(name: prefix + "experts.gate_up_proj", dtype: dtype, shape: [count, 2 * i, h]), segments: gateUp),
                Entry(info: TensorInfo(name: prefix + "experts.down_proj", dtype: dtype, shape: [count, h, i]), segments: down)]
    }
}

extension MergePlan {
    /// An input's stored tensors (one, or a layer's per-expert tensors in fused order), checked against the
    /// input: one dtype, and as many elements in all as its shape.
    public func storedTensors(_ input: Input) throws(CheckpointError) -> [Tensor] {
        let source = models[input.model].tensors
        var tensors: [Tensor] = []
        for name in input.segments {
            let t = try source.tensor(name)
            guard t.dtype == input.info.dtype else {
                throw .unexpectedTensor(path: source.path, tensor: name, reason: "\(t.dtype.rawValue), but the fused \(input.tensorName) is \(input.info.dtype.rawValue)")
            }
            tensors.append(t)
        }
        let count = tensors.reduce(0) { $0 + $1.elementCount }
        guard count == Tensor.elementCount(input.info.shape) else {
            throw .unexpectedTensor(path: source.path, tensor: input.tensorName, reason: "its stored tensors hold \(count) elements, the plan \(input.info.shape)")
        }
        return tensors
    }

    /// An input's values as one tensor: the stored tensor itself, or its segments concatenated in memory.
    public func read(_ input: Input) throws(CheckpointError) -> Tensor {
        let parts = try storedTensors(input)
        if parts.count == 1 { return parts[0] }
        let source = models[input.model].tensors
        let out = Tensor(zeros: input.info.dtype, shape: input.info.shape)
        var offset = 0
        for (name, t) in zip(input.segments, parts) {
            if t.byteCount > 0 { out.storage.mutableBase!.advanced(by: offset).copyMemory(from: t.bytes.baseAddress!, byteCount: t.byteCount) }
            offset += t.byteCount
            source.release(name)
        }
        return out
    }

    /// Releases an input's stored tensors.
    public func release(_ input: Input) {
        for name in input.segments { models[input.model].tensors.release(name) }
    }
}
