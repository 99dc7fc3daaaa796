import Foundation

/// mergekit-evolve's genome (mergekit 0.1.5, `mergekit/evo/genome.py`): a flat vector of
/// `layer groups × models × parameter sets × method parameters`, turned into a merge recipe the way
/// `ModelGenome.genotype_merge_config` does it.
///
/// - linear and task_arithmetic read a `weight` per group, model and parameter set; ties and dare_ties a
///   `weight` and a `density`; slerp one value per group and model whose top two choose the pair and `t`.
/// - Parameter sets are the `filters` (substrings of tensor names) followed by a catch-all set.
/// - Values are mapped as mergekit maps them: density `clamp(|v|, 0, 1)`; weight `|v|` unless negative
///   weights are allowed; slerp's `t = softmax(top two)[1]` of the raw values, the larger one's model as base.
public struct MergeGenome: Sendable, Codable, Equatable {
    /// The parameters each method reads from the genome, in genome order (`METHOD_PARAM_MAPS`).
    public static let methodParameters: [String: [String]] = [
        "linear": ["weight"], "task_arithmetic": ["weight"], "ties": ["weight", "density"],
        "dare_ties": ["weight", "density"], "slerp": ["t"],
    ]

    /// The models being merged (config references), in genome order.
    public var models: [String]
    public var mergeMethod: String
    public var baseModel: String?
    /// Layers of the models (`num_hidden_layers`).
    public var layerCount: Int
    /// Layers per group (0: one group over all layers).
    public var layerGranularity: Int
    /// nil: on for ties, dare_ties and linear, as mergekit-evolve decides.
    public var normalize: Bool?
    public var allowNegativeWeights: Bool
    /// Tensor-name substrings with their own parameters (not for slerp).
    public var filters: [String]
    /// The recipe's `dtype` (mergekit-evolve always writes bfloat16).
    public var dtype: String

    /// A validated genome definition (mergekit's `ModelGenomeDefinition` checks).
    public init(models: [String], mergeMethod: String, baseModel: String? = nil, layerCount: Int, layerGranularity: Int = 0,
                normalize: Bool? = nil, allowNegativeWeights: Bool = false, filters: [String] = [],
                dtype: String = "bfloat16") throws(SearchError) {
        guard Self.methodParameters[mergeMethod] != nil else {
            throw .invalidConfiguration(key: "merge_method", reason: "`\(mergeMethod)` is not evolvable; use one of \(Self.methodParameters.keys.sorted().joined(separator: ", "))")
        }
        guard !models.isEmpty else { throw .invalidConfiguration(key: "models", reason: "name at least one model") }
        if ["ties", "dare_ties", "task_arithmetic"].contains(mergeMethod), baseModel == nil {
            throw .invalidConfiguration(key: "base_model", reason: "\(mergeMethod) needs a base_model")
        }
        if mergeMethod == "slerp" {
            guard filters.isEmpty else { throw .invalidConfiguration(key: "filters", reason: "slerp genomes cannot filter tensors (as in mergekit-evolve)") }
            guard models.count >= 2 else { throw .invalidConfiguration(key: "models", reason: "slerp needs at least two models") }
        }
        guard layerCount >= 1 else { throw .invalidConfiguration(key: "num_layers", reason: "the models need at least one layer") }
        guard layerGranularity <= 0 || layerCount % layerGranularity == 0 else {
            throw .invalidConfiguration(key: "layer_granularity", reason: "\(layerCount) layers are not a multiple of \(layerGranularity)")
        }
        self.models = models
        self.mergeMethod = mergeMethod
        self.baseModel = baseModel
        self.layerCount = layerCount
        self.layerGranularity = layerGranularity
        self.normalize = normalize
        self.allowNegativeWeights = allowNegativeWeights
        self.filters = filters
        self.dtype = dtype
    }

