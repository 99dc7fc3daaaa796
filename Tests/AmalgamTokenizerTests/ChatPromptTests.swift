import AmalgamCore
import AmalgamTokenizer
import Foundation
import Testing

/// `ChatPrompt`, what `amalgam generate --chat` and `amalgam eval`'s chat tasks render: the template a
/// `--chat-template` value names (the model's default, a named one, a file) with the tokenizer's special
/// tokens as variables, checked against transformers' rendering (fixtures/chat-templates/smollm2.json).
@Suite struct ChatPromptTests {
    /// SmolLM2's template and transformers' rendering of [system?, user] with the generation prompt.
    func smolLM2() throws -> (template: String, cases: [(system: String?, user: String, expected: String)]) {
        let fixture = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: chatTemplateFixtures + "/smollm2.json"))))
        var cases: [(String?, String, String)] = []
        for c in try #require(fixture["cases"]?.arrayValue) where c["add_generation_prompt"]?.boolValue == true {
            let messages = try #require(c["messages"]?.arrayValue)
            guard let expected = c["expected"]?.stringValue, messages.count <= 2, messages.last?["role"]?.stringValue == "user" else { continue }
            #expect(c["variables"] == .object(JSONObject([("bos_token", .string("<s>")), ("eos_token", .string("</s>"))])))
            cases.append((messages.count == 2 ? messages[0]["content"]?.stringValue : nil, try #require(messages.last?["content"]?.stringValue), expected))
        }
        #expect(cases.count == 2)
        return (try #require(fixture["template"]?.stringValue), cases)
    }

    /// A model's companion texts whose tokenizer_config.json lists SmolLM2's template as "default" and a
    /// second one as "plain", with the fixture's special tokens.
    func companionTexts(_ template: String) -> [String: String] {
        let config = JSONValue.object(JSONObject([
            ("bos_token", .string("<s>")),
            ("eos_token", .object(JSONObject([("content", .string("</s>")), ("special", .bool(true))]))),
            ("chat_template", .array([
                .object(JSONObject([("name", .string("default")), ("template", .string(template))])),
                .object(JSONObject([("name", .string("plain")), ("template", .string("{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{{ eos_token }}"))])),
            ])),
        ]))
        return ["tokenizer_config.json": config.compactText()]
    }

    @Test func theModelsDefaultTemplateRendersAsTransformers() throws {
        let (template, cases) = try smolLM2()
        let texts = companionTexts(template)
        let config = try TokenizerConfig(json: try JSONValue.parse(texts["tokenizer_config.json"]!), path: "tokenizer_config.json")
        #expect(config.templateVariables == ["bos_token": .string("<s>"), "eos_token": .string("</s>")])
        let templates = try ChatTemplateSet(texts: texts, origin: "model/")
        for c in cases {
            let prompt = try ChatPrompt(templates: templates, choice: nil, tokenizer: config, system: c.system, modelPath: "model")
            #expect(try prompt.render(user: c.user) == c.expected)
        }
    }

    @Test func aNamedTemplateAndAFileAreChosenByTheirName() throws {
        let (template, _) = try smolLM2()
        let templates = try ChatTemplateSet(texts: companionTexts(template), origin: "model/")
        var config = TokenizerConfig()
        config.bosToken = "<s>"
        config.eosToken = "</s>"
        let named = try ChatPrompt(templates: templates, choice: "plain", tokenizer: config, system: "Be brief.", modelPath: "model")
        #expect(try named.render(user: "Hi") == "<s>system: Be brief.\nuser: Hi\n</s>")
        #expect(named.template.origin == "model/tokenizer_config.json: chat_template[1] (plain)")

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("amalgam-chat-prompt-\(getpid()).jinja").path
        try "[{{ messages[-1].content }}]{% if add_generation_prompt %}>{% endif %}".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let fromFile = try ChatPrompt(templates: templates, choice: file, tokenizer: config, system: nil, modelPath: "model")
        #expect(try fromFile.render(user: "Hi") == "[Hi]>")
    }

    @Test func anUnknownNameListsTheModelsTemplates() throws {
        let templates = try ChatTemplateSet(texts: companionTexts("x"), origin: "model/")
        #expect(performing: {
            try ChatPrompt(templates: templates, choice: "nosuch", tokenizer: TokenizerConfig(), system: nil, modelPath: "model")
        }, throws: { "\($0)".contains("no chat template called 'nosuch' (available: default, plain)") })
    }

    @Test func aGGUFsTemplatesComeFromItsMetadata() throws {
        let templates = ChatTemplateSet(ggufMetadata: [
            ("general.name", "tiny"), ("tokenizer.chat_template", "main"), ("tokenizer.chat_template.tool_use", "tools"),
        ], path: "m.gguf")
        #expect(templates.defaultTemplate?.source == "main")
        #expect(templates.named.mapValues(\.source) == ["tool_use": "tools"])
        #expect(templates.named["tool_use"]?.origin == "m.gguf: tokenizer.chat_template.tool_use")
    }

    @Test func chatTemplateJinjaOverridesTheConfigsDefault() throws {
        var texts = companionTexts("from config")
        texts["chat_template.jinja"] = "from jinja"
        texts["additional_chat_templates/rag.jinja"] = "rag"
        let templates = try ChatTemplateSet(texts: texts, origin: "model/")
        #expect(templates.defaultTemplate?.source == "from jinja")
        #expect(templates.defaultTemplate?.origin == "model/chat_template.jinja")
        #expect(Set(templates.named.keys) == ["plain", "rag"])
    }
}
