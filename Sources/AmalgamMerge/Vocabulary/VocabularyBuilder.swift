import AmalgamCheckpoint
import AmalgamCore

extension VocabularyPlan {
    /// Builds the output vocabulary as mergekit's `tokenizer_source` / `tokenizer:` does: `base` (the
    /// base's tokens below its vocab_size), a model's own tokenizer, or `union` (the base's tokens, then
    /// every other model's tokens it lacks, in model order, then their added tokens), plus tokens the
    /// config adds; and the permutation from each model's rows to output rows.
    static func build(settings: MergeConfig.TokenizerSettings, config: MergeConfig, models: [ModelSource], index: [String: Int]) throws(MergeError) -> VocabularyPlan {
        let baseIndex = config.baseModel.flatMap { index[$0] } ?? 0
        var vocabs: [TokenVocabulary] = []
        for m in models { vocabs.append(try TokenVocabulary(model: m)) }

        var vocabulary: [String: Int]
        var donor = baseIndex
        var newAdded: [(Int, JSONObject)] = []
        switch settings.source {
        case .base:
            vocabulary = vocabs[baseIndex].ids
        case let .model(ref):
            guard let i = index[ref] else {
                throw .config(path: config.path, key: "tokenizer_source", reason: "'\(ref)' is not one of the merged models")
            }
            vocabulary = vocabs[i].ids
            donor = i
        case .union:
            vocabulary = vocabs[baseIndex].ids
            var order = [baseIndex] + models.indices.filter { $0 != baseIndex }
            order = order.filter { _ in true }
            var pendingAdded: [(String, JSONObject)] = []
            var seenAdded = Set<String>()
            var unionOrder: [String] = []
            var inUnion = Set<String>()
            for i in order {
                for token in vocabs[i].tokens where vocabs[i].addedTokens[token] == nil && inUnion.insert(token).inserted {
                    unionOrder.append(token)
                }
                for token in vocabs[i].tokens {
                    if let entry = vocabs[i].addedTokens[token], seenAdded.insert(token).inserted { pendingAdded.append((token, entry)) }
                }
            }
            for token in unionOrder where vocabulary[token] == nil && !seenAdded.contains(token) {
                let id = vocabulary.count
                vocabulary[token] = id
                newAdded.append((id, Self.addedEntry(token, id: id, from: nil)))
            }
            for (token, entry) in pendingAdded where vocabulary[token] == nil {
                let id = vocabulary.count
                vocabulary[token] = id
                newAdded.append((id, Self.addedEntry(token, id: id, from: entry)))
            }
        }
        for token in settings.tokens.keys.sorted() where vocabulary[token] == nil {
            let id = vocabulary.count
            vocabulary[token] = id
            newAdded.append((id, Self.addedEntry(token, id: id, from: nil)))
        }

        let size = vocabulary.count
        var padded = size
        if let multiple = settings.padToMultipleOf, multiple > 0, size % multiple != 0 { padded = (size / multiple + 1) * multiple }

        var permutations: [[Int]] = []
        for (i, m) in models.enumerated() {
            var p = [Int](repeating: -1, count: size)
            let rows = m.config.vocabSize ?? Int.max
            for (token, id) in vocabulary { if let r = vocabs[i].ids[token], r < rows { p[id] = r } }
            permutations.append(p)
        }

        var defaults: [Int: RowSource] = [:]
        var forced = Set<Int>()
        for (token, source) in settings.tokens {
            let id = vocabulary[token]!
            switch source {
            case .automatic: continue
            case .zero: defaults[id] = .zero
            case let .model(ref, force):
                guard let mi = index[ref] else { throw .config(path: config.path, key: "tokenizer.tokens.\(token).source", reason: "'\(ref)' is not one of the merged models") }
                guard permutations[mi][id] >= 0 else { throw .config(path: config.path, key: "tokenizer.tokens.\(token)", reason: "\(ref) has no token \(token)") }
                defaults[id] = .model(mi, row: permutations[mi][id])
                if force { forced.insert(id) }
            case let .modelToken(ref, tokenId, tokenText, force):
                guard let mi = index[ref] else { throw .config(path: config.path, key: "tokenizer.tokens.\(token).source.model", reason: "'\(ref)' is not one of the merged models") }
                let row: Int
                if let tokenId { row = tokenId } else if let r = vocabs[mi].ids[tokenText!] { row = r } else {
                    throw .config(path: config.path, key: "tokenizer.tokens.\(token).source.token", reason: "\(ref) has no token \(tokenText!)")
                }
                guard row >= 0, row < (models[mi].config.vocabSize ?? Int.max) else {
                    throw .config(path: config.path, key: "tokenizer.tokens.\(token).source.token_id", reason: "\(row) is out of range for \(ref)")
                }
                defaults[id] = .model(mi, row: row)
                if force { forced.insert(id) }
            }
        }

        var document: JSONObject?
        if !newAdded.isEmpty || settings.source == .base && vocabs[baseIndex].count < (models[baseIndex].config.vocabSize ?? 0) {
            var doc = vocabs[donor].document
            var added = doc["added_tokens"]?.arrayValue ?? []
            for (_, entry) in newAdded { added.append(.object(entry)) }
            doc["added_tokens"] = .array(added)
            document = doc
        }
        return VocabularyPlan(vocabulary: vocabulary, paddedSize: padded, permutations: permutations, defaults: defaults,
                              forced: forced, tokenizerDocument: document, tokenizerDonor: donor, newAddedTokens: newAdded)
    }

