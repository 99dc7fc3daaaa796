import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// A mergekit-moe configuration: dense models whose MLPs become the experts of one mixture-of-experts model.
/// Read from the same YAML mergekit-moe reads; unknown keys and bad values fail here with their key path.
public struct MoEConfig: Sendable {
    /// How the router's rows are made.
    public enum GateMode: String, Sendable, CaseIterable {
        /// The base model's residual stream entering each layer, at the last token of each prompt.
        case hidden
        /// Same as `hidden` (mergekit's alias).
        case hiddenLast = "hidden_last"
        /// The residual stream averaged over every position of each prompt.
        case hiddenAverage = "hidden_avg"
        /// The normalised sum of the prompts' token embeddings, the same for every layer.
        case cheapEmbed = "cheap_embed"
        /// Standard normal draws from a seeded generator.
        case random
        /// Uniform draws in ±1/√hidden_size from a seeded generator.
        case uniformRandom = "uniform_random"

        /// Whether the mode reads prompts at all.
        public var usesPrompts: Bool { self != .random && self != .uniformRandom }
    }

    /// The output layout.
    public enum Architecture: String, Sendable, CaseIterable {
        case mixtral = "Mixtral"
        case qwen2MoE = "Qwen MoE"
        case qwen3MoE = "Qwen3 MoE"
    }

    /// One expert: the model whose MLP it is and the prompts that should route to it.
    public struct Expert: Sendable {
        public var sourceModel: String
        public var positivePrompts: [String]
        public var negativePrompts: [String]
        /// Standard deviation of Gaussian noise added to the expert's MLP weights (seeded), if set.
        public var noiseScale: Double?
        /// Factor applied to the expert's down_proj, if set.
        public var residualScale: Double?
    }

    public var baseModel: String
    public var experts: [Expert]
    public var sharedExperts: [Expert]
    public var gateMode: GateMode
    /// Output dtype; nil keeps the base config's.
    public var dtype: DType?
    public var expertsPerToken: Int
    /// `architecture` as written (a case-insensitive prefix of an architecture name), if given.
    public var architecture: String?
    /// The file the config came from (for messages and relative model paths).
    public let path: String

