import AmalgamJinja

/// Turns generated token ids into text one token at a time, without re-decoding the whole sequence:
/// each step decodes only the tokens since the last emitted text (plus the ones before it, for
/// context), and holds text back while it ends in an incomplete UTF-8 sequence, so a multi-byte
/// character split over several byte tokens comes out whole.
public struct StreamingDecoder {
    public let tokenizer: Tokenizer
    /// Whether special tokens (`<|im_end|>`, …) are left out of the text, as `decode(skip_special_tokens=True)`.
    public let skipSpecialTokens: Bool
    private var window: [Int]
    /// `window[..<readOffset]` has been emitted; `window[..<prefixOffset]` is context only.
    private var prefixOffset: Int
    private var readOffset: Int

    /// `context` is the end of the prompt (a few tokens), so the first generated token decodes as it would
    /// after it (decoders such as Metaspace treat the first token of a text differently).
    public init(tokenizer: Tokenizer, context: [Int] = [], skipSpecialTokens: Bool = true) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
        window = Array(context.suffix(6))
        prefixOffset = 0
        readOffset = window.count
    }

    /// The new text that `token` completes (empty while a character is incomplete).
    public mutating func append(_ token: Int) -> String {
        window.append(token)
        let before = tokenizer.decode(Array(window[prefixOffset..<readOffset]), skipSpecialTokens: skipSpecialTokens)
        let after = tokenizer.decode(Array(window[prefixOffset...]), skipSpecialTokens: skipSpecialTokens)
        guard after.utf8.count > before.utf8.count, !after.hasSuffix("\u{FFFD}"), after.utf8.starts(with: before.utf8) else {
            return ""
        }
        let text = String(decoding: after.utf8.dropFirst(before.utf8.count), as: UTF8.self)
        // keep the window short: the emitted tokens become the next step's context
        window.removeFirst(prefixOffset)
        prefixOffset = readOffset - prefixOffset
        readOffset = window.count
        return text
    }

    /// Text still held back at the end of generation (an incomplete character decodes as U+FFFD).
    public mutating func finish() -> String {
        let before = tokenizer.decode(Array(window[prefixOffset..<readOffset]), skipSpecialTokens: skipSpecialTokens)
        let after = tokenizer.decode(Array(window[prefixOffset...]), skipSpecialTokens: skipSpecialTokens)
        readOffset = window.count
        guard after.utf8.count > before.utf8.count, after.utf8.starts(with: before.utf8) else { return "" }
        return String(decoding: after.utf8.dropFirst(before.utf8.count), as: UTF8.self)
    }
}

/// Watches streamed text for stop strings: passes on text that cannot be the start of one, holds back
/// text that might be, and reports the text before the first stop string once one appears.
public struct StopStringFilter {
    public let stops: [String]
    private var pending = ""

    public init(stops: [String]) { self.stops = stops.filter { !$0.isEmpty } }

    /// The text that is safe to show now, and whether a stop string has appeared (the text before it is
    /// then the last text to show; the stop string itself is not shown).
    public mutating func feed(_ text: String) -> (text: String, stopped: Bool) {
        pending += text
        let bytes = Array(pending.utf8)
        var firstStop: Int?
        for stop in stops {
            if let at = PythonString.find(bytes, Array(stop.utf8)), at < (firstStop ?? .max) { firstStop = at }
        }
        if let firstStop {
            pending = ""
            return (String(decoding: bytes[..<firstStop], as: UTF8.self), true)
        }
        // hold back the longest end of the text that begins some stop string
        var hold = 0
        for stop in stops {
            let s = Array(stop.utf8)
            for k in stride(from: min(s.count - 1, bytes.count), to: hold, by: -1) where bytes[(bytes.count - k)...].elementsEqual(s[..<k]) {
                hold = k
                break
            }
        }
        // never split a UTF-8 character: move the cut back to a character boundary
        var cut = bytes.count - hold
        while cut > 0, cut < bytes.count, bytes[cut] & 0xC0 == 0x80 { cut -= 1 }
        pending = String(decoding: bytes[cut...], as: UTF8.self)
        return (String(decoding: bytes[..<cut], as: UTF8.self), false)
    }

    /// Whatever is held back, once generation has ended without a stop string.
    public mutating func finish() -> String {
        defer { pending = "" }
        return pending
    }
}
