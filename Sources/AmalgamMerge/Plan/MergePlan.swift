import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// What a merge will do, decided before any tensor is read: for every output tensor, which input
/// tensors feed it, with which parameters. Planning reads only headers and configs.
public struct MergePlan: Sendable {
    /// One input of one output tensor.
    public struct Input: Sendable {
        /// Index into `models`.
        public let model: Int
        /// The tensor's name in that model (a fused expert tensor's name when `segments` has several).
        public let tensorName: String
        public let info: TensorInfo
        /// The stored tensors whose flat concatenation is this input: `[tensorName]`, or a layer's
        /// per-expert tensors in fused order (`MoEExperts.fused`).
        public let segments: [String]
        /// Per-model parameters resolved for this tensor.
        public let parameters: Parameters
    }

    /// One output tensor.
    public struct Step: Sendable {
        public let outputName: String
        public let outputShape: [Int]
        public let outputDType: DType
        public let inputs: [Input]
        /// Index into `inputs` of the base model.
        public let baseIndex: Int?
        /// Global parameters resolved for this tensor.
        public let parameters: Parameters
        public let isEmbedding: Bool
        /// Copied unchanged from the first input (integer buffers and the like).
        public let copiesInput: Bool
        /// Rows are re-indexed into the output vocabulary before merging (`tokenizer_source`).
        public let permutesVocabulary: Bool
        public let seed: UInt64
    }

    public let config: MergeConfig
    public let method: any MergeMethod
    public let models: [ModelSource]
    public let steps: [Step]
    /// The output's `config.json`.
    public let outputConfig: ModelConfig
    /// The model whose tokenizer and generation files are copied (base, else first).
    public let donor: Int
    /// Dtype inputs are rounded to before merging (`dtype:`), if any.
    public let computeDType: DType?
    /// The output vocabulary, when the config sets `tokenizer_source` or `tokenizer`.
    public let vocabulary: VocabularyPlan?
    /// Exact (default) or mergekit's rounding of intermediates in the working dtype.
    public let arithmetic: MergeArithmetic
    /// How MoE experts are merged: fused as mergekit does (default), or each stored tensor alone.
    public let moeExperts: MoEExperts

    /// Where `step`'s method rounds intermediates: in mergekit's arithmetic, to the working dtype, which is
    /// the config's `dtype:` or, without one, the dtype of the step's first input (mergekit then computes
    /// in the dtype the tensors were stored in).
    public func rounding(for step: Step) -> Rounding {
        Rounding(arithmetic, workingDType: computeDType ?? step.inputs.first?.info.dtype)
    }

    /// Bytes the merge reads (every input tensor once).
    public var inputBytes: Int { steps.reduce(0) { $0 + $1.inputs.reduce(0) { $0 + $1.info.byteCount } } }
    /// Bytes the merge writes.
    public var outputBytes: Int { steps.reduce(0) { $0 + Tensor.elementCount($1.outputShape) * $1.outputDType.byteSize } }

