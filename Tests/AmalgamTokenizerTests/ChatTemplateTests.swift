import AmalgamCore
import AmalgamTestSupport
import AmalgamTokenizer
import Foundation
import Testing

/// `fixtures/chat-templates/`: templates rendered by transformers' own `render_jinja_template`
/// (scripts/fixtures/make_chat_template_fixtures.py).
let chatTemplateFixtures = fixturePath("chat-templates")

let chatTemplateFixtureNames: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: chatTemplateFixtures)) ?? [])
    .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()

@Suite struct ChatTemplateTests {
    @Test func fixturesArePresent() {
        #expect(chatTemplateFixtureNames.count >= 14)
    }

    @Test(arguments: chatTemplateFixtureNames)
    func rendersAsTransformers(_ name: String) throws {
        let fixture = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: "\(chatTemplateFixtures)/\(name).json"))))
        let template = try ChatTemplate(source: try #require(fixture["template"]?.stringValue), origin: name)
        for c in try #require(fixture["cases"]?.arrayValue) {
            let messages = try #require(c["messages"]?.arrayValue)
            let generation = c["add_generation_prompt"]?.boolValue == true
            var variables: [String: JSONValue] = [:]
            for (k, v) in try #require(c["variables"]?.objectValue) { variables[k] = v }
            let label = "\(name) / \(c["conversation"]?.stringValue ?? "?") / generation prompt \(generation)"
            if let expected = c["expected"]?.stringValue {
                let rendered = try template.render(messages: messages, addGenerationPrompt: generation, variables: variables)
                #expect(rendered == expected, "\(label)")
            } else {
                let message = try #require(c["error"]?.stringValue)
                #expect(performing: { try template.render(messages: messages, addGenerationPrompt: generation, variables: variables) },
                        throws: { ($0 as? ChatTemplateError)?.kind == .raised && ($0 as? ChatTemplateError)?.message == message })
            }
        }
    }

    @Test func syntaxErrorNamesTheLine() {
        #expect(performing: { try ChatTemplate(source: "{% for m in messages %}\n{{ m.content }}\n{% endif %}") },
                throws: { ($0 as? ChatTemplateError).map { $0.kind == .syntax && $0.line == 3 } ?? false })
        #expect(performing: { try ChatTemplate(source: "hello\n{{ 'unclosed }}") },
                throws: { ($0 as? ChatTemplateError).map { $0.kind == .syntax && $0.line == 2 } ?? false })
    }

    @Test func unsupportedConstructsAreNamed() throws {
        #expect(performing: { try ChatTemplate(source: "a\nb\n{% include 'x.jinja' %}") },
                throws: { ($0 as? ChatTemplateError).map { $0.kind == .unsupported && $0.line == 3 && $0.message.contains("include") } ?? false })
        let t = try ChatTemplate(source: "{{ messages[0].content | wordwrap(5) }}")
        #expect(performing: { try t.render([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: false) },
                throws: { ($0 as? ChatTemplateError).map { $0.kind == .unsupported && $0.message.contains("wordwrap") } ?? false })
    }

    @Test func undefinedRendersEmptyButItsAttributesFail() throws {
        let ok = try ChatTemplate(source: "[{{ nothing }}]{% if nothing %}x{% endif %}{{ nothing | length }}")
        #expect(try ok.render(messages: [], addGenerationPrompt: false) == "[]0")
        let bad = try ChatTemplate(source: "line one\n{{ nothing.attribute }}")
        #expect(performing: { try bad.render(messages: [], addGenerationPrompt: false) },
                throws: { ($0 as? ChatTemplateError).map { $0.kind == .runtime && $0.line == 2 && $0.message.contains("'nothing' is undefined") } ?? false })
    }
}
