import AmalgamCore
import AmalgamTestSupport
import AmalgamTokenizer
import Foundation
import Testing

/// A tokenizer.json's `Split` pattern never reaches a backtracking regex engine: the regexes of GPT-2,
/// Llama 3 and Qwen2 are matched by linear scanners, a literal by a plain search, and any other regex by
/// Amalgam's own Pike VM, whose work per search is bounded by the program size times the text length
/// (issue #24 part 1; the step bound itself is asserted in `RegexBoundTests`). So an adversarial pattern
/// cannot hang a tokenizer, and adversarial text runs through every pattern in bounded time.
struct SplitPatternSafetyTests {
    static let gpt2 = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The small byte-level tokenizer of the tiny-llama GGUF fixture with `preTokenizer` in place of its own.
    func tokenizer(preTokenizer: JSONValue) throws(TokenizerError) -> Tokenizer {
        let path = fixturesDirectory + "/gguf/tiny-llama-hf/tokenizer.json"
        guard var json = (try? JSONValue.parse(fileBytes(path)))?.objectValue else { fatalError("cannot read \(path)") }
        json["pre_tokenizer"] = preTokenizer
        return try Tokenizer(json: .object(json), path: path)
    }

    /// `Split` on `regex`, then ByteLevel without its own regex (as Llama 3's tokenizer.json has it).
    func split(_ regex: String) -> JSONValue {
        let split = JSONValue.object(JSONObject([("type", .string("Split")), ("pattern", .object(JSONObject([("Regex", .string(regex))]))),
                                                 ("behavior", .string("Isolated")), ("invert", .bool(false))]))
        let byteLevel = JSONValue.object(JSONObject([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)),
                                                     ("trim_offsets", .bool(true)), ("use_regex", .bool(false))]))
        return .object(JSONObject([("type", .string("Sequence")), ("pretokenizers", .array([split, byteLevel]))]))
    }

    @Test(.timeLimit(.minutes(2))) func aCatastrophicBacktrackingRegexTokenizesAdversarialTextWithoutHanging() throws {
        // Each of these takes exponential time on a backtracking engine against the text beside it.
        let cases = [("(a+)+$", String(repeating: "a", count: 3_000) + "b"),
                     ("(a|aa)*b", String(repeating: "a", count: 3_000) + "c"),
                     ("(.*a){20}", String(repeating: "a", count: 500) + "b"),
                     ("(?:x+x+)+y", String(repeating: "x", count: 3_000)),
                     (#"\p{L}+(?=\d)"#, String(repeating: "é", count: 3_000) + "!")]
        for (evil, text) in cases {
            let t = try tokenizer(preTokenizer: split(evil))
            let ids = t.encode(text)
            #expect(!ids.isEmpty, "\(evil)")
            // Byte-level: decoding gives the text back, so every byte went through the split.
            #expect(t.decode(ids) == text, "\(evil)")
        }
    }

    @Test(.timeLimit(.minutes(2))) func adversarialTextRunsThroughTheKnownPatternsInLinearTime() throws {
        let n = 200_000
        let texts = [String(repeating: "a", count: n) + "!", String(repeating: " ", count: n) + "x",
                     String(repeating: "'", count: n) + "s", String(repeating: "1", count: n),
                     String(repeating: " \n", count: n / 2) + "\r", String(repeating: "é", count: n) + " ",
                     String(repeating: "!?", count: n / 2) + "\n\n"]
        for pattern in [Self.gpt2, Self.llama3] {
            let t = try tokenizer(preTokenizer: split(pattern))
            for text in texts {
                let ids = t.encode(text)
                #expect(!ids.isEmpty)
                // Byte-level: decoding gives the text back, so every byte went through the scanner.
                #expect(t.decode(ids) == text)
            }
        }
    }
}
