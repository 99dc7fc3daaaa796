import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// A merge as mergekit's YAML describes it, decoded and validated once at the boundary.
public struct MergeConfig: Sendable, Equatable {
    /// One input model of the `models:` form.
    public struct InputModel: Sendable, Equatable {
        public var model: String
        public var parameters: ParameterSettings?
    }

    /// One source of a slice: a model and the half-open range of its layers.
    public struct InputSlice: Sendable, Equatable {
        public var model: String
        public var layerRange: Range<Int>
        public var parameters: ParameterSettings?
    }

    /// One output slice: its sources (all the same number of layers) and slice-level settings.
    public struct OutputSlice: Sendable, Equatable {
        public var sources: [InputSlice]
        public var baseModel: String?
        public var parameters: ParameterSettings?
    }

    /// Where the output tokenizer comes from.
    public enum TokenizerSource: Sendable, Equatable {
        case base, union
        case model(String)
    }

    /// The `tokenizer:` block.
    public struct TokenizerSettings: Sendable, Equatable {
        public var source: TokenizerSource
        /// Tokens to add or force, with where their embedding comes from (kept as written).
        public var tokens: [String: TokenEmbedding]
        public var padToMultipleOf: Int?
    }

    /// Where one token's embedding row comes from (`tokenizer.tokens.<tok>.source`).
    public enum TokenEmbedding: Sendable, Equatable {
        case automatic
        case zero
        case model(String, force: Bool)
        case modelToken(String, tokenId: Int?, token: String?, force: Bool)
    }

    /// The file the config came from (for messages and relative model paths).
    public var path: String
    public var mergeMethod: String
    public var baseModel: String?
    public var models: [InputModel]?
    public var slices: [OutputSlice]?
    public var parameters: ParameterSettings?
    public var dtype: DType?
    public var outDType: DType?
    public var tokenizer: TokenizerSettings?
    public var chatTemplate: String?
    /// The YAML text as given, recorded in the output folder.
    public var sourceText: String
    /// In a multi-stage file: where this stage writes its model (`out_path`).
    public var outPath: String?
    /// In a multi-stage file: the stage's name, which later stages may use as a model path.
    public var name: String?
    /// What was accepted but has no effect, for the user to see: parameters the method does not declare
    /// (mergekit 0.1.5 ignores them silently; mergekit-evolve writes `int8_mask` and `normalize` for
    /// every method). One message per parameter name, naming where it is set.
    public private(set) var warnings: [String] = []

    static let topLevelKeys = [
        "merge_method", "base_model", "models", "slices", "modules", "parameters", "dtype", "out_dtype",
        "tokenizer_source", "tokenizer", "chat_template",
    ]

