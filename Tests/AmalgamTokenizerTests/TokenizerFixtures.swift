import AmalgamCore
import AmalgamTokenizer
import AmalgamTestSupport
import Foundation
import Testing

/// The repository's `fixtures/tokenizer/` folder.
let tokenizerFixtures = fixturePath("tokenizer")

func readFixtureJSON(_ name: String) throws -> JSONValue {
    try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: tokenizerFixtures + "/" + name))))
}

/// A fixture tokenizer by name: a folder (`smollm2`, `sp-bpe`) or a variant from variants.json, which
/// replaces top-level keys of its base tokenizer.json (and `model` key by key).
func fixtureTokenizer(_ name: String) throws -> Tokenizer {
    let folder = tokenizerFixtures + "/" + name
    if FileManager.default.fileExists(atPath: folder) { return try Tokenizer(contentsOf: folder) }
    let variant = try #require(try readFixtureJSON("variants.json")[name]?.objectValue)
    let base = try #require(variant["base"]?.stringValue)
    guard case var .object(root) = try readFixtureJSON(base + "/tokenizer.json") else { throw CocoaError(.fileReadCorruptFile) }
    for (key, value) in variant where key != "base" {
        if key == "model", case var .object(model) = root["model"]!, let overrides = value.objectValue {
            for (k, v) in overrides { model[k] = v }
            root["model"] = .object(model)
        } else {
            root[key] = value
        }
    }
    return try Tokenizer(json: .object(root), path: "\(name) (variants.json)")
}

/// FNV-1a 64 over ids as little-endian uint32, as scripts/fixtures/tokenizer.py computes it.
func fnv64(_ ids: [Int], _ start: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
    var h = start
    for id in ids {
        var v = UInt32(id)
        for _ in 0..<4 {
            h = (h ^ UInt64(v & 0xFF)) &* 0x100_0000_01b3
            v >>= 8
        }
    }
    return h
}

func fold16(_ h: UInt64) -> UInt16 { UInt16(truncatingIfNeeded: h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) }

/// Lines with their terminator kept, as the fixture script cuts them. Bytes, not Characters: "\r\n" is
/// one Character in Swift.
func lines(_ text: String) -> [String] {
    var out: [String] = []
    var line: [UInt8] = []
    for b in text.utf8 {
        line.append(b)
        if b == 0x0A { out.append(String(decoding: line, as: UTF8.self)); line.removeAll(keepingCapacity: true) }
    }
    if !line.isEmpty { out.append(String(decoding: line, as: UTF8.self)) }
    return out
}