    /// An added-token entry as `tokenizer.add_tokens` writes it (or a copy of another model's entry).
    private static func addedEntry(_ token: String, id: Int, from source: JSONObject?) -> JSONObject {
        var e = JSONObject()
        e["id"] = .int(id)
        e["content"] = .string(token)
        e["single_word"] = source?["single_word"] ?? .bool(false)
        e["lstrip"] = source?["lstrip"] ?? .bool(false)
        e["rstrip"] = source?["rstrip"] ?? .bool(false)
        e["normalized"] = source?["normalized"] ?? .bool(true)
        e["special"] = source?["special"] ?? .bool(false)
        return e
    }

    /// The rows of one embedding-like tensor for every input, permuted into the output vocabulary.
    /// `inputs` are the step's inputs (model index, values as [rows × width]); rows missing from a model
    /// come from the configured source, else the base's row, else the only model that has it, else the
    /// mean over the models that have it, else zeros. Padding rows get the mean embedding.
    func permute(inputs: [(model: Int, values: [Float], rows: Int)], width: Int, base: Int?) -> [[Float]] {
        let size = vocabulary.count
        let models = inputs.map(\.model)
        var defaultRows: [Int: [Float]] = [:]
        for id in 0..<size {
            let present = models.map { permutations[$0][id] >= 0 }
            if !forced.contains(id), present.allSatisfy({ $0 }) { continue }
            var row = [Float](repeating: 0, count: width)
            switch defaults[id] {
            case .zero?:
                break
            case let .model(m, r)?:
                if let k = inputs.firstIndex(where: { $0.model == m }), r < inputs[k].rows {
                    for j in 0..<width { row[j] = inputs[k].values[r * width + j] }
                }
            case .average?, nil:
                let count = present.filter { $0 }.count
                let pick: Int?
                if count == 1 { pick = present.firstIndex(of: true) } else if let base, let k = models.firstIndex(of: base), present[k] { pick = k } else { pick = nil }
                if let k = pick {
                    let r = permutations[models[k]][id]
                    for j in 0..<width { row[j] = inputs[k].values[r * width + j] }
                } else if count > 0 {
                    for (k, has) in present.enumerated() where has {
                        let r = permutations[models[k]][id]
                        for j in 0..<width { row[j] += inputs[k].values[r * width + j] }
                    }
                    for j in 0..<width { row[j] /= Float(count) }
                }
            }
            defaultRows[id] = row
        }
        return inputs.map { input in
            var out = [Float](repeating: 0, count: paddedSize * width)
            let p = permutations[input.model]
            for id in 0..<size {
                if p[id] >= 0, !forced.contains(id), p[id] < input.rows {
                    let src = p[id] * width
                    for j in 0..<width { out[id * width + j] = input.values[src + j] }
                } else if let row = defaultRows[id] {
                    for j in 0..<width { out[id * width + j] = row[j] }
                }
            }
            if paddedSize > size, size > 0 {
                var mean = [Float](repeating: 0, count: width)
                for id in 0..<size { for j in 0..<width { mean[j] += out[id * width + j] } }
                for j in 0..<width { mean[j] /= Float(size) }
                for id in size..<paddedSize { for j in 0..<width { out[id * width + j] = mean[j] } }
            }
            return out
        }
    }
}
