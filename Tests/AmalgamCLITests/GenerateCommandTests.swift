import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam generate --prompt/--chat` as a user runs it, on the tiny Llama GGUF (random weights, a
/// SmolLM2-style tokenizer and chat template in its metadata).
@Suite(.requires(amalgamProgram))
struct GenerateCommandTests {
    let gguf = fixturesDirectory + "/gguf/tiny-llama.gguf"

    @Test func generateWithAChatPromptOnAGGUFPrintsTheReplyAndTheTokenCounts() throws {
        let r = try runAmalgam(["generate", gguf, "--chat", "--system", "Be brief.", "--prompt", "Hi there", "--max-tokens", "4"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("tokens in"))
        #expect(r.out.hasSuffix("\n"))
    }

    @Test func generateWithAnUnknownTemplateNameFailsListingWhatExists() throws {
        let r = try runAmalgam(["generate", gguf, "--chat", "--chat-template", "nosuch", "--prompt", "Hi"])
        #expect(r.status != 0)
        #expect(r.err.contains("no chat template called 'nosuch'"))
    }

    @Test func generateWithATemplateThatRefusesTheConversationFailsSayingWhyAndWhere() throws {
        let folder = temporaryFolder("refusing-template")
        let file = folder + "/refusing.jinja"
        try "{% if messages[0].role == 'system' %}\n{{ raise_exception('System role not supported') }}\n{% endif %}"
            .write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let r = try runAmalgam(["generate", gguf, "--chat", "--chat-template", file, "--system", "s", "--prompt", "Hi"])
        #expect(r.status != 0)
        #expect(r.err.contains("System role not supported") && r.err.contains("line 2"))
    }
}