    /// Names of the genome's parameters for the method.
    public var parameterNames: [String] { Self.methodParameters[mergeMethod]! }
    /// Layer groups.
    public var groupCount: Int { layerGranularity > 0 ? layerCount / layerGranularity : 1 }
    /// Layers per group.
    public var layersPerGroup: Int { layerGranularity > 0 ? layerGranularity : layerCount }
    /// Filters plus the catch-all set.
    public var parameterSetCount: Int { filters.count + 1 }
    /// Length of the genotype.
    public var dimension: Int { groupCount * models.count * parameterSetCount * parameterNames.count }

    /// Position in the flat genotype (row-major, as mergekit's `view`).
    public func index(group: Int, model: Int, set: Int, parameter: Int) -> Int {
        ((group * models.count + model) * parameterSetCount + set) * parameterNames.count + parameter
    }

    /// mergekit-evolve's x₀: weight 1/N (as the float32 its torch tensor holds), density (when present) 1.
    public func initialGenotype() -> [Double] {
        (0..<dimension).map { $0 % parameterNames.count == 0 ? Double(1 / Float(models.count)) : 1 }
    }

    /// The recipe a genotype stands for.
    public func recipe(_ genotype: [Double]) throws(SearchError) -> MergeRecipe {
        guard genotype.count == dimension else {
            throw .parameterCountMismatch(expected: dimension, found: genotype.count, what: "the \(mergeMethod) genotype")
        }
        let normalizeValue = normalize ?? ["ties", "dare_ties", "linear"].contains(mergeMethod)
        var slices: [MergeRecipe.Slice] = []
        for group in 0..<groupCount {
            let layers = (group * layersPerGroup)..<((group + 1) * layersPerGroup)
            if mergeMethod == "slerp" {
                let values = (0..<models.count).map { genotype[index(group: group, model: $0, set: 0, parameter: 0)] }
                // torch.topk: largest first; equal values keep the lower index first.
                let ranked = values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
                let (a, b) = (ranked[0], ranked[1])
                let t = 1 / (1 + exp(values[a] - values[b]))
                var sources = [MergeRecipe.Source(model: models[a], layerRange: layers, parameters: []),
                               MergeRecipe.Source(model: models[b], layerRange: layers, parameters: [])]
                if let base = baseModel, !models.contains(base) {
                    sources.append(MergeRecipe.Source(model: base, layerRange: layers, parameters: []))
                }
                slices.append(MergeRecipe.Slice(sources: sources, baseModel: models[a], parameters: [("t", t)]))
                continue
            }
            var sources: [MergeRecipe.Source] = []
            for (m, model) in models.enumerated() {
                var parameters: [(String, MergeRecipe.Value)] = []
                for (p, name) in parameterNames.enumerated() {
                    let entries = (0..<parameterSetCount).map { set -> MergeRecipe.FilteredValue in
                        MergeRecipe.FilteredValue(filter: set < filters.count ? filters[set] : nil,
                                                  value: mapped(genotype[index(group: group, model: m, set: set, parameter: p)], name))
                    }
                    parameters.append((name, entries.count == 1 ? .scalar(entries[0].value) : .filtered(entries)))
                }
                sources.append(MergeRecipe.Source(model: model, layerRange: layers, parameters: parameters.sorted { $0.0 < $1.0 }))
            }
            if let base = baseModel, !models.contains(base) {
                sources.append(MergeRecipe.Source(model: base, layerRange: layers, parameters: []))
            }
            slices.append(MergeRecipe.Slice(sources: sources, baseModel: nil, parameters: []))
        }
        return MergeRecipe(mergeMethod: mergeMethod, baseModel: baseModel, normalize: normalizeValue, int8Mask: true,
                           dtype: dtype, slices: slices)
    }

    /// A genome value as the merge parameter mergekit-evolve gives it.
    private func mapped(_ v: Double, _ name: String) -> Double {
        switch name {
        case "density": return min(max(abs(v), 0), 1)
        case "weight", "t": return allowNegativeWeights ? v : abs(v)
        default: return v
        }
    }
}
