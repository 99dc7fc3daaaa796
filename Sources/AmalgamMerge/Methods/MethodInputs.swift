import AmalgamCore

/// The inputs of one tensor merge after shape checks: every tensor the same shape, embedding-like
/// tensors cut to their common vocabulary prefix.
struct AlignedInputs {
    /// Values in config order, all `shape`.
    var tensors: [[Float]]
    /// Models in config order, for messages.
    var models: [String]
    let shape: [Int]
    let baseIndex: Int?

    var elementCount: Int { tensors.first?.count ?? 0 }

    /// Indices of the inputs that are not the base, in config order.
    var nonBaseIndices: [Int] { tensors.indices.filter { $0 != baseIndex } }

    /// The base's values; callers check `requiresBase` first.
    var base: [Float]? { baseIndex.map { tensors[$0] } }
}

extension MergeMethod {
    /// Checks shapes and cuts vocabulary mismatches, as mergekit 0.1.5 does with
    /// `--unsafe-truncate-embeddings`: every input of an embedding-like tensor keeps its first
    /// `min(rows)` rows (the vocabulary axis, dim 0 for embed_tokens and lm_head); the other dims must
    /// match. Any other shape mismatch is an error naming the models and their shapes.
    func align(_ inputs: [MergeInput], _ context: MergeContext) throws(MergeError) -> AlignedInputs {
        guard let first = inputs.first else {
            throw fail(context, "no input model has this tensor")
        }
        for input in inputs where input.values.count != Tensor.elementCount(input.shape) {
            throw fail(context, "\(input.model) gives \(input.values.count) values for shape \(input.shape)")
        }
        if let b = context.baseIndex, !inputs.indices.contains(b) {
            throw fail(context, "base index \(b) is out of range for \(inputs.count) inputs")
        }
        var tensors = inputs.map(\.values)
        var shape = first.shape
        if inputs.contains(where: { $0.shape != shape }) {
            let listing = inputs.map { "\($0.model) \($0.shape)" }.joined(separator: ", ")
            let tails = Set(inputs.map { $0.shape.dropFirst().map { $0 } })
            guard context.isEmbedding, tails.count == 1, inputs.allSatisfy({ !$0.shape.isEmpty }) else {
                throw fail(context, "shapes differ: \(listing); all models must have the same architecture"
                    + (context.isEmbedding ? " and hidden size (only the vocabulary size may differ)" : ""))
            }
            let rows = inputs.map { $0.shape[0] }.min()!
            shape[0] = rows
            let count = Tensor.elementCount(shape)
            tensors = tensors.map { $0.count == count ? $0 : Array($0[0..<count]) }
        }
        return AlignedInputs(tensors: tensors, models: inputs.map(\.model), shape: shape, baseIndex: context.baseIndex)
    }

    /// The error for this method and tensor.
    func fail(_ context: MergeContext, _ reason: String) -> MergeError {
        .method(method: name, tensor: context.tensorName, reason: reason)
    }

    /// The base index, or an error saying the config needs a `base_model`.
    func requireBase(_ context: MergeContext) throws(MergeError) -> Int {
        guard let b = context.baseIndex else {
            throw fail(context, "needs a base model: add `base_model:` to the config (and make sure it has this tensor)")
        }
        return b
    }

    /// The aligned inputs of a base-relative method, with the base's values and the other models'
    /// indices; `others` is empty when only the base has this tensor (the caller returns the base).
    func baseRelative(_ inputs: [MergeInput], _ context: MergeContext) throws(MergeError)
        -> (aligned: AlignedInputs, base: [Float], others: [Int]) {
        let baseIndex = try requireBase(context)
        let aligned = try align(inputs, context)
        return (aligned, aligned.tensors[baseIndex], aligned.nonBaseIndices)
    }

    /// A global parameter for this tensor, or its declared default.
    func global(_ key: String, _ context: MergeContext) throws(MergeError) -> ParameterValue {
        if let v = context.parameters[key] { return v }
        if let d = globalParameters.first(where: { $0.name == key })?.defaultValue { return d }
        throw fail(context, "the parameter '\(key)' is required; set it under `parameters:`")
    }

    /// A numeric global parameter.
    func globalNumber(_ key: String, _ context: MergeContext) throws(MergeError) -> Double {
        let v = try global(key, context)
        guard let d = v.doubleValue else { throw fail(context, "'\(key)' must be a number, not '\(v)'") }
        return d
    }

    /// A boolean global parameter.
    func globalBool(_ key: String, _ context: MergeContext) throws(MergeError) -> Bool {
        let v = try global(key, context)
        guard let b = v.boolValue else { throw fail(context, "'\(key)' must be true or false, not '\(v)'") }
        return b
    }

    /// A numeric per-model parameter of `input`, or its declared default.
    func modelNumber(_ key: String, _ input: MergeInput, _ context: MergeContext) throws(MergeError) -> Double {
        let value = input.parameters[key] ?? perModelParameters.first(where: { $0.name == key })?.defaultValue
        guard let value else {
            throw fail(context, "the parameter '\(key)' is required for \(input.model); set it in that model's `parameters:`")
        }
        guard let d = value.doubleValue else {
            throw fail(context, "'\(key)' of \(input.model) must be a number, not '\(value)'")
        }
        return d
    }
}
