import AmalgamCore
import FuzzSupport
import AmalgamTokenizer

// A tokenizer.json: built, then a few texts encoded and decoded (normalizers, pre-tokenizers and their
// split patterns, BPE merges, added tokens, post-processor, decoder).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizerJSON(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    guard let json = try? JSONValue.parse(UnsafeRawBufferPointer(start: data, count: size)),
          let tokenizer = try? Tokenizer(json: json, path: "tokenizer.json") else { return 0 }
    for text in ["Hello world! It's 2026.", "  ünïcödé 你好\n\ttabs  ", "<|im_start|>user\nhi<|im_end|>", ""] {
        let ids = tokenizer.encode(text)
        _ = tokenizer.decode(ids)
        _ = tokenizer.decode(ids, skipSpecialTokens: true)
    }
    _ = tokenizer.decode(Array(0..<min(tokenizer.vocabularySize + 2, 64)))
    return 0
}

// SwiftPM renames an executable's main to FuzzTokenizerJSON_main; libFuzzer's driver takes over from there.
@_cdecl("FuzzTokenizerJSON_main")
public func FuzzTokenizerJSONMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzzTokenizerJSON)
}
