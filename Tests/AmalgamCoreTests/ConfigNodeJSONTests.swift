import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// The configuration reader over JSON: the same key paths as over YAML, with JSON's types kept.
struct ConfigNodeJSONTests {
    struct Failure: ConfigErrorReporting, Equatable {
        let path: String, key: String, reason: String
        static func config(path: String, key: String, reason: String) -> Failure { Failure(path: path, key: key, reason: reason) }
    }

    func mapping(_ text: String, path: String = "x/config.json") throws -> ConfigMapping<Failure> {
        guard case let .object(object) = try JSONValue.parse(text) else { throw Failure(path: path, key: "", reason: "test input") }
        return ConfigMapping(json: object, path: path)
    }

    @Test func anObjectReadsAsAMappingInFileOrderWithNullsAbsent() throws {
        let m = try mapping(#"{"b": 2, "a": [true, "x"], "c": null, "d": 1e-05, "e": 10000.0}"#)
        #expect(m.entries.map(\.key) == ["b", "a", "c", "d", "e"])
        #expect(try m.int("b") == 2)
        #expect(m["c"] == nil && m.contains("c"))
        #expect(try m.double("d") == 1e-05)
        #expect(try m.int("e") == 10000, "a whole number written as a float is an integer")
        let items = try m.require("a", "a list").items()
        #expect(try items[0].bool() == true && items[1].string() == "x")
        #expect(items[1].keyPath == "a[1]")
    }

    @Test func jsonTypesAreNotConvertedAndTheErrorSaysWhatWasFound() throws {
        let m = try mapping(#"{"n": "3", "s": 3, "b": 1, "l": "x", "o": {"inner": [1, "y"]}, "neg": -2}"#)
        #expect(throws: Failure(path: "x/config.json", key: "n", reason: "expected an integer, got \"3\"")) { try m.int("n") }
        #expect(throws: Failure(path: "x/config.json", key: "n", reason: "expected a number, got \"3\"")) { try m.double("n") }
        #expect(throws: Failure(path: "x/config.json", key: "s", reason: "expected a string, got 3")) { try m.string("s") }
        #expect(throws: Failure(path: "x/config.json", key: "b", reason: "expected true or false, got 1")) { try m.bool("b") }
        #expect(throws: Failure(path: "x/config.json", key: "l", reason: "expected an array of strings, got \"x\"")) { try m.strings("l") }
        #expect(throws: Failure(path: "x/config.json", key: "neg", reason: "-2 is below 0")) { try m.int("neg", minimum: 0) }
        #expect(throws: Failure(path: "x/config.json", key: "o.inner[1]", reason: "expected an integer, got \"y\"")) {
            try m.require("o", "an object").mapping().require("inner", "a list").items()[1].int()
        }
        #expect(throws: Failure(path: "x/config.json", key: "o.inner", reason: "expected an array of strings, got 1 among them")) {
            try m.require("o", "an object").mapping().strings("inner")
        }
        #expect(throws: Failure(path: "x/config.json", key: "s", reason: "expected a JSON object, got 3")) { try m.require("s", "an object").mapping() }
        #expect(throws: Failure(path: "x/config.json", key: "missing", reason: "missing (an integer)")) { try m.require("missing", "an integer") }
        #expect(throws: Failure(path: "x/config.json", key: "b", reason: "unknown key in the test; accepted: n, s")) {
            try m.require("o", "").mapping().rejectUnknown(["inner"])
            try m.rejectUnknown(["n", "s"], in: "the test")
        }
    }

    /// YAML keeps its untyped scalars: the JSON rules above do not change how merge, DAM or evolve files read.
    @Test func yamlScalarsStayLenient() throws {
        let node = try ConfigNode.parse(yaml: "s: 3\nn: '3'\neps: 1e-5\n", path: "m.yaml", as: Failure.self)
        let m = try ConfigMapping<Failure>(node, path: "m.yaml", keyPath: "")
        #expect(try m.string("s") == "3")
        #expect(try m.int("n") == 3)
        #expect(try m.double("eps") == 1e-5)
    }

    @Test func aJSONFileThatCannotBeReadOrIsNotAnObjectNamesTheFile() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let missing = folder + "/none.json"
        #expect(throws: Failure(path: missing, key: "(file)", reason: "cannot open (No such file or directory)")) {
            try ConfigMapping<Failure>.readJSON(missing)
        }
        let list = folder + "/list.json"
        try Data("[1, 2]".utf8).write(to: URL(fileURLWithPath: list))
        #expect(throws: Failure(path: list, key: "(file)", reason: "expected a JSON object, got an array")) { try ConfigMapping<Failure>.readJSON(list) }
        let broken = folder + "/broken.json"
        try Data(#"{"a": 1"#.utf8).write(to: URL(fileURLWithPath: broken))
        do {
            _ = try ConfigMapping<Failure>.readJSON(broken)
            Issue.record("no error")
        } catch {
            #expect(error.path == broken && error.key == "(file)" && error.reason.hasPrefix("not valid JSON: invalid JSON at byte"))
        }
        let good = folder + "/good.json"
        try Data(#"{"a": {"b": 1}}"#.utf8).write(to: URL(fileURLWithPath: good))
        #expect(try ConfigMapping<Failure>.readJSON(good).require("a", "").mapping().int("b") == 1)
    }
}
