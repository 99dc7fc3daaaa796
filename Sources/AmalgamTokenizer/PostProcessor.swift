/// The stage after the model: adds the special tokens a model expects around its input (`post_processor`).
protocol PostProcessor: Sendable {
    func process(_ ids: [Int]) -> [Int]
}

/// Builds the post-processor named by a `post_processor` node's `type`.
func makePostProcessor(_ node: JSONNode) throws(TokenizerError) -> any PostProcessor {
    let type = try node.string("type")
    switch type {
    case "TemplateProcessing": return try TemplateProcessing(node)
    case "ByteLevel": return NoPostProcessing()  // it only moves offsets, which Amalgam does not report
    case "RobertaProcessing", "BertProcessing":
        func pair(_ key: String) throws(TokenizerError) -> Int {
            let items = try node.array(key)
            guard items.count == 2, let id = items[1].value.intValue else {
                throw node.invalid("`\(key)` must be [token, id]")
            }
            return id
        }
        return SurroundProcessing(prefix: [try pair("cls")], suffix: [try pair("sep")])
    case "Sequence":
        return PostProcessorSequence(stages: try node.array("processors").map { (n) throws(TokenizerError) in try makePostProcessor(n) })
    default:
        throw node.unsupported(type, supported: ["TemplateProcessing", "ByteLevel", "RobertaProcessing", "BertProcessing", "Sequence"])
    }
}

/// Leaves the ids as they are.
struct NoPostProcessing: PostProcessor {
    func process(_ ids: [Int]) -> [Int] { ids }
}

/// Fixed ids before and after the sequence.
struct SurroundProcessing: PostProcessor {
    let prefix: [Int]
    let suffix: [Int]
    func process(_ ids: [Int]) -> [Int] { prefix + ids + suffix }
}

/// The `single` template: special tokens around the sequence `A` (pairs are not encoded by Amalgam).
struct TemplateProcessing: PostProcessor {
    let prefix: [Int]
    let suffix: [Int]

    init(_ node: JSONNode) throws(TokenizerError) {
        let specials = try node.required("special_tokens")
        var prefix: [Int] = [], suffix: [Int] = []
        var seenSequence = false
        for item in try node.array("single") {
            if let special = item.optional("SpecialToken") {
                let name = try special.string("id")
                guard let entry = specials.optional(name) else {
                    throw .missingKey(path: node.file, key: specials.key(name))
                }
                let ids = try entry.array("ids").map { (n) throws(TokenizerError) -> Int in
                    guard let id = n.value.intValue else { throw n.invalid("expected an integer id") }
                    return id
                }
                if seenSequence { suffix += ids } else { prefix += ids }
            } else if let sequence = item.optional("Sequence") {
                guard try sequence.string("id") == "A", !seenSequence else {
                    throw item.invalid("a single-sequence template holds the sequence A once")
                }
                seenSequence = true
            } else {
                throw item.invalid("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}")
            }
        }
        self.prefix = prefix
        self.suffix = suffix
    }

    func process(_ ids: [Int]) -> [Int] { prefix + ids + suffix }
}

/// Post-processors applied in order.
struct PostProcessorSequence: PostProcessor {
    let stages: [any PostProcessor]
    func process(_ ids: [Int]) -> [Int] { stages.reduce(ids) { $1.process($0) } }
}
