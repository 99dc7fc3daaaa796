import AmalgamCore
import Foundation

/// A user's text rendered with a model's chat template, as transformers'
/// `apply_chat_template([system?, user], add_generation_prompt=True, tokenize=False)` renders it: the one
/// way `amalgam generate --chat` and `amalgam eval`'s chat tasks build a prompt.
public struct ChatPrompt: Sendable {
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

    /// The template `choice` names among a model's `templates` (`nil`: its default; the path of an existing
    /// file: that Jinja file; else the name of one of its templates), rendered with the special tokens of
    /// `tokenizer` as variables. `modelPath` names the model in errors.
    public init(templates: ChatTemplateSet, choice: String?, tokenizer: TokenizerConfig, system: String?, modelPath: String) throws {
        let template: ChatTemplate
        if let choice, FileManager.default.fileExists(atPath: choice) {
            let source: String
            do { source = try String(contentsOfFile: choice, encoding: .utf8) } catch {
                throw ChatTemplateError(.runtime, origin: choice, line: 0, "cannot read the chat template file (\(error.localizedDescription)); check its permissions and that it is UTF-8")
            }
            template = try ChatTemplate(source: source, origin: choice)
        } else {
            template = try templates.template(named: choice, modelPath: modelPath)
        }
        self.init(template: template, variables: tokenizer.templateVariables, system: system)
    }

    /// The prompt text for one user turn (after the system message, if any), ending with the generation prompt.
    public func render(user text: String) throws(ChatTemplateError) -> String {
        var messages: [ChatMessage] = []
        if let system { messages.append(ChatMessage(role: "system", content: system)) }
        messages.append(ChatMessage(role: "user", content: text))
        return try template.render(messages, addGenerationPrompt: true, variables: variables)
    }
}

extension TokenizerConfig {
    /// The names and values every chat template sees besides the messages, as transformers passes them:
    /// the special tokens' text (`bos_token`, `eos_token`, `unk_token`, `pad_token`) when the tokenizer has them.
    public var templateVariables: [String: JSONValue] {
        var v: [String: JSONValue] = [:]
        for (name, token) in [("bos_token", bosToken), ("eos_token", eosToken), ("unk_token", unkToken), ("pad_token", padToken)] {
            if let token { v[name] = .string(token) }
        }
        return v
    }
}
