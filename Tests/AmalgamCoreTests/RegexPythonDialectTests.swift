import AmalgamCore
import AmalgamTestSupport
import Testing

/// Amalgam's one regex engine in Python's syntax finds what Python's `re` finds: every match of
/// `re.finditer` with every group's span, on the answer patterns lm-eval writes, PEFT's rank-pattern
/// lookups and tensor selections (fixtures/regex/python-re.json, made by
/// scripts/fixtures/make_python_regex_fixtures.py with CPython 3.11).
@Suite struct RegexPythonDialectTests {
    /// One match as Python reports it: UTF-8 byte spans of the match and of each group.
    struct Span: Sendable, Equatable {
        let range: Range<Int>
        let groups: [Range<Int>?]
        init(range: Range<Int>, groups: [Range<Int>?]) { self.range = range; self.groups = groups }
        init(_ match: RegexMatch) { self.init(range: match.range, groups: match.groups) }
    }

    struct Case: Sendable, CustomStringConvertible {
        let pattern: String
        let text: String
        let groups: Int
        let matches: [Span]
        var description: String { pattern }
    }

    static let cases: [Case] = {
        let root = try! JSONValue.parse(try! fixtureBytes("regex/python-re.json"))
        return root["cases"]!.arrayValue!.map { c in
            let span = { (v: JSONValue) -> Range<Int> in
                let a = v.arrayValue!.map { $0.intValue! }
                return a[0]..<a[1]
            }
            return Case(pattern: c["pattern"]!.stringValue!, text: c["text"]!.stringValue!,
                        groups: c["groups"]?.intValue ?? 0,
                        matches: (c["matches"]?.arrayValue ?? []).map { m in
                            Span(range: span(m["range"]!),
                                       groups: m["groups"]!.arrayValue!.map { $0.isNull ? nil : span($0) })
                        })
        }
    }()

    /// Patterns Python accepts and Amalgam refuses by design (they need backtracking), with the reason named.
    static let refused = ["(?<!q)u": "lookbehind"]

    /// Where the matches are Python's but a group's span is not (docs/tokenizer.md): a repeated group whose
    /// last iteration matched empty. Python reports that empty iteration (`(a*)+b` on "aaab": group 1 is
    /// 3..<3); the Pike VM stops a loop that made no progress before it, keeping the last iteration that did
    /// (0..<3).
    static let groupDifferences: Set<String> = ["(a*)+b"]

    @Test(arguments: cases)
    func findsWhatPythonFinds(_ c: Case) throws {
        if let reason = Self.refused[c.pattern] {
            let error = #expect(throws: RegexSyntaxError.self) { try ScalarRegex(c.pattern, dialect: .python) }
            #expect(error?.reason.contains(reason) == true, "\(String(describing: error))")
            return
        }
        let regex = try ScalarRegex(c.pattern, dialect: .python)
        #expect(regex.groupCount == c.groups)
        let found = regex.allMatches(in: c.text).map(Span.init)
        if Self.groupDifferences.contains(c.pattern) {
            #expect(found.map(\.range) == c.matches.map(\.range))
            #expect(found.map(\.groups) != c.matches.map(\.groups), "the documented difference is gone: remove it")
            return
        }
        #expect(found == c.matches, "\(c.pattern.debugDescription) on \(c.text.debugDescription)")
        #expect(regex.firstMatch(in: c.text).map(Span.init) == c.matches.first)
    }

    @Test func theFixtureCoversAnchorsGroupsAndEmptyMatches() {
        #expect(Self.cases.count >= 30)
        #expect(Self.cases.contains { $0.matches.contains { $0.groups.contains(nil) } })  // a group that did not take part
        #expect(Self.cases.contains { $0.matches.contains { $0.range.isEmpty } })
        #expect(Self.cases.contains { $0.pattern.hasPrefix("^") && $0.matches.isEmpty })  // `^` is the text's start
    }

    @Test func theMatchedTextOfAGroupIsTheSubstring() throws {
        let text = "prix: 3,50 €, total 12.25 €"
        let regex = try ScalarRegex(#"total (\d+)\.(\d+) (€)"#, dialect: .python)
        let match = try #require(regex.firstMatch(in: text))
        #expect(match.text(in: text) == "total 12.25 €")
        #expect(match.text(in: text, group: 1) == "12")
        #expect(match.text(in: text, group: 3) == "€")
    }

    @Test func onigurumaSyntaxKeepsItsOwnAnchors() throws {
        // The tokenizer dialect: `^` and `$` at every line, `(?m)` is dot-all.
        let ruby = try ScalarRegex(#"^\d+$"#)
        #expect(ruby.allMatches(in: "12\n34\n").map(\.range) == [0..<2, 3..<5])
        let python = try ScalarRegex(#"^\d+$"#, dialect: .python)
        #expect(python.allMatches(in: "12\n34\n").isEmpty)
        #expect(try ScalarRegex("(?m)a.b").isFound(in: "a\nb"))
        #expect(try !ScalarRegex("(?m)a.b", dialect: .python).isFound(in: "a\nb"))
        #expect(try ScalarRegex("(?s)a.b", dialect: .python).isFound(in: "a\nb"))
    }
}
