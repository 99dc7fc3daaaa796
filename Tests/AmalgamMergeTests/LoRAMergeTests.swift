import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamTestSupport
import Foundation
import Testing

/// A config naming `model+adapter` (mergekit's LoRA syntax) merges the model with the PEFT adapter applied
/// as mergekit 0.1.5 applies it (fixtures/lora, made by scripts/fixtures/make_lora_fixtures.py).
/// Tolerance: `expectSameTensors`' 1e-5 relative in f32 (mergekit computes (B·A)·s then adds; we add
/// s·B·A in one sgemm, a different rounding order, ≈1e-7) and one bf16 step in bf16 (both round W + s·B·A
/// once from f32, so values can differ only where the f32 sums straddle a rounding boundary).
@Suite struct LoRAMergeTests {
    @Test(arguments: ["passthrough-rslora", "passthrough-save", "passthrough-rslora-bf16", "linear", "ties"])
    func aConfigWithModelPlusAdapterGivesMergekitsTensors(_ name: String) throws {
        let out = try runMerge(try fixtureConfig("lora/configs/\(name).yml"))
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        try expectSameTensors(out, fixturesDirectory + "/lora/expected/\(name)")
    }

    @Test func theLongFormWithLoraNamesTheSameModel() throws {
        let base = fixturesDirectory + "/merge/models/base-f32"
        let adapter = fixturesDirectory + "/lora/adapters/save"
        let config = try MergeConfig(yaml: """
            merge_method: passthrough
            models:
            - model: {model: {path: \(base)}, lora: {path: \(adapter)}}
            """)
        #expect(config.referencedModels == [base + "+" + adapter])
        let out = try runMerge(config)
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        try expectSameTensors(out, fixturesDirectory + "/lora/expected/passthrough-save")
    }

    @Test func anAdapterLeavesUntouchedTensorsAsTheBaseHasThem() throws {
        let plain = try ModelSource.open(fixturesDirectory + "/merge/models/base-f32")
        let adapted = try ModelSource.open(fixturesDirectory + "/merge/models/base-f32+" + fixturesDirectory + "/lora/adapters/save")
        #expect(adapted.tensors.tensorNames == plain.tensors.tensorNames)
        let untouched = "model.layers.0.self_attn.q_proj.weight"
        #expect(try adapted.tensors.tensor(untouched).byteArray == plain.tensors.tensor(untouched).byteArray)
        let touched = "model.layers.0.self_attn.k_proj.weight"
        #expect(try adapted.tensors.tensor(touched).byteArray != plain.tensors.tensor(touched).byteArray)
    }

    @Test func aDoRAAdapterIsRefusedNamingTheKey() throws {
        let message = openError(fixturesDirectory + "/merge/models/base-f32+" + fixturesDirectory + "/lora/adapters/dora")
        #expect(message.contains("adapters/dora/adapter_config.json: 'use_dora'"), "\(message)")
    }

    @Test func anAdapterForAnotherModelNamesTheTensorThatDoesNotFit() throws {
        // The rslora adapter was made for a 16-wide model; this base is 64 wide.
        let message = openError(fixturesDirectory + "/lora/extract/base-bf16+" + fixturesDirectory + "/lora/adapters/rslora")
        #expect(message.contains("adapter_model.safetensors: tensor 'base_model.model."), "\(message)")
        #expect(message.contains("give the base it was made for"), "\(message)")
    }

    @Test func aMissingAdapterFileIsNamed() throws {
        let folder = temporaryFolder("lora-missing")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixturesDirectory + "/lora/adapters/save/adapter_config.json", toPath: folder + "/adapter_config.json")
        let message = openError(fixturesDirectory + "/merge/models/base-f32+" + folder)
        #expect(message.contains(folder + ": no adapter_model.safetensors"), "\(message)")
        #expect(openError(fixturesDirectory + "/merge/models/base-f32+" + folder + "/absent").contains(folder + "/absent"))
    }

    @Test func anAdapterChangingAModuleTheBaseLacksIsNamed() throws {
        // Layer 7 of a 2-layer base.
        let folder = temporaryFolder("lora-nomodule")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let config = try String(contentsOfFile: fixturesDirectory + "/lora/adapters/save/adapter_config.json", encoding: .utf8)
        try config.write(toFile: folder + "/adapter_config.json", atomically: true, encoding: .utf8)
        try SafetensorsWriter.save([
            ("base_model.model.model.layers.7.self_attn.k_proj.lora_A.weight", Tensor([Float](repeating: 1, count: 32), shape: [2, 16])),
            ("base_model.model.model.layers.7.self_attn.k_proj.lora_B.weight", Tensor([Float](repeating: 1, count: 16), shape: [8, 2])),
        ], to: folder + "/adapter_model.safetensors")
        let message = openError(fixturesDirectory + "/merge/models/base-f32+" + folder)
        #expect(message.contains("changes 'model.layers.7.self_attn.k_proj'"), "\(message)")
    }

    private func openError(_ reference: String) -> String {
        do {
            _ = try ModelSource.open(reference)
            Issue.record("expected an error for \(reference)")
            return ""
        } catch { return error.description }
    }
}
