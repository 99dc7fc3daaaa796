import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge

/// One tensor held in memory, in f32.
public struct NamedTensor: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var values: [Float]

    public init(name: String, shape: [Int], values: [Float]) {
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// Checkpoints held in memory and merged by a recipe with the registry's methods (the code `amalgam merge`
/// runs), tensor by tensor, without touching the disk: the inner loop of a recipe search.
///
/// Parameters are resolved as mergekit's planner resolves them (source, then slice, then top level; the
/// first matching filter; layer tensors from their slice, other tensors from the first slice, the final
/// norm and output head from the last), and random methods draw from the same per-tensor streams as
/// `amalgam merge --seed`, so the recipe's YAML run through `amalgam merge` gives the same tensors.
public struct InMemoryMerge: Sendable {
    /// Tensors by model reference (every model lists the same names and shapes).
    public let models: [String: [NamedTensor]]
    /// The tensor names and shapes of the output, in order (those of the first model given).
    public let layout: [(name: String, shape: [Int])]

    /// Holds `models` (reference and tensors, in order); all must have the same tensors.
    public init(models: [(reference: String, tensors: [NamedTensor])]) throws(SearchError) {
        guard let first = models.first else { throw .invalidConfiguration(key: "models", reason: "give at least one model") }
        var byName: [String: [NamedTensor]] = [:]
        for (reference, tensors) in models {
            guard tensors.map(\.name) == first.tensors.map(\.name), tensors.map(\.shape) == first.tensors.map(\.shape) else {
                throw .invalidConfiguration(key: reference, reason: "its tensors differ from those of \(first.reference); recipe search needs models of one architecture")
            }
            byName[reference] = tensors
        }
        self.models = byName
        layout = first.tensors.map { ($0.name, $0.shape) }
    }

    /// The merged tensors, in `layout` order. `seed` is `amalgam merge --seed` (random methods only).
    public func merge(_ recipe: MergeRecipe, seed: UInt64 = 0) throws(SearchError) -> [NamedTensor] {
        guard let method = MergeMethods.named(recipe.mergeMethod) else {
            throw .invalidConfiguration(key: "merge_method", reason: "unknown method `\(recipe.mergeMethod)`")
        }
        let rounding = DType(torchName: recipe.dtype).flatMap { $0 == .f32 ? nil : $0 }
        var out: [NamedTensor] = []
        out.reserveCapacity(layout.count)
        for (name, shape) in layout {
            let tensorName = TensorName(name)
            guard let s = recipe.sliceIndex(layer: tensorName.layer, isPost: [.finalNorm, .lmHead].contains(tensorName.role)) else {
                throw .invalidConfiguration(key: "slices", reason: "no slice covers layer \(tensorName.layer ?? -1) (tensor \(name))")
            }
            let slice = recipe.slices[s]
            let base = slice.baseModel ?? recipe.baseModel
            var inputs: [MergeInput] = []
            var baseIndex: Int?
            for source in slice.sources {
                guard let tensors = models[source.model], let tensor = tensors.first(where: { $0.name == name }) else {
                    throw .invalidConfiguration(key: source.model, reason: "not among the models held in memory (tensor \(name))")
                }
                let isBase = source.model == base
                var parameters: [String: ParameterValue] = [:]
                for spec in method.perModelParameters where !(isBase && spec.nonBaseOnly) {
                    if let v = source.parameter(spec.name, tensor: name) {
                        parameters[spec.name] = .number(v)
                    } else if let d = spec.defaultValue {
                        parameters[spec.name] = d
                    } else {
                        throw .invalidConfiguration(key: spec.name, reason: "required by \(method.name) but not set for \(source.model) (tensor \(name))")
                    }
                }
                if isBase, baseIndex == nil { baseIndex = inputs.count }
                let values = rounding.map { Tensor(tensor.values, shape: tensor.shape).converted(to: $0).floats() } ?? tensor.values
                inputs.append(MergeInput(model: source.model, values: values, shape: tensor.shape, parameters: Parameters(parameters)))
            }
            var global: [String: ParameterValue] = [:]
            let recipeGlobals: [String: ParameterValue] = Dictionary(uniqueKeysWithValues:
                [("normalize", .bool(recipe.normalize)), ("int8_mask", .bool(recipe.int8Mask))] + slice.parameters.map { ($0.0, .number($0.1)) })
            for spec in method.globalParameters {
                if let v = recipeGlobals[spec.name] ?? spec.defaultValue {
                    global[spec.name] = v
                } else {
                    throw .invalidConfiguration(key: spec.name, reason: "required by \(method.name) but not set (tensor \(name))")
                }
            }
            let context = MergeContext(tensorName: name, baseIndex: baseIndex, parameters: Parameters(global),
                                       seed: SeedDerivation.seed(run: seed, tensor: name), isEmbedding: false)
            do {
                var (values, mergedShape) = try method.merge(inputs, context: context)
                if let rounding { values = Tensor(values, shape: mergedShape).converted(to: rounding).floats() }
                out.append(NamedTensor(name: name, shape: shape, values: values))
            } catch {
                throw .invalidConfiguration(key: "recipe", reason: error.description)
            }
        }
        return out
    }
}
