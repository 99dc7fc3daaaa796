import AmalgamCore
import Foundation

/// A PEFT LoRA adapter folder (`adapter_config.json` + `adapter_model.safetensors`) as PEFT's
/// `merge_and_unload` reads it: per module a low-rank update W' = W + s·B·A with s = alpha/r (alpha/√r
/// with rslora), r and alpha looked up in `rank_pattern`/`alpha_pattern`, and whole tensors
/// (`modules_to_save`, an embedding's `base_layer`) that replace the base's before the updates are added.
public struct LoRAAdapter: Sendable {
    /// One module's low-rank update, keyed by the base tensor it changes (`<module>.weight`).
    public struct Update: Sendable {
        /// The module's name in the base model (`model.layers.0.self_attn.q_proj`).
        public let module: String
        /// Adapter tensor A: [r, in] (`lora_A.weight`) or [r, vocab] (`lora_embedding_A`).
        public let a: String
        /// Adapter tensor B: [out, r] (`lora_B.weight`) or [hidden, r] (`lora_embedding_B`).
        public let b: String
        /// `lora_B.bias` (added to `<module>.bias` only when the config sets `lora_bias`).
        public let bias: String?
        /// An embedding: the update is (B·A)ᵀ, as the weight is [vocab, hidden].
        public let isEmbedding: Bool
        /// The rank r this module was given (global `r` or its `rank_pattern` entry).
        public let rank: Int
        /// s = alpha/r, or alpha/√r with `use_rslora`.
        public let scale: Double
    }

    /// The folder.
    public let path: String
    public let configPath: String
    public let weightsPath: String
    /// `fan_in_fan_out`: the base stores linear weights as [in, out] (GPT-2's Conv1D), so the update is (B·A)ᵀ.
    public let fanInFanOut: Bool
    /// Low-rank updates by the base tensor name they change (`….q_proj.weight`).
    public let updates: [String: Update]
    /// Bias updates (`lora_bias: true`) by base tensor name (`….q_proj.bias`) → the adapter's `lora_B.bias` tensor.
    public let biasUpdates: [String: String]
    /// Whole tensors that replace the base's: base tensor name → adapter tensor name.
    public let replacements: [String: String]
    /// The adapter's tensors.
    public let tensors: SafetensorsFile

    static let prefix = "base_model.model."

