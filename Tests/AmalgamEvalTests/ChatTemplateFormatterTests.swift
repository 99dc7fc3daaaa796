import AmalgamCore
import AmalgamEval
import AmalgamTestSupport
import AmalgamTokenizer
import Foundation
import Testing

/// A task's prompt as one user turn through SmolLM2's template gives what transformers renders for the
/// same conversation with the generation prompt (fixtures/chat-templates/smollm2.json).
@Suite struct ChatTemplateFormatterTests {
    @Test func userTurnMatchesTransformers() throws {
        let path = fixturesDirectory + "/chat-templates/smollm2.json"
        let fixture = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        let template = try ChatTemplate(source: try #require(fixture["template"]?.stringValue), origin: path)
        var checked = 0
        for c in try #require(fixture["cases"]?.arrayValue) where c["add_generation_prompt"]?.boolValue == true {
            let messages = try #require(c["messages"]?.arrayValue)
            guard let expected = c["expected"]?.stringValue, messages.count <= 2,
                  messages.last?["role"]?.stringValue == "user" else { continue }
            let system = messages.count == 2 ? messages[0]["content"]?.stringValue : nil
            if messages.count == 2 { #expect(messages[0]["role"]?.stringValue == "system") }
            var variables: [String: JSONValue] = [:]
            for (k, v) in try #require(c["variables"]?.objectValue) { variables[k] = v }
            let formatter = ChatTemplateFormatter(template: template, variables: variables, system: system)
            #expect(try formatter.userTurn(try #require(messages.last?["content"]?.stringValue)) == expected)
            checked += 1
        }
        #expect(checked == 2)
    }
}
