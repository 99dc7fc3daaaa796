import AmalgamCore
import AmalgamTokenizer
import FuzzSupport

// A Jinja chat template: compiled, then rendered for a short conversation as `amalgam generate` and the
// evaluation harness render it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChatTemplate(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    guard let template = try? ChatTemplate(source: FuzzInput.text(data, size), origin: "fuzz") else { return 0 }
    let messages = [ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Hi!"),
                    ChatMessage(role: "assistant", content: "Hello."), ChatMessage(role: "user", content: "2+2?")]
    let variables: [String: JSONValue] = ["bos_token": .string("<s>"), "eos_token": .string("</s>")]
    _ = try? template.render(messages, addGenerationPrompt: true, variables: variables)
    _ = try? template.render(Array(messages.prefix(2)), addGenerationPrompt: false)
    return 0
}

// SwiftPM renames an executable's main to FuzzChatTemplate_main; libFuzzer's driver takes over from there.
@_cdecl("FuzzChatTemplate_main")
public func FuzzChatTemplateMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzzChatTemplate)
}