    /// Reads and checks an adapter folder (the config's keys and every tensor's name and rank); shapes are
    /// checked against a base by `LoRATensorSource`.
    public init(folder: String) throws(LoRAError) {
        path = folder
        configPath = folder + "/adapter_config.json"
        weightsPath = folder + "/adapter_model.safetensors"
        let fm = FileManager.default
        guard fm.fileExists(atPath: configPath) else { throw .missingFile(folder: folder, file: "adapter_config.json", hint: "") }
        guard fm.fileExists(atPath: weightsPath) else {
            let legacy = fm.fileExists(atPath: folder + "/adapter_model.bin")
            throw .missingFile(folder: folder, file: "adapter_model.safetensors",
                               hint: legacy ? "it has the pickled adapter_model.bin, which Amalgam does not read: re-save it with PeftModel.save_pretrained(dir, safe_serialization=True)" : "")
        }
        let config = try ConfigMapping<LoRAError>.readJSON(configPath)
        let settings = try Settings(config)
        fanInFanOut = settings.fanInFanOut
        do { tensors = try SafetensorsFile(path: weightsPath) } catch {
            throw .unexpectedTensor(path: weightsPath, tensor: "(file)", reason: error.description)
        }

        var updates: [String: Update] = [:]
        var biasUpdates: [String: String] = [:]
        var replacements: [String: String] = [:]
        var seen = Set<String>()
        for info in tensors.tensorInfos {
            let key = info.name
            guard key.hasPrefix(Self.prefix) else {
                throw .unexpectedTensor(path: weightsPath, tensor: key, reason: "PEFT adapter tensors start with '\(Self.prefix)'; is this a PEFT LoRA adapter?")
            }
            let name = String(key.dropFirst(Self.prefix.count))
            if name.hasSuffix(".lora_magnitude_vector") {
                throw .unsupported(path: weightsPath, key: key, reason: "a DoRA magnitude vector; Amalgam applies plain LoRA only: merge this adapter with PEFT (merge_and_unload) first")
            }
            if let module = name.strip(suffix: ".lora_A.weight") ?? name.strip(suffix: ".lora_embedding_A") {
                let embedding = name.hasSuffix(".lora_embedding_A")
                let bName = Self.prefix + module + (embedding ? ".lora_embedding_B" : ".lora_B.weight")
                guard let bInfo = tensors.info(bName) else {
                    throw .unexpectedTensor(path: weightsPath, tensor: key, reason: "no matching '\(bName)'; the adapter file is incomplete")
                }
                let rank = settings.rank(for: module)
                guard info.shape.count == 2, bInfo.shape.count == 2, info.shape[0] == rank, bInfo.shape[1] == rank else {
                    throw .shapeMismatch(path: weightsPath, tensor: key,
                                         reason: "A is \(info.shape) and B \(bInfo.shape), but adapter_config.json gives '\(module)' rank \(rank) (r, rank_pattern)")
                }
                let alpha = settings.alpha(for: module)
                let scale = settings.useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)
                let biasName = Self.prefix + module + ".lora_B.bias"
                let bias = settings.loraBias && tensors.info(biasName) != nil ? biasName : nil
                updates[module + ".weight"] = Update(module: module, a: key, b: bName, bias: bias, isEmbedding: embedding, rank: rank, scale: scale)
                if let bias { biasUpdates[module + ".bias"] = bias; seen.insert(bias) }
                seen.formUnion([key, bName])
            } else if name.hasSuffix(".lora_B.weight") || name.hasSuffix(".lora_embedding_B") || name.hasSuffix(".lora_B.bias") {
                continue  // paired with its A above; a B without an A is caught below
            } else if let module = name.strip(suffix: ".base_layer.weight") {
                replacements[module + ".weight"] = key
                seen.insert(key)
            } else if let module = name.strip(suffix: ".weight") ?? name.strip(suffix: ".bias"),
                      settings.modulesToSave.contains(where: { $0 == module || module.hasSuffix("." + $0) }) {
                replacements[name] = key
                seen.insert(key)
            } else {
                throw .unexpectedTensor(path: weightsPath, tensor: key,
                                        reason: "not a LoRA tensor (lora_A/lora_B, lora_embedding_A/B), a base_layer or a module in modules_to_save \(settings.modulesToSave)")
            }
        }
        for info in tensors.tensorInfos where !seen.contains(info.name) {
            if info.name.hasSuffix(".lora_B.bias") && !settings.loraBias { continue }  // PEFT ignores it without lora_bias
            throw .unexpectedTensor(path: weightsPath, tensor: info.name, reason: "a LoRA B without its A; the adapter file is incomplete")
        }
        if updates.isEmpty && replacements.isEmpty {
            throw .unexpectedTensor(path: weightsPath, tensor: "(file)", reason: "holds no LoRA update and no saved module; nothing to apply")
        }
        self.updates = updates
        self.biasUpdates = biasUpdates
        self.replacements = replacements
    }

    /// The config keys that decide the arithmetic, decoded and checked.
    struct Settings {
        var rank: Int
        var alpha: Double
        var useRSLoRA: Bool
        var fanInFanOut: Bool
        var loraBias: Bool
        var rankPattern: [(pattern: String, regex: ScalarRegex, value: Int)] = []
        var alphaPattern: [(pattern: String, regex: ScalarRegex, value: Double)] = []
        var modulesToSave: [String]

        /// Reads the keys PEFT's arithmetic depends on; every other key of `adapter_config.json` passes.
        init(_ c: ConfigMapping<LoRAError>) throws(LoRAError) {
            let path = c.path
            let type = try c.string("peft_type") ?? "LORA"
            guard type == "LORA" else {
                throw .unsupported(path: path, key: "peft_type", reason: "'\(type)' adapters are not read; Amalgam applies LORA adapters")
            }
            if try c.bool("use_dora") == true {
                throw .unsupported(path: path, key: "use_dora", reason: "DoRA adapters are not applied (the magnitude re-normalisation is not implemented); merge it with PEFT (merge_and_unload) and give the merged model")
            }
            for key in ["layer_replication", "trainable_token_indices", "target_parameters", "use_qalora", "use_bdlora"] {
                guard let v = c[key] else { continue }
                let unset: Bool
                switch v {
                case .scalar(_, .bool): unset = v.bool == false
                case let .sequence(items): unset = items.isEmpty
                case let .mapping(entries): unset = entries.isEmpty
                default: unset = false
                }
                if !unset {
                    throw .unsupported(path: path, key: key, reason: "set, which Amalgam's LoRA reader does not apply; merge this adapter with PEFT (merge_and_unload) first")
                }
            }
            rank = try c.require("r", "the rank, an integer ≥ 1").int(minimum: 1)
            alpha = try c.require("lora_alpha", "a number; the scale is lora_alpha / r").double()
            useRSLoRA = try c.bool("use_rslora") ?? false
            fanInFanOut = try c.bool("fan_in_fan_out") ?? false
            loraBias = try c.bool("lora_bias") ?? false
            modulesToSave = try c.strings("modules_to_save") ?? []
            for (k, v) in try c.value("rank_pattern")?.mapping().entries ?? [] {
                let n = try ConfigValue<LoRAError>(v, path: path, keyPath: "rank_pattern." + k, syntax: .json).int(minimum: 1)
                rankPattern.append((k, try Self.regex(k, path: path, key: "rank_pattern"), n))
            }
            for (k, v) in try c.value("alpha_pattern")?.mapping().entries ?? [] {
                let n = try ConfigValue<LoRAError>(v, path: path, keyPath: "alpha_pattern." + k, syntax: .json).double()
                alphaPattern.append((k, try Self.regex(k, path: path, key: "alpha_pattern"), n))
            }
        }

        /// PEFT's pattern lookup: the first key K (in file order) for which the module name matches
        /// `(.*\.)?(K)$` from its start (Python's `re.match`), run on Amalgam's bounded regex engine so that
        /// no adapter file can make the lookup take exponential time.
        static func regex(_ key: String, path: String, key field: String) throws(LoRAError) -> ScalarRegex {
            do { return try ScalarRegex("^(.*\\.)?(" + key + ")$", dialect: .python) } catch {
                throw .invalidConfig(path: path, key: field + "." + key, reason: "not a regular expression Amalgam runs: \(error)")
            }
        }

        static func matches(_ regex: ScalarRegex, _ module: String) -> Bool { regex.isFound(in: module) }

        func rank(for module: String) -> Int { rankPattern.first { Self.matches($0.regex, module) }?.value ?? rank }
        func alpha(for module: String) -> Double { alphaPattern.first { Self.matches($0.regex, module) }?.value ?? alpha }
    }
}


fileprivate extension String {
    /// The string without `suffix`, or nil when it does not end with it.
    func strip(suffix: String) -> String? { hasSuffix(suffix) ? String(dropLast(suffix.count)) : nil }
}
