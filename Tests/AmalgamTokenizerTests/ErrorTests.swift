import AmalgamCore
import AmalgamTokenizer
import Testing

/// What a user sees when a tokenizer.json holds something Amalgam does not support.
@Suite struct ErrorTests {
    func tokenizer(_ json: String) throws -> Tokenizer {
        try Tokenizer(json: try JSONValue.parse(json), path: "test/tokenizer.json")
    }

    static let model = #""model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}"#

    @Test func unsupportedPreTokenizerNamesItAndTheSupportedOnes() throws {
        #expect {
            try tokenizer(#"{"pre_tokenizer": {"type": "UnicodeScripts"}, "# + ErrorTests.model + "}")
        } throws: { error in
            let text = "\(error)"
            return text.contains("test/tokenizer.json") && text.contains("pre_tokenizer.type") &&
                text.contains("UnicodeScripts") && text.contains("ByteLevel, Split")
        }
    }

    @Test func refusedRegexIsNamed() throws {
        #expect {
            try tokenizer(#"{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\d++"}, "behavior": "Isolated", "invert": false}, "# + ErrorTests.model + "}")
        } throws: { "\($0)".contains(#"\d++"#) && "\($0)".contains("pre_tokenizer.pattern") && "\($0)".contains("possessive") }
    }

    @Test func dropoutIsRefused() throws {
        #expect {
            try tokenizer(#"{"model": {"type": "BPE", "dropout": 0.1, "vocab": {}, "merges": []}}"#)
        } throws: { "\($0)".contains("model.dropout") }
    }

    @Test func mergeOfUnknownTokens() throws {
        #expect {
            try tokenizer(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "c"]]}}"#)
        } throws: { "\($0)".contains("model.merges[0]") }
    }

    @Test func mergesInBothFormatsGiveTheSameIds() throws {
        let strings = try tokenizer(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "abb": 3}, "merges": ["a b", "ab b"]}}"#)
        let arrays = try tokenizer(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "abb": 3}, "merges": [["a", "b"], ["ab", "b"]]}}"#)
        #expect(strings.encode("abbab") == [3, 2])
        #expect(arrays.encode("abbab") == [3, 2])
        #expect(strings.decode([3, 2]) == "abb ab")  // no decoder: tokens joined by spaces, as tokenizers does
    }
}
