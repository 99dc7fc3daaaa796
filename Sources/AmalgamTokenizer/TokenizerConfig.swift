import AmalgamCore

/// What `tokenizer_config.json` adds to `tokenizer.json`: the names of the special tokens and the chat
/// template (a Jinja string, kept as text).
public struct TokenizerConfig: Sendable, Equatable {
    public var bosToken: String?
    public var eosToken: String?
    public var unkToken: String?
    public var padToken: String?
    /// Whether transformers' slow Llama tokenizers would add BOS/EOS (informative; the post-processor decides).
    public var addBosToken: Bool?
    public var addEosToken: Bool?
    /// The default chat template, if any.
    public var chatTemplate: String?

    public init() {}

    init(_ node: JSONNode) throws(TokenizerError) {
        func token(_ key: String) throws(TokenizerError) -> String? {
            guard let n = node.optional(key) else { return nil }
            if let s = n.value.stringValue { return s }
            if let c = n.value["content"]?.stringValue { return c }  // the serialized AddedToken form
            throw n.invalid("expected a string or an object with `content`")
        }
        bosToken = try token("bos_token")
        eosToken = try token("eos_token")
        unkToken = try token("unk_token")
        padToken = try token("pad_token")
        addBosToken = node.optional("add_bos_token")?.value.boolValue
        addEosToken = node.optional("add_eos_token")?.value.boolValue
        if let t = node.optional("chat_template") {
            if let s = t.value.stringValue {
                chatTemplate = s
            } else if let list = t.value.arrayValue {
                // Several named templates: the one called "default".
                chatTemplate = list.first { $0["name"]?.stringValue == "default" }?["template"]?.stringValue
            } else {
                throw t.invalid("expected a string or a list of {name, template}")
            }
        }
    }
}
