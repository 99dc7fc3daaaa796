import AmalgamCore
import AmalgamTokenizer

/// A model's chat template as a `PromptFormatter`: the task's prompt becomes one user turn (after an
/// optional system message), rendered with the generation prompt, as lm-evaluation-harness's
/// `--apply_chat_template` renders it. The rendered text is tokenized without added special tokens: the
/// template writes them.
public struct ChatTemplateFormatter: PromptFormatter {
    public let prompt: ChatPrompt

    public init(_ prompt: ChatPrompt) {
        self.prompt = prompt
    }

    public init(template: ChatTemplate, variables: [String: JSONValue] = [:], system: String? = nil) {
        self.init(ChatPrompt(template: template, variables: variables, system: system))
    }

    public func userTurn(_ text: String) throws -> String {
        try prompt.render(user: text)
    }
}
