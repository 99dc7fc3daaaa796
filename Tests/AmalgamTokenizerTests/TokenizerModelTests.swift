import AmalgamCore
import AmalgamTestSupport
import AmalgamTokenizer
import Foundation
import Testing

/// Tokenizers trained with `tokenizers` by scripts/fixtures/tokenizer_models.py (Unigram with byte
/// fallback and with a regex Replace, WordPiece behind BERT's normalizer and pre-tokenizer, byte-level BPE
/// behind DeepSeek-V3's three Split regexes, WordLevel behind Nmt/StripAccents/Punctuation/CTC, and a
/// Unigram trained by sentencepiece behind its Precompiled charsmap, as transformers converts T5) give the
/// same ids and decodes as tokenizers 0.23.3 (models-ref.json).
@Suite struct TokenizerModelTests {
    static let reference = try! readFixtureJSON("models-ref.json")
    static let names = ["unigram", "unigram-first", "wordpiece", "bpe-deepseek", "wordlevel", "unigram-spm"]

    static func tokenizer(_ name: String) throws -> Tokenizer {
        try Tokenizer(contentsOf: tokenizerFixtures + "/models/" + name)
    }

    @Test(arguments: names)
    func hardCasesGiveTheIdsAndTextOfTokenizers(name: String) throws {
        let tokenizer = try TokenizerModelTests.tokenizer(name)
        let texts = TokenizerModelTests.reference["texts"]!.arrayValue!.map { $0.stringValue! }
        let rows = try #require(TokenizerModelTests.reference["tokenizers"]?[name]?["hard_cases"]?.arrayValue)
        #expect(rows.count == texts.count)
        var differing = 0
        for (text, row) in zip(texts, rows) {
            let ids = { (key: String) in row[key]!.arrayValue!.map { $0.intValue! } }
            let ours = tokenizer.encode(text)
            #expect(ours == ids("ids"), "\(name): encode(\(text.debugDescription))")
            #expect(tokenizer.encode(text, addSpecialTokens: false) == ids("ids_no_special"), "\(name): encode(\(text.debugDescription), addSpecialTokens: false)")
            #expect(tokenizer.decode(ids("ids")) == row["decoded"]!.stringValue!, "\(name): decode of \(text.debugDescription)")
            #expect(tokenizer.decode(ids("ids"), skipSpecialTokens: true) == row["decoded_skip"]!.stringValue!,
                    "\(name): decode(skipSpecialTokens) of \(text.debugDescription)")
            if ours != ids("ids") { differing += 1 }
        }
        #expect(differing == 0, "\(name): \(differing) of \(texts.count) hard cases differ")
    }

    @Test(.requires(shakespeareData), arguments: names)
    func everyShakespeareAndMiltonLineGivesTheIdsOfTokenizers(name: String) throws {
        try shakespeareData.require()
        let tokenizer = try TokenizerModelTests.tokenizer(name)
        let files = try #require(TokenizerModelTests.reference["tokenizers"]?[name]?["files"]?.arrayValue)
        var totalTokens = 0
        for file in files {
            let path = file["path"]!.stringValue!
            let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: shakespeareDirectory + "/" + path)), as: UTF8.self)
            let textLines = lines(text)
            try #require(textLines.count == file["lines"]!.intValue!, "\(path): line count differs from the reference")
            let encoded = tokenizer.encodeBatch(textLines)
            for sample in file["sample"]!.arrayValue! {
                let pair = sample.arrayValue!
                let k = pair[0].intValue!
                let ids = pair[1].arrayValue!.map { $0.intValue! }
                #expect(encoded[k] == ids, "\(name) \(path) line \(k + 1) \(textLines[k].debugDescription)")
            }
            let hash = encoded.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { fnv64($1, $0) }
            let tokens = encoded.reduce(0) { $0 + $1.count }
            #expect(tokens == file["tokens"]!.intValue!, "\(name) \(path): token count")
            #expect(String(hash, radix: 16).leftPadded(16) == file["fnv64"]!.stringValue!, "\(name) \(path): hash of all ids")
            totalTokens += tokens
        }
        #expect(totalTokens > 500_000)
    }

    @Test func unigramWithoutRoomForAPieceFallsBackToBytes() throws {
        // "😀" is in no piece of the trained vocabulary: byte fallback writes its four bytes.
        let tokenizer = try TokenizerModelTests.tokenizer("unigram")
        let ids = tokenizer.encode("😀", addSpecialTokens: false)
        #expect(ids.suffix(4).map { tokenizer.token(of: $0)! } == ["<0xF0>", "<0x9F>", "<0x98>", "<0x80>"])
        #expect(tokenizer.decode(ids) == "😀")
    }
}
