import AmalgamCore
import FuzzSupport

// The JSON parser every JSON reader uses (config.json, tokenizer.json, index files, task lines).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    if let value = try? JSONValue.parse(UnsafeRawBufferPointer(start: data, count: size)) {
        // Writing it back, and reading that again, must not crash either.
        let text = value.pythonText()
        _ = try? JSONValue.parse(text)
    }
    return 0
}

// SwiftPM renames an executable's main to FuzzJSON_main; libFuzzer's driver takes over from there.
@_cdecl("FuzzJSON_main")
public func FuzzJSONMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzzJSON)
}
