import AmalgamTokenizer
import Testing

@Suite struct StreamingDecoderTests {
    @Test func streamedTextEqualsTheWholeDecodeAndNeverSplitsACharacter() throws {
        let tokenizer = try fixtureTokenizer("smollm2")
        let text = "Héllo wörld — 世界 🌍🎉 naïve café"
        let ids = tokenizer.encode(text, addSpecialTokens: false)
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        var pieces: [String] = []
        for id in ids { pieces.append(decoder.append(id)) }
        pieces.append(decoder.finish())
        #expect(pieces.joined() == tokenizer.decode(ids))
        #expect(!pieces.contains { $0.contains("\u{FFFD}") })
        // the emoji are several byte tokens each: some steps must have held their bytes back
        #expect(ids.count > pieces.filter { !$0.isEmpty }.count)
    }

    @Test func stopStringIsCutAndTextBeforeItShown() {
        var filter = StopStringFilter(stops: ["STOP", "<end>"])
        func feed(_ text: String) -> String {
            let (shown, stopped) = filter.feed(text)
            return shown + (stopped ? "|stopped" : "")
        }
        #expect(feed("Hel") == "Hel")
        #expect(feed("lo S") == "lo ")  // "S" may begin STOP: held back
        #expect(feed("TOP and more") == "|stopped")
        filter = StopStringFilter(stops: ["<end>"])
        #expect(feed("a <e") == "a ")
        #expect(feed("x>") == "<ex>")  // not a stop after all: released
        #expect(feed("b <en") == "b ")
        #expect(filter.finish() == "<en")
    }
}
