import AmalgamCheckpoint
import FuzzSupport

// A .safetensors file: the header, then every tensor read (bounds, dtypes, sizes).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    FuzzInput.withFile(data, size, name: "model.safetensors") { path in
        guard let file = try? SafetensorsFile(path: path) else { return }
        for info in file.tensorInfos where info.elementCount <= 1 << 20 {
            _ = try? file.tensor(info.name)
        }
    }
    return 0
}

// SwiftPM renames an executable's main to FuzzSafetensors_main; libFuzzer's driver takes over from there.
@_cdecl("FuzzSafetensors_main")
public func FuzzSafetensorsMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzzSafetensors)
}
