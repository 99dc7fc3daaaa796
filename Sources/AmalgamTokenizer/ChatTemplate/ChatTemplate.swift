import AmalgamCore
import AmalgamJinja

/// A Hugging Face chat template (Jinja2 source from `tokenizer_config.json` or GGUF metadata), compiled
/// once and rendered as transformers' `apply_chat_template(messages, tokenize=False, …)` renders it:
/// jinja2's sandbox with `trim_blocks` and `lstrip_blocks`, `raise_exception`, `strftime_now`,
/// `namespace`, and a `tojson` that keeps non-ASCII text.
public struct ChatTemplate: @unchecked Sendable {
    /// The template's source text.
    public let source: String
    /// Where the template came from, for messages (e.g. `tokenizer_config.json: chat_template`).
    public let origin: String
    private let compiled: JinjaTemplate

    /// Compiles a template; throws a syntax error naming the template line, or an unsupported
    /// construct (a tag the interpreter does not implement).
    public init(source: String, origin: String = "chat template") throws(ChatTemplateError) {
        self.source = source
        self.origin = origin
        compiled = try JinjaTemplate(source: source, origin: origin)
    }

    /// The prompt text for `messages` (each a JSON object: `role`, `content`, maybe `tool_calls`, …).
    /// `variables` are the other names the template sees: `bos_token`, `eos_token`, `tools`,
    /// `enable_thinking`, …; `tools` and `documents` are `none` unless given, as in transformers.
    public func render(messages: [JSONValue], addGenerationPrompt: Bool, variables: [String: JSONValue] = [:]) throws(ChatTemplateError) -> String {
        var globals: [String: JSONValue] = ["tools": .null, "documents": .null]
        for (k, v) in variables { globals[k] = v }
        globals["messages"] = .array(messages.map(ChatTemplate.aliasingReasoning))
        globals["add_generation_prompt"] = .bool(addGenerationPrompt)
        return try compiled.render(variables: globals)
    }

    /// The prompt for a simple conversation of (role, content) messages.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool, variables: [String: JSONValue] = [:]) throws(ChatTemplateError) -> String {
        try render(messages: messages.map(\.json), addGenerationPrompt: addGenerationPrompt, variables: variables)
    }

    /// As transformers does: a message's reasoning given as `reasoning_content`, `thinking` or `reasoning`
    /// is also readable as `thinking` (first) and `reasoning_content` (last).
    static func aliasingReasoning(_ message: JSONValue) -> JSONValue {
        guard case let .object(o) = message else { return message }
        guard let reasoning = ["reasoning_content", "thinking", "reasoning"].lazy.compactMap({ o[$0] }).first(where: { !$0.isNull }) else {
            return message
        }
        var out = JSONObject([("thinking", reasoning)])
        for (k, v) in o where k != "reasoning_content" { out[k] = v }
        out["reasoning_content"] = reasoning
        return .object(out)
    }
}

/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    var json: JSONValue { .object(JSONObject([("role", .string(role)), ("content", .string(content))])) }
}
