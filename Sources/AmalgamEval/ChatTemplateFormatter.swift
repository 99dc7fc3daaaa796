import AmalgamCore
import AmalgamTokenizer

/// A model's chat template as a `PromptFormatter`: the task's prompt becomes one user turn (after an
/// optional system message), rendered with the generation prompt, as lm-evaluation-harness's
/// `--apply_chat_template` renders it. The rendered text is tokenized without added special tokens: the
/// template writes them.
public struct ChatTemplateFormatter: PromptFormatter {
    public let template: ChatTemplate
    /// Variables every render sees besides the messages (`bos_token`, `eos_token`, …).
    public let variables: [String: JSONValue]
    /// A system message put before each user turn, if any.
    public let system: String?

    public init(template: ChatTemplate, variables: [String: JSONValue] = [:], system: String? = nil) {
        self.template = template
        self.variables = variables
        self.system = system
    }

    public func userTurn(_ text: String) throws -> String {
        var messages: [ChatMessage] = []
        if let system { messages.append(ChatMessage(role: "system", content: system)) }
        messages.append(ChatMessage(role: "user", content: text))
        return try template.render(messages, addGenerationPrompt: true, variables: variables)
    }
}
