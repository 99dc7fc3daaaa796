import AmalgamEval
import FuzzSupport

// An evaluation task file (a JSON header line, then one JSON example per line).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTaskFile(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    _ = try? EvalTask(text: FuzzInput.text(data, size), path: "task.jsonl")
    return 0
}

// SwiftPM renames an executable's main to FuzzTaskFile_main; libFuzzer's driver takes over from there.
@_cdecl("FuzzTaskFile_main")
public func FuzzTaskFileMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzzTaskFile)
}