    /// Reads and validates a config file.
    public init(contentsOf path: String) throws(MergeError) {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .config(path: path, key: "(file)", reason: "cannot read: \(error.localizedDescription)")
        }
        try self.init(yaml: text, path: path)
    }

    /// Parses and validates YAML text; `path` is used in messages.
    public init(yaml: String, path: String = "(config)") throws(MergeError) {
        try self.init(node: ConfigNode.parse(yaml: yaml, path: path, as: MergeError.self), text: yaml, path: path, isStage: false)
    }

    /// Reads a file of one or more `---`-separated merges (mergekit-mega's format: every stage names
    /// its `out_path`, and later stages may use an earlier stage's `name` or `out_path` as a model).
    public static func stages(contentsOf path: String) throws(MergeError) -> [MergeConfig] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .config(path: path, key: "(file)", reason: "cannot read: \(error.localizedDescription)")
        }
        let documents = try ConfigNode.parseAll(yaml: text, path: path, as: MergeError.self)
        if documents.count <= 1 { return [try MergeConfig(yaml: text, path: path)] }
        let texts = text.components(separatedBy: "\n---").map { $0.hasPrefix("---") ? String($0.dropFirst(3)) : $0 }
            .filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
        var stages: [MergeConfig] = []
        var names: [String: String] = [:]
        for (i, doc) in documents.enumerated() {
            var stage = try MergeConfig(node: doc, text: i < texts.count ? texts[i] : text, path: path + "#\(i + 1)", isStage: true)
            guard let out = stage.outPath else {
                throw .config(path: path + "#\(i + 1)", key: "out_path", reason: "every stage of a multi-document config needs `out_path`")
            }
            stage.renameModels { names[$0] ?? $0 }
            if let n = stage.name { names[n] = out }
            stages.append(stage)
        }
        return stages
    }

    /// Applies `rename` to every model reference (stage names to their output paths; a worker's own paths).
    public mutating func renameModels(_ rename: (String) -> String) {
        baseModel = baseModel.map(rename)
        models = models?.map { InputModel(model: rename($0.model), parameters: $0.parameters) }
        slices = slices?.map { s in
            OutputSlice(sources: s.sources.map { InputSlice(model: rename($0.model), layerRange: $0.layerRange, parameters: $0.parameters) },
                        baseModel: s.baseModel.map(rename), parameters: s.parameters)
        }
    }

    init(node: ConfigNode, text: String, path: String, isStage: Bool) throws(MergeError) {
        self.path = path
        sourceText = text
        let root = try ConfigMapping<MergeError>(node, path: path, keyPath: "")
        try root.rejectUnknown(Self.topLevelKeys + (isStage ? ["out_path", "name"] : []))
        outPath = try root.string("out_path")
        name = try root.string("name")
        guard let method = try root.string("merge_method") else {
            throw .config(path: path, key: "merge_method", reason: "missing; accepted: \(MergeMethods.all.map(\.name).sorted().joined(separator: ", "))")
        }
        mergeMethod = method
        baseModel = try Self.modelReference(root["base_model"], path: path, keyPath: "base_model")
        parameters = try ParameterSettings.decode(root["parameters"], path: path, keyPath: "parameters")
        dtype = try Self.dtype(root, "dtype")
        outDType = try Self.dtype(root, "out_dtype")
        chatTemplate = try root.string("chat_template")

        if let items = try root.sequence("models") {
            var models: [InputModel] = []
            for (i, item) in items.enumerated() {
                let m = try ConfigMapping<MergeError>(item, path: path, keyPath: "models[\(i)]")
                try m.rejectUnknown(["model", "parameters"])
                guard let ref = try Self.modelReference(m["model"], path: path, keyPath: m.child("model")) else {
                    throw .config(path: path, key: m.child("model"), reason: "missing; each entry of `models` needs `model: PATH`")
                }
                models.append(InputModel(model: ref, parameters: try ParameterSettings.decode(m["parameters"], path: path, keyPath: m.child("parameters"))))
            }
            self.models = models
        }
        if let items = try root.sequence("slices") {
            slices = try items.enumerated().map { (i, item) throws(MergeError) in try Self.outputSlice(item, path: path, keyPath: "slices[\(i)]") }
        }
        if root["modules"] != nil {
            let modules = try ConfigMapping<MergeError>(root["modules"]!, path: path, keyPath: "modules")
            guard modules.entries.count == 1 else {
                throw .config(path: path, key: "modules", reason: "Amalgam merges single-module (text) models; give exactly one module, or use `models`/`slices`")
            }
            let module = try ConfigMapping<MergeError>(modules.entries[0].value, path: path, keyPath: modules.child(modules.entries[0].key))
            try module.rejectUnknown(["slices", "models", "parameters"])
            if let items = try module.sequence("slices") {
                slices = try items.enumerated().map { (i, item) throws(MergeError) in try Self.outputSlice(item, path: path, keyPath: module.child("slices[\(i)]")) }
            }
            if let items = try module.sequence("models") {
                var models: [InputModel] = []
                for (i, item) in items.enumerated() {
                    let m = try ConfigMapping<MergeError>(item, path: path, keyPath: module.child("models[\(i)]"))
                    try m.rejectUnknown(["model", "parameters"])
                    guard let ref = try Self.modelReference(m["model"], path: path, keyPath: m.child("model")) else {
                        throw .config(path: path, key: m.child("model"), reason: "missing")
                    }
                    models.append(InputModel(model: ref, parameters: try ParameterSettings.decode(m["parameters"], path: path, keyPath: m.child("parameters"))))
                }
                self.models = models
            }
            if let p = try ParameterSettings.decode(module["parameters"], path: path, keyPath: module.child("parameters")) {
                parameters = (parameters ?? [:]).merging(p) { _, module in module }
            }
        }
        let forms = [models != nil, slices != nil].filter { $0 }.count
        guard forms == 1 else {
            throw .config(path: path, key: "models", reason: forms == 0 ? "give the inputs as `models:` or `slices:`" : "give either `models:` or `slices:`, not both")
        }
        if let models, models.isEmpty { throw .config(path: path, key: "models", reason: "the list is empty") }
        if let slices, slices.isEmpty { throw .config(path: path, key: "slices", reason: "the list is empty") }

        if root["tokenizer_source"] != nil && root["tokenizer"] != nil {
            throw .config(path: path, key: "tokenizer", reason: "give either `tokenizer_source` or `tokenizer`, not both")
        }
        if let node = root["tokenizer_source"] {
            tokenizer = TokenizerSettings(source: try Self.tokenizerSource(node, path: path, keyPath: "tokenizer_source"), tokens: [:], padToMultipleOf: nil)
        } else if let node = root["tokenizer"] {
            tokenizer = try Self.tokenizerSettings(node, path: path)
        }
        try validateAgainstMethod()
    }

    /// Every model the config names, base first if any, then in order of appearance, without repeats.
    public var referencedModels: [String] {
        var result: [String] = []
        func add(_ m: String?) { if let m, !result.contains(m) { result.append(m) } }
        add(baseModel)
        models?.forEach { add($0.model) }
        slices?.forEach { $0.sources.forEach { add($0.model) }; add($0.baseModel) }
        return result
    }

    private static func modelReference(_ node: ConfigNode?, path: String, keyPath: String) throws(MergeError) -> String? {
        guard let node else { return nil }
        if case let .mapping(entries) = node, let m = entries.first(where: { $0.key == "model" })?.value {
            // mergekit's long form `{model: {path: …}}` or `{model: PATH, lora: PATH}` (= `PATH+PATH`).
            let map = try ConfigMapping<MergeError>(node, path: path, keyPath: keyPath)
            try map.rejectUnknown(["model", "lora"])
            let model = try modelReference(m, path: path, keyPath: keyPath + ".model")
            guard let lora = map["lora"] else { return model }
            guard let adapter = try modelReference(lora, path: path, keyPath: keyPath + ".lora"), let model else {
                throw .config(path: path, key: keyPath + ".lora", reason: "expected an adapter path or Hugging Face name")
            }
            return LoRAReference.join(model: model, adapter: adapter)
        }
        if case let .mapping(entries) = node, let p = entries.first(where: { $0.key == "path" })?.value, let s = p.scalarText {
            return entries.first(where: { $0.key == "revision" })?.value.scalarText.map { s + "@" + $0 } ?? s
        }
        guard let s = node.scalarText, !s.isEmpty else { throw .config(path: path, key: keyPath, reason: "expected a model path") }
        return s
    }

    private static func dtype(_ map: ConfigMapping<MergeError>, _ key: String) throws(MergeError) -> DType? {
        guard let name = try map.string(key) else { return nil }
        guard let d = DType(torchName: name), [.bf16, .f16, .f32].contains(d) else {
            throw .config(path: map.path, key: key, reason: "'\(name)' is not accepted; use bfloat16, float16 or float32")
        }
        return d
    }

    private static func outputSlice(_ node: ConfigNode, path: String, keyPath: String) throws(MergeError) -> OutputSlice {
        let map = try ConfigMapping<MergeError>(node, path: path, keyPath: keyPath)
        try map.rejectUnknown(["sources", "base_model", "residual_weight", "parameters"])
        if map["residual_weight"] != nil {
            throw .config(path: path, key: map.child("residual_weight"), reason: "not supported (mergekit ignores it too)")
        }
        guard let items = try map.sequence("sources"), !items.isEmpty else {
            throw .config(path: path, key: map.child("sources"), reason: "missing or empty; a slice needs at least one source")
        }
        var sources: [InputSlice] = []
        for (i, item) in items.enumerated() {
            let s = try ConfigMapping<MergeError>(item, path: path, keyPath: map.child("sources[\(i)]"))
            try s.rejectUnknown(["model", "layer_range", "parameters"])
            guard let model = try modelReference(s["model"], path: path, keyPath: s.child("model")) else {
                throw .config(path: path, key: s.child("model"), reason: "missing")
            }
            guard let range = try s.sequence("layer_range"), range.count == 2,
                  let a = range[0].number.flatMap({ Int(exactly: $0) }), let b = range[1].number.flatMap({ Int(exactly: $0) }), a >= 0, b > a else {
                throw .config(path: path, key: s.child("layer_range"), reason: "expected [start, end] with 0 ≤ start < end, whole numbers")
            }
            sources.append(InputSlice(model: model, layerRange: a..<b,
                                      parameters: try ParameterSettings.decode(s["parameters"], path: path, keyPath: s.child("parameters"))))
        }
        let lengths = Set(sources.map(\.layerRange.count))
        guard lengths.count == 1 else {
            throw .config(path: path, key: map.child("sources"), reason: "all sources of a slice must have the same number of layers (got \(sources.map(\.layerRange.count)))")
        }
        return OutputSlice(sources: sources, baseModel: try modelReference(map["base_model"], path: path, keyPath: map.child("base_model")),
                           parameters: try ParameterSettings.decode(map["parameters"], path: path, keyPath: map.child("parameters")))
    }

    private static func tokenizerSource(_ node: ConfigNode, path: String, keyPath: String) throws(MergeError) -> TokenizerSource {
        guard let s = node.scalarText else {
            return .model(try modelReference(node, path: path, keyPath: keyPath) ?? "")
        }
        switch s {
        case "base": return .base
        case "union": return .union
        default: return .model(s)
        }
    }

    private static func tokenizerSettings(_ node: ConfigNode, path: String) throws(MergeError) -> TokenizerSettings {
        let map = try ConfigMapping<MergeError>(node, path: path, keyPath: "tokenizer")
        try map.rejectUnknown(["source", "tokens", "pad_to_multiple_of"])
        let source = try map["source"].map { n throws(MergeError) in try tokenizerSource(n, path: path, keyPath: "tokenizer.source") } ?? .union
        var tokens: [String: TokenEmbedding] = [:]
        if let t = map["tokens"] {
            let tm = try ConfigMapping<MergeError>(t, path: path, keyPath: "tokenizer.tokens")
            for (tok, cfg) in tm.entries {
                let c = try ConfigMapping<MergeError>(cfg, path: path, keyPath: tm.child(tok))
                try c.rejectUnknown(["source", "force"])
                let force = c["force"]?.bool ?? false
                guard let src = c["source"] else { tokens[tok] = .automatic; continue }
                if let s = src.scalarText {
                    tokens[tok] = .model(s, force: force)
                } else {
                    let sm = try ConfigMapping<MergeError>(src, path: path, keyPath: c.child("source"))
                    try sm.rejectUnknown(["kind", "model", "token_id", "token"])
                    let kind = try sm.string("kind")
                    if kind == "zero" {
                        tokens[tok] = .zero
                    } else if kind == nil {
                        guard let model = try sm.string("model") else { throw .config(path: path, key: sm.child("model"), reason: "missing") }
                        tokens[tok] = .model(model, force: force)
                    } else if kind != "model_token" {
                        throw .config(path: path, key: sm.child("kind"), reason: "'\(kind!)' is not accepted; use zero or model_token")
                    } else {
                        guard let model = try sm.string("model") else { throw .config(path: path, key: sm.child("model"), reason: "missing") }
                        let id = try sm.int("token_id")
                        let name = try sm.string("token")
                        guard (id == nil) != (name == nil) else { throw .config(path: path, key: sm.child("token_id"), reason: "give exactly one of token_id or token") }
                        tokens[tok] = .modelToken(model, tokenId: id, token: name, force: force)
                    }
                }
            }
        }
        return TokenizerSettings(source: source, tokens: tokens, padToMultipleOf: try map.int("pad_to_multiple_of"))
    }

    /// Checks the method exists and every parameter it declares is of the right kind where the config
    /// sets it; a parameter it does not declare is ignored, as mergekit ignores it, with a warning.
    private mutating func validateAgainstMethod() throws(MergeError) {
        guard let method = MergeMethods.named(mergeMethod) else {
            throw .config(path: path, key: "merge_method", reason: "unknown method '\(mergeMethod)'; accepted: \(MergeMethods.all.map(\.name).sorted().joined(separator: ", "))")
        }
        let specs = method.globalParameters + method.perModelParameters
        var ignored: [(name: String, keyPaths: [String])] = []
        func check(_ settings: ParameterSettings?, _ keyPath: String, allowed: [ParameterSpec]) throws(MergeError) {
            guard let settings else { return }
            for name in settings.keys.sorted() {
                let setting = settings[name]!
                guard let spec = allowed.first(where: { $0.name == name }) ?? specs.first(where: { $0.name == name }) else {
                    if let i = ignored.firstIndex(where: { $0.name == name }) { ignored[i].keyPaths.append(keyPath + "." + name) }
                    else { ignored.append((name, [keyPath + "." + name])) }
                    continue
                }
                for s in setting.scalars where ParameterSetting.validate(s, kind: spec.kind) == nil {
                    throw .config(path: path, key: keyPath + "." + name, reason: "\(s) is not a valid \(spec.kind)")
                }
            }
        }
        try check(parameters, "parameters", allowed: specs)
        for (i, m) in (models ?? []).enumerated() { try check(m.parameters, "models[\(i)].parameters", allowed: specs) }
        for (i, s) in (slices ?? []).enumerated() {
            try check(s.parameters, "slices[\(i)].parameters", allowed: specs)
            for (j, src) in s.sources.enumerated() { try check(src.parameters, "slices[\(i)].sources[\(j)].parameters", allowed: specs) }
        }
        let accepted = specs.isEmpty ? "none" : specs.map(\.name).joined(separator: ", ")
        warnings += ignored.map { entry in
            let more = entry.keyPaths.count > 1 ? " (and \(entry.keyPaths.count - 1) more place\(entry.keyPaths.count > 2 ? "s" : ""))" : ""
            return "\(path): \(entry.keyPaths[0])\(more): '\(mergeMethod)' has no parameter '\(entry.name)'; ignored, as mergekit ignores it (parameters of '\(mergeMethod)': \(accepted))"
        }
        if method.requiresBase && baseModel == nil && (slices == nil || slices!.contains(where: { $0.baseModel == nil })) {
            throw .config(path: path, key: "base_model", reason: "'\(mergeMethod)' needs a base_model")
        }
    }
}

extension ParameterSpec {
    /// The kind of value this parameter takes, read from its default (numbers when required).
    public var kind: ParameterSetting.Kind {
        switch defaultValue {
        case .bool?: return .bool
        case .string?: return .string
        default: return .number
        }
    }
}