    /// Plans `config`, opening every referenced model. `seed` makes random methods reproducible.
    /// `truncateEmbeddings` lets embeddings of different vocabulary sizes merge over their common rows
    /// (mergekit's `--unsafe-truncate-embeddings`); without it such a mismatch is an error.
    /// `arithmetic`: `.mergekit` rounds intermediates where mergekit 0.1.5's torch arithmetic does.
    /// `moeExperts`: `.fused` merges the experts of Mixtral / Qwen2-MoE / Qwen3-MoE checkpoints as
    /// mergekit 0.1.5 does, one fused tensor per layer and projection; `.perExpert` each stored tensor.
    public init(config: MergeConfig, seed: UInt64 = 0, truncateEmbeddings: Bool = false,
                arithmetic: MergeArithmetic = .exact, moeExperts: MoEExperts = .fused) throws(MergeError) {
        guard let method = MergeMethods.named(config.mergeMethod) else {
            throw .config(path: config.path, key: "merge_method", reason: "unknown method '\(config.mergeMethod)'")
        }
        self.config = config
        self.method = method
        computeDType = config.dtype
        self.arithmetic = arithmetic
        self.moeExperts = moeExperts
        let configDir = (config.path as NSString).deletingLastPathComponent

        var models: [ModelSource] = []
        var index: [String: Int] = [:]
        for ref in config.referencedModels {
            index[ref] = models.count
            do { models.append(try ModelSource.open(ref, relativeTo: configDir.isEmpty ? nil : configDir)) } catch { throw .checkpoint(error) }
        }
        self.models = models
        donor = config.baseModel.flatMap { index[$0] } ?? 0

        // `models:` is one slice over every layer, with the base appended when not listed.
        let slices: [MergeConfig.OutputSlice]
        if let inputs = config.models {
            var sources = inputs.map { m in
                MergeConfig.InputSlice(model: m.model, layerRange: 0..<models[index[m.model]!].layerCount, parameters: m.parameters)
            }
            if let base = config.baseModel, !inputs.contains(where: { $0.model == base }) {
                sources.append(MergeConfig.InputSlice(model: base, layerRange: 0..<models[index[base]!].layerCount, parameters: nil))
            }
            let counts = Set(sources.map(\.layerRange.count))
            guard counts.count == 1 else {
                throw .config(path: config.path, key: "models", reason: "the models have different layer counts (\(sources.map { "\($0.model): \($0.layerRange.count)" }.joined(separator: ", "))); use `slices:` to choose layers")
            }
            slices = [MergeConfig.OutputSlice(sources: sources, baseModel: nil, parameters: nil)]
        } else {
            slices = config.slices!
        }

        vocabulary = try config.tokenizer.map { t throws(MergeError) in try VocabularyPlan.build(settings: t, config: config, models: models, index: index) }
        var views: [LogicalTensors] = []
        for m in models { views.append(try LogicalTensors(m, mode: moeExperts)) }
        var planner = Planner(config: config, method: method, models: models, views: views, modelIndex: index, seed: seed, vocabulary: vocabulary,
                              truncateEmbeddings: truncateEmbeddings, arithmetic: arithmetic)
        try planner.plan(slices: slices)
        steps = planner.steps

        var out = models[donor].config
        if config.slices != nil { out.numHiddenLayers = planner.outputLayers }
        if let v = vocabulary { out.vocabSize = v.paddedSize }
        if let d = config.outDType ?? config.dtype { out.dtype = d }
        outputConfig = out
    }
}

/// Builds the steps of a plan, slice by slice, as mergekit's planner does.
private struct Planner {
    let config: MergeConfig
    let method: any MergeMethod
    let models: [ModelSource]
    /// Each model's tensors as the merge sees them (fused experts or as stored).
    let views: [LogicalTensors]
    let modelIndex: [String: Int]
    let seed: UInt64
    let vocabulary: VocabularyPlan?
    let truncateEmbeddings: Bool
    let arithmetic: MergeArithmetic
    var steps: [MergePlan.Step] = []
    var outputLayers = 0


    mutating func plan(slices: [MergeConfig.OutputSlice]) throws(MergeError) {
        for (i, s) in slices.enumerated() {
            for src in s.sources {
                let m = models[modelIndex[src.model]!]
                guard src.layerRange.upperBound <= m.layerCount else {
                    throw .config(path: config.path, key: "slices[\(i)].sources.layer_range",
                                  reason: "\(src.model) has \(m.layerCount) layers; [\(src.layerRange.lowerBound), \(src.layerRange.upperBound)] is out of range")
                }
            }
        }
        let first = slices[0]
        let last = slices[slices.count - 1]
        let firstModel = views[modelIndex[first.sources[0].model]!]
        let globals = firstModel.infos.filter { TensorName($0.name).layer == nil }
        let isPost: (TensorInfo) -> Bool = { [.finalNorm, .lmHead].contains(TensorName($0.name).role) }

        for info in sortedForOutput(globals.filter { !isPost($0) }) {
            try planTensor(outputName: info.name, inputNames: first.sources.map { _ in info.name }, slice: first, t: 0)
        }
        for s in slices {
            let n = s.sources[0].layerRange.count
            for offset in 0..<n {
                let t = n > 1 ? Double(offset) / Double(n - 1) : 1
                let templateLayer = s.sources[0].layerRange.lowerBound + offset
                let template = firstLayerTensors(of: views[modelIndex[s.sources[0].model]!], layer: templateLayer)
                for info in template {
                    let name = TensorName(info.name)
                    try planTensor(outputName: name.withLayer(outputLayers),
                                   inputNames: s.sources.map { name.withLayer($0.layerRange.lowerBound + offset) },
                                   slice: s, t: t)
                }
                outputLayers += 1
            }
        }
        // Post weights: from the last slice's sources; lm_head only if some input has it.
        let lastModels = last.sources.map { views[modelIndex[$0.model]!] }
        var post = sortedForOutput(globals.filter(isPost))
        if !post.contains(where: { TensorName($0.name).role == .lmHead }),
           let head = lastModels.lazy.compactMap({ $0.info("lm_head.weight") }).first {
            post.append(head)
        }
        for info in post {
            try planTensor(outputName: info.name, inputNames: last.sources.map { _ in info.name }, slice: last, t: 0)
        }
    }

