import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// `extract-lora`: a PEFT LoRA adapter that turns a base model into (an approximation of) a fine-tune of
/// it, planned as mergekit-extract-lora 0.1.5 plans it. Each decomposed module's delta Δ = fine-tuned − base
/// is factorised by a truncated SVD, Δ ≈ U_r·S_r·V_rᵀ, and written as lora_B = U_r·√S_r and
/// lora_A = √S_r·V_rᵀ (or B = U_r, A = S_r·V_rᵀ without `distributeScale`), with lora_alpha = r so PEFT's
/// scale is 1. Embeddings and undecomposable tensors (norms) are saved whole (`modules_to_save`).
public struct LoRAExtraction: Sendable {
    /// mergekit-extract-lora's options.
    public struct Options: Sendable, Equatable {
        public var maxRank: Int
        /// Split √S between A and B (mergekit's default) rather than putting S into A.
        public var distributeScale: Bool
        /// Decompose the embeddings too (`lora_embedding_A/B`) instead of saving them whole.
        public var embedLoRA: Bool
        /// Modules (full or last name) saved whole.
        public var modulesToSave: [String]
        /// Module names matching any of these (searched anywhere in the name) are not written at all.
        public var excludeRegexes: [String]
        /// When set, only module names matching one of these are decomposed.
        public var includeRegexes: [String]
        /// Singular values at or below this are dropped (absolute), cutting the rank.
        public var svEpsilon: Double
        /// Tensors that are not matrices (norms) are left out instead of saved whole.
        public var skipUndecomposable: Bool
        /// The truncated SVD's sampling (oversampling, power iterations); its seed is mixed with each tensor's name.
        public var svd: TruncatedSVD.Settings

        public init(maxRank: Int = 128, distributeScale: Bool = true, embedLoRA: Bool = false, modulesToSave: [String] = [],
                    excludeRegexes: [String] = [], includeRegexes: [String] = [], svEpsilon: Double = 0,
                    skipUndecomposable: Bool = false, svd: TruncatedSVD.Settings = .init()) {
            self.maxRank = maxRank
            self.distributeScale = distributeScale
            self.embedLoRA = embedLoRA
            self.modulesToSave = modulesToSave
            self.excludeRegexes = excludeRegexes
            self.includeRegexes = includeRegexes
            self.svEpsilon = svEpsilon
            self.skipUndecomposable = skipUndecomposable
            self.svd = svd
        }
    }

    /// What happens to one module of the fine-tuned model.
    public enum Action: Sendable, Equatable {
        /// Low-rank factors of its delta; `embedding` stores them as lora_embedding_A/B of Δᵀ.
        case decompose(embedding: Bool)
        /// Saved whole from the fine-tuned model.
        case save
    }

    /// One planned module.
    public struct Item: Sendable, Equatable {
        /// The module name (`model.layers.0.self_attn.q_proj`).
        public let module: String
        public let action: Action
        /// The `.weight` tensor's info in the fine-tuned model.
        public let weight: TensorInfo
        /// The `.bias` tensor, if the module has one.
        public let bias: TensorInfo?
    }

    /// One decomposed module's result.
    public struct ModuleResult: Sendable, Equatable {
        public let module: String
        public let rank: Int
        /// ‖Δ − B·A‖_F / ‖Δ‖_F of the f32 factors (before rounding to the output dtype); 0 for Δ = 0.
        public let relativeError: Double
        /// Whether the full SVD was taken instead of the randomised one (small matrix).
        public let exactSVD: Bool
    }

    public let base: ModelSource
    public let fineTuned: ModelSource
    public let options: Options
    public let items: [Item]
    /// `modules_to_save` of the config, in the order found (last name components, as mergekit writes them).
    public let modulesToSave: [String]
    /// Notes for the user (embeddings forced whole because the vocabularies differ, …).
    public let warnings: [String]

