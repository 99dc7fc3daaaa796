import AmalgamCore

extension CheckpointSummary {
    /// llama.cpp's `llama_ftype` names for `general.file_type`.
    static let ggufFileTypes: [Int: String] = [
        0: "ALL_F32", 1: "MOSTLY_F16", 2: "MOSTLY_Q4_0", 3: "MOSTLY_Q4_1", 7: "MOSTLY_Q8_0", 8: "MOSTLY_Q5_0",
        9: "MOSTLY_Q5_1", 10: "MOSTLY_Q2_K", 11: "MOSTLY_Q3_K_S", 12: "MOSTLY_Q3_K_M", 13: "MOSTLY_Q3_K_L",
        14: "MOSTLY_Q4_K_S", 15: "MOSTLY_Q4_K_M", 16: "MOSTLY_Q5_K_S", 17: "MOSTLY_Q5_K_M", 18: "MOSTLY_Q6_K",
        32: "MOSTLY_BF16",
    ]

    /// Summarises a `.gguf` file: metadata highlights, tensor types with counts, stored sizes.
    public init(ggufPath path: String) throws(CheckpointError) {
        let file = try GGUFFile(path: path)
        let arch = file["general.architecture"]?.stringValue
        let prefix = arch.map { $0 + "." } ?? ""
        var facts: [(String, String)] = [("gguf version", "\(file.version)")]
        func add(_ label: String, _ key: String) {
            if let v = file[key] { facts.append((label, v.summary)) }
        }
        add("name", "general.name")
        add("context length", prefix + "context_length")
        add("embedding length", prefix + "embedding_length")
        add("feed-forward length", prefix + "feed_forward_length")
        add("attention heads", prefix + "attention.head_count")
        add("key/value heads", prefix + "attention.head_count_kv")
        add("rope freq base", prefix + "rope.freq_base")
        if let tokens = file["tokenizer.ggml.tokens"]?.arrayValue {
            facts.append(("vocab", "\(tokens.count) tokens (\(file["tokenizer.ggml.model"]?.stringValue ?? "?"), pre \(file["tokenizer.ggml.pre"]?.stringValue ?? "default"))"))
        } else {
            add("vocab", prefix + "vocab_size")
        }
        if let ft = file["general.file_type"]?.intValue {
            facts.append(("file type", "\(Self.ggufFileTypes[ft] ?? "unknown") (\(ft))"))
        }
        facts.append(("alignment", "\(file.alignment)"))
        facts.append(("metadata keys", "\(file.metadata.count)"))
        self.init(path: path, format: .gguf, architecture: arch, modelType: arch,
                  layerCount: file[prefix + "block_count"]?.intValue,
                  tensors: file.tensors.map { ($0.name, $0.type.name, $0.shape, $0.byteCount) }, facts: facts)
    }
}
