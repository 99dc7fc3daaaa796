import AmalgamCheckpoint
import AmalgamTokenizer
import FuzzSupport

// A GGUF file: header, metadata, tensor infos, every small tensor read (dequantized), then what
// `amalgam convert`/`merge` read from it: the Llama view and config, the tokenizer files, the chat templates.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGGUF(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    FuzzInput.withFile(data, size, name: "model.gguf") { path in
        guard let file = try? GGUFFile(path: path) else { return }
        for info in file.tensorInfos where info.elementCount <= 1 << 20 {
            _ = try? file.tensor(info.name)
        }
        if let source = try? GGUFLlamaSource(file: file) {
            _ = try? source.huggingFaceConfig(dtype: .f32)
        }
        if let (tokenizer, _) = try? GGUFLlamaTokenizer.huggingFaceFiles(from: file, contextLength: nil) {
            if let t = try? Tokenizer(json: tokenizer, path: path) {
                _ = t.decode(t.encode("Hello world, 123 ünïcode"))
            }
        }
        let strings = file.metadata.compactMap { kv in kv.value.stringValue.map { (key: kv.key, value: $0) } }
        _ = ChatTemplateSet(ggufMetadata: strings, path: path)
    }
    return 0
}

// SwiftPM renames an executable's main to FuzzGGUF_main; libFuzzer's driver takes over from there.
@_cdecl("FuzzGGUF_main")
public func FuzzGGUFMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzzGGUF)
}
