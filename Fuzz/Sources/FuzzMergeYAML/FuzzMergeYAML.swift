import AmalgamMerge
import FuzzSupport

// A mergekit YAML config: one document, and the multi-document (mergekit-mega) reader.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMergeYAML(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    _ = try? MergeConfig(yaml: FuzzInput.text(data, size), path: "merge.yaml")
    FuzzInput.withFile(data, size, name: "merge.yaml") { path in
        _ = try? MergeConfig.stages(contentsOf: path)
    }
    return 0
}

// SwiftPM renames an executable's main to FuzzMergeYAML_main; libFuzzer's driver takes over from there.
@_cdecl("FuzzMergeYAML_main")
public func FuzzMergeYAMLMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzzMergeYAML)
}
