import AmalgamCheckpoint
import Foundation
import FuzzSupport

// A PEFT adapter's adapter_config.json (rank and alpha patterns, target modules, DoRA/rsLoRA flags), read
// beside a fixed valid adapter_model.safetensors (the rsLoRA fixture adapter) so the whole folder reader runs.
nonisolated(unsafe) private var weightsCopied = false

private func copyFixtureWeights(into folder: String) {
    // This file is Fuzz/Sources/FuzzAdapterConfig/FuzzAdapterConfig.swift; the repository is three folders up.
    let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    let source = repository.appendingPathComponent("fixtures/lora/adapters/rslora/adapter_model.safetensors")
    guard let bytes = try? Data(contentsOf: source) else {
        fatalError("FuzzAdapterConfig needs \(source.path) (the repository's fixtures)")
    }
    let target = (folder as NSString).appendingPathComponent("adapter_model.safetensors")
    guard FileManager.default.createFile(atPath: target, contents: bytes) else { fatalError("cannot write \(target)") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAdapterConfig(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    if !weightsCopied {
        copyFixtureWeights(into: FuzzInput.scratchFolder)
        weightsCopied = true
    }
    FuzzInput.withFile(data, size, name: "adapter_config.json") { path in
        _ = try? LoRAAdapter(folder: (path as NSString).deletingLastPathComponent)
    }
    return 0
}

// SwiftPM renames an executable's main to FuzzAdapterConfig_main; libFuzzer's driver takes over from there.
@_cdecl("FuzzAdapterConfig_main")
public func FuzzAdapterConfigMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzzAdapterConfig)
}