    private func firstLayerTensors(of model: LogicalTensors, layer: Int) -> [TensorInfo] {
        sortedForOutput(model.infos.filter { TensorName($0.name).layer == layer })
    }

    /// Orders tensors as transformers' state dict does (embeddings; per layer q, k, v, o, norms, gate,
    /// up, down, layer norms; final norm; lm_head), so shards match what `save_pretrained` writes.
    private func sortedForOutput(_ infos: [TensorInfo]) -> [TensorInfo] {
        let order: [TensorRole] = [.embedding, .attentionQ, .attentionK, .attentionV, .attentionO, .queryNorm, .keyNorm,
                                   .mlpGate, .mlpUp, .mlpDown, .inputNorm, .postAttentionNorm, .other, .finalNorm, .lmHead]
        return infos.enumerated().sorted { a, b in
            let ra = order.firstIndex(of: TensorName(a.element.name).role)!
            let rb = order.firstIndex(of: TensorName(b.element.name).role)!
            if ra != rb { return ra < rb }
            let ba = a.element.name.hasSuffix(".bias"), bb = b.element.name.hasSuffix(".bias")
            if ba != bb { return !ba }
            return a.offset < b.offset
        }.map(\.element)
    }

    /// The settings scopes, highest precedence first, for one model (or the shared ones when nil).
    private func scopes(slice: MergeConfig.OutputSlice, model: String?) -> [ParameterSettings?] {
        var result: [ParameterSettings?] = []
        if let model { result += slice.sources.filter { $0.model == model }.map(\.parameters) }
        result.append(slice.parameters)
        result.append(config.parameters)
        return result
    }

    private func resolve(_ spec: ParameterSpec, scopes: [ParameterSettings?], tensorName: String, t: Double) -> ParameterValue? {
        for scope in scopes {
            if let setting = scope?[spec.name], let value = setting.resolve(tensorName: tensorName, t: t, kind: spec.kind) {
                return value
            }
        }
        return spec.defaultValue
    }

