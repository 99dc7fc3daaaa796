import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// JSON text against Python's `json.dumps` and the Rust safetensors crate's serde_json (fixtures written
/// by scripts/fixtures/make_safetensors_fixtures.py).
struct JSONValueTests {
    func text(_ name: String) throws -> String { String(decoding: try fixtureBytes("safetensors/" + name), as: UTF8.self) }

    @Test func pythonTextMatchesJSONDumpsSorted() throws {
        let value = try JSONValue.parse(try fixtureBytes("safetensors/json_source.json"))
        #expect(value.pythonText() == (try text("json_python_sorted.json")))
    }

    @Test func pythonTextKeepsFileOrderWhenNotSorting() throws {
        let value = try JSONValue.parse(try fixtureBytes("safetensors/json_source.json"))
        #expect(value.pythonText(sortKeys: false) == (try text("json_python_unsorted.json")))
    }

    /// Python's compact `ensure_ascii=False` text escapes exactly as serde_json does.
    @Test func compactTextRoundTripsTheSource() throws {
        let source = try text("json_source.json")
        #expect(try JSONValue.parse(source).compactText() == source)
    }

    /// The header the Rust safetensors crate wrote (escapes, control characters, unicode, DEL) comes out
    /// byte for byte from `compactText()`.
    @Test(arguments: ["numpy_meta.safetensors", "all_dtypes.safetensors", "scalars_empty.safetensors"])
    func compactTextEqualsTheSafetensorsHeader(file: String) throws {
        let bytes = try fixtureBytes("safetensors/" + file)
        let n = Int(words(Array(bytes[0..<8]), as: UInt64.self)[0])
        var header = Array(bytes[8..<(8 + n)])
        while header.last == UInt8(ascii: " ") { header.removeLast() }
        #expect(Array(try JSONValue.parse(header).compactText().utf8) == header)
    }

    @Test func parsingTheSortedTextGivesTheSameValueAfterSorting() throws {
        let sorted = try JSONValue.parse(try text("json_python_sorted.json"))
        #expect(sorted.pythonText() == (try text("json_python_sorted.json")))
        #expect(sorted["alpha"]?["日本"]?.stringValue == "語")
        #expect(sorted["esc"]?.stringValue == "quote\" back\\ slash/ \u{08}\u{0C}\n\r\t \u{00} \u{1F} \u{7F} \u{2028}")
    }

    @Test func numbersKeepTheirText() throws {
        let value = try JSONValue.parse("[1e-05, 10000.0, 32000, -0.0, 2.0, 1E+3, 123456789012345678901234567890]")
        let items = value.arrayValue!
        #expect(items.map { $0.compactText() } == ["1e-05", "10000.0", "32000", "-0.0", "2.0", "1E+3", "123456789012345678901234567890"])
        #expect(items[0].doubleValue == 1e-05)
        #expect(items[1].intValue == 10000)
        #expect(items[2].intValue == 32000)
        #expect(items[5].intValue == 1000)
        #expect(items[6].intValue == nil)
        #expect(JSONValue.double(1e-05).compactText() == "1e-05")
        #expect(JSONValue.double(10000).compactText() == "10000.0")
    }

    /// A double we set (a merged config's value) is spelled as Python's json writes it.
    @Test func doublesAreSpelledAsPythonWritesThem() throws {
        let values = try JSONValue.parse(try fixtureBytes("safetensors/values.json"))
        var wrong: [String] = []
        let pairs = values["python_float_repr"]!.arrayValue!
        #expect(pairs.count > 60)
        for pair in pairs {
            let x = Double(bitPattern: UInt64(pair.arrayValue![0].stringValue!)!)
            let python = pair.arrayValue![1].stringValue!
            if JSONValue.double(x).compactText() != python { wrong.append("\(python) -> \(JSONValue.double(x).compactText())") }
        }
        #expect(wrong.isEmpty, "\(wrong)")
    }

    @Test func objectsKeepKeyOrderAndEdit() throws {
        var o = try JSONValue.parse(#"{"b": 1, "a": 2, "c": 3}"#).objectValue!
        #expect(o.keys == ["b", "a", "c"])
        o["a"] = nil
        o["d"] = .bool(true)
        o["b"] = .string("x")
        #expect(JSONValue.object(o).compactText() == #"{"b":"x","c":3,"d":true}"#)
        #expect(o["c"] == .int(3))
    }

    @Test(arguments: [
        ("{\"a\": 1} x", "after the value"),
        ("{\"a\": 1, \"a\": 2}", "duplicate key"),
        ("[1, 2", "end of text"),
        ("\"abc", "unterminated"),
        ("\"\\ud800\"", "surrogate"),
        ("\"a\u{01}b\"", "control character"),
        ("01", "leading zero"),
        ("{\"a\" 1}", "':'"),
        ("[1,]", "unexpected character"),
        ("tru", "end of text"),
    ])
    func invalidTextThrowsWithAReason(text: String, reason: String) {
        #expect {
            _ = try JSONValue.parse(text)
        } throws: { error in
            (error as? JSONError)?.description.contains(reason) == true
        }
    }

    @Test func invalidUTF8IsAnError() {
        #expect(throws: JSONError.self) { _ = try JSONValue.parse([0x22, 0xC3, 0x28, 0x22] as [UInt8]) }
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONError.self) { _ = try JSONValue.parse(deep) }
        let fine = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect((try? JSONValue.parse(fine)) != nil)
    }
}