    /// Plans the extraction: which modules are decomposed, saved whole or left out.
    public init(base: ModelSource, fineTuned: ModelSource, options: Options) throws(LoRAError) {
        guard options.maxRank >= 1 else { throw .extraction(reason: "--max-rank must be at least 1 (got \(options.maxRank))") }
        self.base = base
        self.fineTuned = fineTuned
        self.options = options
        var warnings: [String] = []
        let exclude = try Self.regexes(options.excludeRegexes, option: "--exclude-regex")
        let include = try Self.regexes(options.includeRegexes, option: "--include-regex")
        func matches(_ list: [ScalarRegex], _ name: String) -> Bool { list.contains { $0.isFound(in: name) } }
        var embedLoRA = options.embedLoRA
        let ftVocab = fineTuned.tensors.info("model.embed_tokens.weight")?.shape.first
        let baseVocab = base.tensors.info("model.embed_tokens.weight")?.shape.first
        if embedLoRA, ftVocab != baseVocab {
            warnings.append("the vocabularies differ (fine-tuned \(ftVocab ?? 0) rows, base \(baseVocab ?? 0)); the embeddings are saved whole, not decomposed (as mergekit does)")
            embedLoRA = false
        }
        var toSave = options.modulesToSave
        var items: [Item] = []
        for info in Self.moduleOrder(fineTuned.tensors.tensorInfos) {
            let module = String(info.name.dropLast(".weight".count))
            let last = module.split(separator: ".").last.map(String.init) ?? module
            let role = TensorName(info.name).role
            let bias = fineTuned.tensors.info(module + ".bias")
            if !embedLoRA, role.isEmbeddingLike, !matches(exclude, module), !toSave.contains(last) { toSave.append(last) }
            if toSave.contains(module) || toSave.contains(last) {
                items.append(Item(module: module, action: .save, weight: info, bias: bias))
                continue
            }
            if !include.isEmpty && !matches(include, module) { continue }
            if matches(exclude, module) { continue }
            if info.shape.count == 2 {
                guard let other = base.tensors.info(info.name) else {
                    throw .extraction(reason: "\(base.path): no tensor '\(info.name)', which \(fineTuned.path) has; give the base the fine-tune was made from, or leave the module out with --exclude-regex")
                }
                guard other.shape == info.shape else {
                    throw .extraction(reason: "'\(info.name)' is \(info.shape) in \(fineTuned.path) but \(other.shape) in \(base.path); give the base the fine-tune was made from, or save the module whole with --save-module \(last)")
                }
                guard info.dtype.isFloatingPoint else {
                    throw .extraction(reason: "'\(info.name)' of \(fineTuned.path) is \(info.dtype), not a float tensor; leave it out with --exclude-regex")
                }
                items.append(Item(module: module, action: .decompose(embedding: role == .embedding), weight: info, bias: bias))
            } else if !options.skipUndecomposable {
                if !toSave.contains(last) { toSave.append(last) }
                items.append(Item(module: module, action: .save, weight: info, bias: bias))
            }
        }
        guard items.contains(where: { if case .decompose = $0.action { return true } else { return false } }) else {
            throw .extraction(reason: "no module is left to decompose (check --include-regex/--exclude-regex/--save-module); an adapter needs at least one")
        }
        self.items = items
        modulesToSave = toSave
        self.warnings = warnings
    }

    /// The fine-tuned model's `.weight` tensors in transformers' module order (embeddings; per layer
    /// attention, MLP, norms; final norm; lm_head), the order mergekit walks `named_modules()` in.
    static func moduleOrder(_ infos: [TensorInfo]) -> [TensorInfo] {
        let order: [TensorRole] = [.embedding, .attentionQ, .attentionK, .attentionV, .attentionO, .queryNorm, .keyNorm,
                                   .mlpGate, .mlpUp, .mlpDown, .inputNorm, .postAttentionNorm, .other, .finalNorm, .lmHead]
        func key(_ info: TensorInfo) -> (Int, Int, Int) {
            let name = TensorName(info.name)
            let rank = order.firstIndex(of: name.role)!
            if let layer = name.layer { return (1, layer, rank) }
            return (name.role == .embedding ? 0 : 2, 0, rank)
        }
        return infos.filter { $0.name.hasSuffix(".weight") }.enumerated().sorted { a, b in
            let ka = key(a.element), kb = key(b.element)
            return ka != kb ? ka < kb : a.offset < b.offset
        }.map(\.element)
    }

    private static func regexes(_ patterns: [String], option: String) throws(LoRAError) -> [ScalarRegex] {
        var result: [ScalarRegex] = []
        for p in patterns {
            do { result.append(try ScalarRegex(p, dialect: .python)) } catch {
                throw .extraction(reason: "\(option) '\(p)' is not a valid regular expression: \(error)")
            }
        }
        return result
    }
}
