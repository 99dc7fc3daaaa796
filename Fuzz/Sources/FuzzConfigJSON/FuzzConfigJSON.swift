import AmalgamCheckpoint
import FuzzSupport

// A model's config.json, and the typed Llama-family view of it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigJSON(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    FuzzInput.withFile(data, size, name: "config.json") { path in
        guard let config = try? ModelConfig(contentsOf: path) else { return }
        _ = config.jsonText()
        _ = config.dtype
        _ = config.numHiddenLayers
        _ = try? config.llama()
    }
    return 0
}

// SwiftPM renames an executable's main to FuzzConfigJSON_main; libFuzzer's driver takes over from there.
@_cdecl("FuzzConfigJSON_main")
public func FuzzConfigJSONMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzzConfigJSON)
}
