import AmalgamCore
import AmalgamTokenizer
import Testing

/// Every tokenizer of the fixtures and every variant: the hard cases of hard-cases.json give the ids
/// and decodes that tokenizers 0.23.3 gave (hard-cases-ref.json).
@Suite struct HardCaseTests {
    static let names = ["smollm2", "sp-bpe", "smollm2-hub", "llama3-style", "qwen2-style", "gpt2-split-prefix",
                        "split-behaviors", "added-flags", "sp-metaspace", "sp-metaspace-split"]

    @Test(arguments: names)
    func sameIdsAndTextAsTokenizers(name: String) throws {
        let tokenizer = try fixtureTokenizer(name)
        let cases = try #require(try readFixtureJSON("hard-cases.json").arrayValue).map { $0.stringValue! }
        let reference = try #require(try readFixtureJSON("hard-cases-ref.json")[name]?.arrayValue)
        #expect(cases.count == reference.count)
        var failures = 0
        for (text, ref) in zip(cases, reference) {
            let ids = { (key: String) in ref[key]!.arrayValue!.map { $0.intValue! } }
            let ours = tokenizer.encode(text)
            #expect(ours == ids("ids"), "\(name): encode(\(text.debugDescription))")
            #expect(tokenizer.encode(text, addSpecialTokens: false) == ids("ids_no_special"),
                    "\(name): encode(\(text.debugDescription), addSpecialTokens: false)")
            let decoded = tokenizer.decode(ids("ids"))
            #expect(decoded == ref["decoded"]!.stringValue!, "\(name): decode of \(text.debugDescription)")
            let skipped = tokenizer.decode(ids("ids"), skipSpecialTokens: true)
            #expect(skipped == ref["decoded_skip"]!.stringValue!, "\(name): decode(skipSpecialTokens) of \(text.debugDescription)")
            if ref["decoded_skip"]!.stringValue! == text { #expect(tokenizer.decode(ours, skipSpecialTokens: true) == text) }
            if ours != ids("ids") { failures += 1 }
        }
        #expect(failures == 0, "\(name): \(failures) of \(cases.count) hard cases differ")
    }

    @Test func specialTokensAndConfig() throws {
        let smol = try fixtureTokenizer("smollm2")
        #expect(smol.config.bosToken == "<|im_start|>")
        #expect(smol.eosTokenId == 2)
        #expect(smol.config.chatTemplate?.contains("<|im_start|>") == true)
        #expect(smol.encode("<|im_end|>") == [2])
        #expect(smol.decode(smol.encode("a<|im_end|>b"), skipSpecialTokens: true) == "ab")
        let sp = try fixtureTokenizer("sp-bpe")
        #expect(sp.bosTokenId == 1)
        #expect(sp.encode("hi").first == 1)
        #expect(sp.encode("hi", addSpecialTokens: false).first != 1)
    }
}
