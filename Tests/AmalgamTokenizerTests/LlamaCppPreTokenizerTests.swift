import AmalgamCore
import AmalgamTestSupport
import AmalgamTokenizer
import Foundation
import Testing

/// fixtures/gguf/pre-tokenizers.json: for each tokenizer fixture, the ids transformers gives for llama.cpp's
/// check text, their hash and the name llama.cpp's own converter chose (null: it knew none), written by
/// scripts/fixtures/make_gguf_pre_fixtures.py with the refenv and the llama-cpp-python 0.3.36 sources.
private func converterCases() throws -> [JSONValue] {
    let data = try Data(contentsOf: URL(fileURLWithPath: repositoryRoot + "/fixtures/gguf/pre-tokenizers.json"))
    return try JSONValue.parse(Array(data))["tokenizers"]!.arrayValue!
}

/// Choosing `tokenizer.ggml.pre` for a Hugging Face tokenizer as llama.cpp's converter does.
@Suite struct LlamaCppPreTokenizerTests {
    @Test func sha256MatchesTheStandardVectors() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // Two blocks of padding (56 bytes fill the first block past its length field).
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func theCheckTextIsTheConverters() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: repositoryRoot + "/fixtures/gguf/pre-tokenizers.json"))
        #expect(try JSONValue.parse(Array(data))["check_text"]?.stringValue == LlamaCppPreTokenizer.checkText)
    }

    @Test func namesEachFixtureTokenizerAsLlamaCppsConverterDoes() throws {
        let cases = try converterCases()
        #expect(cases.count >= 3)
        for c in cases {
            let folder = c["folder"]!.stringValue!
            let tokenizer = try Tokenizer(contentsOf: repositoryRoot + "/" + folder)
            let ids = tokenizer.encode(LlamaCppPreTokenizer.checkText)
            #expect(ids == c["ids"]!.arrayValue!.map { $0.intValue! }, "\(folder): ids of the check text")
            #expect(LlamaCppPreTokenizer.checkHash(tokenizer) == c["hash"]!.stringValue!, "\(folder)")
            let choice = LlamaCppPreTokenizer.name(for: tokenizer)
            if let name = c["name"]?.stringValue {
                #expect(choice.name == name, "\(folder)")
                #expect(choice.warning == nil, "\(folder)")
            } else {
                #expect(choice.name == "default", "\(folder)")
                #expect(choice.warning?.contains(c["hash"]!.stringValue!) == true, "\(folder): \(choice.warning ?? "no warning")")
            }
        }
    }

    @Test func theSmolLM2TokenizerIsSmollm() throws {
        // The shipped SmolLM2 GGUF says "smollm"; its tokenizer must hash to that name.
        let choice = LlamaCppPreTokenizer.name(for: try fixtureTokenizer("smollm2"))
        #expect(choice.name == "smollm")
        #expect(choice.warning == nil)
    }

    @Test func anUnknownTokenizerGetsDefaultAndAWarningNamingIt() throws {
        let tokenizer = try fixtureTokenizer("sp-bpe")
        let choice = LlamaCppPreTokenizer.name(for: tokenizer)
        #expect(choice.name == "default")
        let warning = try #require(choice.warning)
        #expect(warning.contains(tokenizer.path))
        #expect(warning.contains(LlamaCppPreTokenizer.checkHash(tokenizer)))
    }
}