    mutating func planTensor(outputName: String, inputNames: [String], slice: MergeConfig.OutputSlice, t: Double) throws(MergeError) {
        let baseRef = slice.baseModel ?? config.baseModel
        var inputs: [MergePlan.Input] = []
        var baseIndex: Int?
        var missing: [String] = []
        for (src, name) in zip(slice.sources, inputNames) {
            let mi = modelIndex[src.model]!
            let model = views[mi]
            var tensorName = name
            var info = model.info(name)
            if info == nil, TensorName(name).role == .lmHead, let tied = model.info("model.embed_tokens.weight") {
                // A tied lm_head is the embedding (mergekit's `tied_names`).
                tensorName = tied.name
                info = tied
            }
            guard let info else {
                missing.append(src.model)
                continue
            }
            var values: [String: ParameterValue] = [:]
            let isBase = src.model == baseRef
            // As in mergekit, the base reads only the parameters every input has (not `NON_BASE` ones).
            for spec in method.perModelParameters where !(isBase && spec.nonBaseOnly) {
                guard let v = resolve(spec, scopes: scopes(slice: slice, model: src.model), tensorName: name, t: t) else {
                    throw .config(path: config.path, key: spec.name, reason: "required by '\(method.name)' but not set for \(src.model) (tensor '\(name)')")
                }
                values[spec.name] = v
            }
            if isBase, baseIndex == nil { baseIndex = inputs.count }
            inputs.append(MergePlan.Input(model: mi, tensorName: tensorName, info: TensorInfo(name: tensorName, dtype: info.dtype, shape: info.shape),
                                          segments: model.entry(tensorName)!.segments, parameters: Parameters(values)))
        }
        var copyOnly = false
        if !missing.isEmpty {
            // A tensor some inputs lack: the method's missing-tensor policy (mergekit's
            // optional_tensor_policy) decides between copying a lone input, skipping, or failing.
            let lone = inputs.count == 1
            switch method.missingTensorPolicy {
            case .passthroughSingleton where lone, .passthroughBaseSingleton where lone && baseIndex == 0:
                copyOnly = true
            case let .baseOrSkip(minimum) where inputs.count < minimum:
                guard baseIndex != nil, lone else { return }
                copyOnly = true
            default:
                throw .config(path: config.path, key: outputName,
                              reason: "tensor missing from \(missing.joined(separator: ", ")) but present in \(inputs.map { models[$0.model].reference }.joined(separator: ", ")); '\(method.name)' needs it in every input (the inputs must share an architecture\(outputName.contains(".experts.") ? "; MoE checkpoints whose experts are stored in different layouts, fused and per expert, merge only with --moe-experts fused" : ""))")
            }
        }
        var global: [String: ParameterValue] = [:]
        for spec in method.globalParameters where !copyOnly {
            guard let v = resolve(spec, scopes: scopes(slice: slice, model: nil), tensorName: outputName, t: t) else {
                throw .config(path: config.path, key: spec.name, reason: "required by '\(method.name)' but not set (tensor '\(outputName)')")
            }
            global[spec.name] = v
        }
        let role = TensorName(outputName).role
        let isEmbedding = role.isEmbeddingLike && truncateEmbeddings
        let reference = inputs[baseIndex ?? 0].info
        let copies = copyOnly || !reference.dtype.isFloatingPoint
        let permutes = role.isEmbeddingLike && vocabulary != nil && !copies
        let shape: [Int]
        if permutes, let v = vocabulary {
            let widths = Set(inputs.map { Array($0.info.shape.dropFirst()) })
            guard widths.count == 1, inputs[0].info.shape.count == 2 else {
                throw .method(method: method.name, tensor: outputName, reason: "embedding widths differ: \(inputs.map(\.info.shape))")
            }
            shape = [v.paddedSize, inputs[0].info.shape[1]]
        } else {
            shape = try outputShape(inputs: inputs, baseIndex: baseIndex, isEmbedding: role.isEmbeddingLike, outputName: outputName)
        }
        var outDType = !reference.dtype.isFloatingPoint ? reference.dtype : (config.outDType ?? config.dtype ?? reference.dtype)
        // mergekit writes the tensor a method returns: f32 for those that compute in f32 whatever `dtype:` says.
        if arithmetic == .mergekit, method.mergekitResultIsF32, config.outDType == nil, !copies { outDType = .f32 }
        steps.append(MergePlan.Step(outputName: outputName, outputShape: shape, outputDType: outDType, inputs: inputs,
                                    baseIndex: baseIndex, parameters: Parameters(global), isEmbedding: isEmbedding,
                                    copiesInput: copies, permutesVocabulary: permutes, seed: SeedDerivation.seed(run: seed, tensor: outputName)))
    }

    /// The shape the method will produce: the common shape; for embeddings of different vocabulary sizes
    /// (only with `truncateEmbeddings`), the common rows, as mergekit's `--unsafe-truncate-embeddings`.
    private func outputShape(inputs: [MergePlan.Input], baseIndex: Int?, isEmbedding: Bool, outputName: String) throws(MergeError) -> [Int] {
        let shapes = inputs.map(\.info.shape)
        if Set(shapes).count == 1 || method.name == "passthrough" { return shapes[0] }
        let listing = zip(inputs, shapes).map { "\(models[$0.model].reference) \($1)" }.joined(separator: ", ")
        if isEmbedding, Set(shapes.map { Array($0.dropFirst()) }).count == 1 {
            guard truncateEmbeddings else {
                throw .method(method: method.name, tensor: outputName,
                              reason: "vocabulary sizes differ (\(listing)); set `tokenizer_source: base` or `union` to align the vocabularies, or pass --unsafe-truncate-embeddings to cut them to the common rows")
            }
            return [shapes.map { $0[0] }.min()!] + shapes[0].dropFirst()
        }
        throw .method(method: method.name, tensor: outputName, reason: "input shapes differ: " + listing)
    }
}