    /// Reads a config file.
    public init(contentsOf path: String) throws(MergeError) {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .config(path: path, key: "(file)", reason: "cannot read: \(error.localizedDescription)")
        }
        try self.init(yaml: text, path: path)
    }

    /// Reads a config from YAML text.
    public init(yaml: String, path: String) throws(MergeError) {
        self.path = path
        let root = try ConfigMapping<MergeError>(ConfigNode.parse(yaml: yaml, path: path, as: MergeError.self), path: path, keyPath: "")
        try root.rejectUnknown(["base_model", "experts", "gate_mode", "dtype", "experts_per_token", "shared_experts", "architecture"])
        guard let base = try root.string("base_model") else {
            throw .config(path: path, key: "base_model", reason: "missing; name the model whose attention, embeddings and norms the MoE keeps")
        }
        baseModel = base
        experts = try Self.experts(root, "experts", path: path)
        sharedExperts = try Self.experts(root, "shared_experts", path: path)
        let mode = try root.string("gate_mode") ?? "hidden"
        guard let gate = GateMode(rawValue: mode) else {
            throw .config(path: path, key: "gate_mode", reason: "'\(mode)' is not a gate mode (accepted: \(GateMode.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        gateMode = gate
        if let name = try root.string("dtype") {
            guard let d = DType(torchName: name), d.isFloatingPoint, d != .f64 else {
                throw .config(path: path, key: "dtype", reason: "'\(name)' is not an output dtype (bfloat16, float16 or float32)")
            }
            dtype = d
        }
        expertsPerToken = try root.int("experts_per_token") ?? 2
        architecture = try root.string("architecture")
    }

    private static func experts(_ root: ConfigMapping<MergeError>, _ key: String, path: String) throws(MergeError) -> [Expert] {
        var result: [Expert] = []
        for (i, node) in (try root.sequence(key) ?? []).enumerated() {
            let m = try ConfigMapping<MergeError>(node, path: path, keyPath: "\(key)[\(i)]")
            try m.rejectUnknown(["source_model", "positive_prompts", "negative_prompts", "noise_scale", "residual_scale"])
            guard let source = try m.string("source_model") else {
                throw .config(path: path, key: m.child("source_model"), reason: "missing; name the model whose MLP this expert is")
            }
            func prompts(_ k: String) throws(MergeError) -> [String] {
                var out: [String] = []
                for p in try m.sequence(k) ?? [] {
                    guard let s = p.scalarText else { throw .config(path: path, key: m.child(k), reason: "expected a list of strings") }
                    out.append(s)
                }
                return out
            }
            result.append(Expert(sourceModel: source, positivePrompts: try prompts("positive_prompts"),
                                 negativePrompts: try prompts("negative_prompts"),
                                 noiseScale: try m.double("noise_scale"), residualScale: try m.double("residual_scale")))
        }
        return result
    }

    /// mergekit-moe's checks: enough experts, prompts where the gate mode needs them, not every expert
    /// alike. `allowIdenticalSources` is mergekit's `--i-understand-this-is-not-useful-without-training`.
    public func validate(allowIdenticalSources: Bool) throws(MergeError) {
        guard expertsPerToken >= 1 else { throw .config(path: path, key: "experts_per_token", reason: "must be at least 1") }
        guard experts.count >= expertsPerToken else {
            throw .config(path: path, key: "experts", reason: "\(experts.count) experts, fewer than experts_per_token (\(expertsPerToken)); add experts or lower it")
        }
        guard gateMode != .random else { return }
        for (i, e) in experts.enumerated() where e.positivePrompts.isEmpty {
            throw .config(path: path, key: "experts[\(i)].positive_prompts", reason: "missing; gate_mode \(gateMode.rawValue) routes by prompts (use gate_mode: random for none)")
        }
        if let first = experts.first, experts.dropFirst().allSatisfy({ $0.positivePrompts == first.positivePrompts && $0.negativePrompts == first.negativePrompts }) {
            throw .config(path: path, key: "experts", reason: "every expert has the same prompts, so the router cannot tell them apart; give each expert prompts of its own")
        }
        if !allowIdenticalSources, let first = experts.first, experts.dropFirst().allSatisfy({ $0.sourceModel == first.sourceModel }) {
            throw .config(path: path, key: "experts", reason: "every expert is the same model ('\(first.sourceModel)'), which is useless without training; pass --i-understand-this-is-not-useful-without-training to build it anyway")
        }
        let withPrompts = sharedExperts.filter { !$0.positivePrompts.isEmpty }.count
        if withPrompts != 0 && withPrompts != sharedExperts.count {
            throw .config(path: path, key: "shared_experts", reason: "give prompts to every shared expert or to none")
        }
    }

    /// Whether the shared experts get router rows (they have prompts, or the gates are random).
    public var sharedExpertsHaveGates: Bool {
        !sharedExperts.isEmpty && (!gateMode.usesPrompts || sharedExperts.contains { !$0.positivePrompts.isEmpty })
    }

    /// The experts the router has rows for, in row order: the experts, then the shared experts that have gates.
    public var gatedExperts: [Expert] { experts + (sharedExpertsHaveGates ? sharedExperts : []) }

    /// The output architecture, as mergekit-moe picks it: `architecture` as a case-insensitive prefix of the
    /// names (Mixtral, Qwen MoE, Qwen3 MoE), then the first that fits the input model types.
    public func chooseArchitecture(modelTypes: [String]) throws(MergeError) -> Architecture {
        var candidates = Architecture.allCases
        if let a = architecture?.lowercased() {
            candidates = candidates.filter { $0.rawValue.lowercased().hasPrefix(a) }
            if candidates.isEmpty {
                throw .config(path: path, key: "architecture", reason: "'\(architecture!)' starts no output architecture's name (Mixtral, Qwen MoE, Qwen3 MoE; mergekit spells them so, and `qwen` picks the first that fits)")
            }
        }
        var reasons: [String] = []
        for c in candidates {
            if let why = c.refusal(modelTypes: modelTypes, sharedExperts: sharedExperts.count,
                                   sharedHavePrompts: sharedExperts.contains { !$0.positivePrompts.isEmpty }, gateMode: gateMode) {
                reasons.append("\(c.rawValue): \(why)")
            } else {
                return c
            }
        }
        throw .config(path: path, key: architecture == nil ? "(models)" : "architecture", reason: "no output architecture fits: " + reasons.joined(separator: "; "))
    }
}

extension MoEConfig.Architecture {
    /// Why this layout cannot hold the given inputs, or nil when it can.
    func refusal(modelTypes: [String], sharedExperts: Int, sharedHavePrompts: Bool, gateMode: MoEConfig.GateMode) -> String? {
        let types = Set(modelTypes)
        switch self {
        case .mixtral:
            if sharedExperts > 0 { return "no shared experts" }
            if types.count != 1 { return "all models must have one model_type (have \(types.sorted().joined(separator: ", ")))" }
            if !types.isSubset(of: ["llama", "mistral"]) { return "needs llama or mistral models" }
        case .qwen2MoE:
            if sharedExperts != 1 { return "needs exactly one shared expert (have \(sharedExperts))" }
            if gateMode != .random && !sharedHavePrompts { return "the shared expert needs prompts unless gate_mode is random" }
            if types.count != 1 { return "all models must have one model_type (have \(types.sorted().joined(separator: ", ")))" }
            if !types.isSubset(of: ["llama", "mistral", "qwen2"]) { return "needs llama, mistral or qwen2 models" }
        case .qwen3MoE:
            if sharedExperts > 0 { return "no shared experts" }
            if types != ["qwen3"] { return "needs qwen3 models" }
        }
        return nil
    }
}
