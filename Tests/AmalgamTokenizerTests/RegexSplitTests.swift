import AmalgamCore
import AmalgamTokenizer
import Testing

/// Amalgam's regex engine cuts text as `tokenizers` (Oniguruma) does: for every pattern of
/// regex-splits.json (the GPT-2, Llama 3 and Qwen2 patterns run on the engine, not on their scanners;
/// DeepSeek-V3's three, GPT-4o's, CJK ranges, scripts, lazy quantifiers, lookahead, anchors, case-insensitive
/// groups, empty matches), the pieces of Split "isolated" and "removed" on the hard cases and sample
/// Shakespeare/Milton lines, made by scripts/fixtures/tokenizer_models.py with tokenizers 0.23.3.
@Suite struct RegexSplitTests {
    static let fixture = try! readFixtureJSON("regex-splits.json")
    static let patterns: [String] = fixture["cases"]!.arrayValue!.map { $0["pattern"]!.stringValue! }

    /// The pieces a Split with this pattern gives: every segment ("isolated"), or the gaps ("removed").
    static func pieces(_ regex: ScalarRegex, _ text: String, keepMatches: Bool) -> [String] {
        let bytes = Array(text.utf8)
        return regex.segments(in: text).filter { !$0.range.isEmpty && (keepMatches || !$0.isMatch) }
            .map { String(decoding: bytes[$0.range], as: UTF8.self) }
    }

    @Test(arguments: patterns)
    func splitsLikeTokenizers(pattern: String) throws {
        let regex = try ScalarRegex(pattern)
        let texts = RegexSplitTests.fixture["texts"]!.arrayValue!.map { $0.stringValue! }
        let entry = try #require(RegexSplitTests.fixture["cases"]!.arrayValue!.first { $0["pattern"]!.stringValue! == pattern })
        var differing = 0
        for (k, text) in texts.enumerated() {
            let isolated = entry["isolated"]!.arrayValue![k].arrayValue!.map { $0.stringValue! }
            let removed = entry["removed"]!.arrayValue![k].arrayValue!.map { $0.stringValue! }
            let ours = RegexSplitTests.pieces(regex, text, keepMatches: true)
            let oursRemoved = RegexSplitTests.pieces(regex, text, keepMatches: false)
            #expect(ours == isolated, "\(pattern.debugDescription) on \(text.debugDescription)")
            #expect(oursRemoved == removed, "\(pattern.debugDescription) (removed) on \(text.debugDescription)")
            if ours != isolated || oursRemoved != removed { differing += 1 }
        }
        #expect(differing == 0, "\(pattern.debugDescription): \(differing) of \(texts.count) texts cut differently")
        #expect(texts.count > 200)
    }
}

/// Patterns that make a backtracking engine run for ages return after a bounded number of steps, and
/// features the engine cannot bound are refused with the reason.
@Suite struct RegexBoundTests {
    /// The bound the engine documents for one search over `n` scalars, times the searches made.
    static func bound(_ regex: ScalarRegex, scalars n: Int, searches: Int) -> Int {
        (4 * regex.programSize + 1) * (n + 1) * searches
    }

    @Test(arguments: [
        (#"(a*)*b"#, String(repeating: "a", count: 10_000)),
        (#"(a|a)*b"#, String(repeating: "a", count: 10_000)),
        (#"(a|aa)+$"#, String(repeating: "a", count: 10_000) + "!"),
        (#"(.*)*x"#, String(repeating: "ab", count: 5_000)),
        (#"(\w+\s?)*\d"#, String(repeating: "word ", count: 2_000)),
        (#"((a{1,10}){1,10}){1,10}c"#, String(repeating: "a", count: 5_000)),
    ])
    func adversarialPatternFindsNothingWithinItsBound(pattern: String, text: String) throws {
        let regex = try ScalarRegex(pattern)
        let (ranges, steps) = regex.matches(in: text)
        let n = text.unicodeScalars.count
        #expect(ranges.isEmpty)
        #expect(steps > n, "the engine looked at every scalar")
        #expect(steps <= RegexBoundTests.bound(regex, scalars: n, searches: ranges.count + 1),
                "\(pattern): \(steps) steps for \(n) scalars, program of \(regex.programSize)")
    }

    @Test func lookaheadRunOfSpacesIsLinear() throws {
        let regex = try ScalarRegex(#"\s+(?!\S)|\s+"#)
        let text = String(repeating: " ", count: 10_000) + "x"
        let (ranges, steps) = regex.matches(in: text)
        #expect(ranges == [0..<9_999, 9_999..<10_000])
        #expect(steps <= RegexBoundTests.bound(regex, scalars: 10_001, searches: 3))
    }

    @Test(arguments: [
        (#"(?>a+)b"#, "atomic"), (#"a++"#, "possessive"), (#"(?<=a)b"#, "lookbehind"), (#"(a)\1"#, "backreference"),
        (#"(?x) a b"#, "extended"), (#"\p{NotAProperty}"#, "NotAProperty"), (#"(a{1000}){1000}"#, "instructions"),
        (#"a{5,2}"#, "n < m"), (#"(ab"#, "unclosed"), (#"ab)"#, "unbalanced"), (#"[a-"#, "unclosed"),
    ])
    func unsupportedFeatureIsRefusedWithTheReason(pattern: String, reason: String) {
        #expect {
            try ScalarRegex(pattern)
        } throws: { "\($0)".contains(reason) }
    }

    @Test func refusedSplitRegexNamesTheFileKeyAndPattern() {
        let json = #"{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(?<=x)y"}, "behavior": "Isolated", "invert": false}]}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}"#
        #expect {
            try Tokenizer(json: try JSONValue.parse(json), path: "some/tokenizer.json")
        } throws: {
            let text = "\($0)"
            return text.contains("some/tokenizer.json") && text.contains("pre_tokenizer.pretokenizers[0].pattern")
                && text.contains("(?<=x)y") && text.contains("lookbehind")
        }
    }
}
