import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamTestSupport
import Foundation
import Testing

/// A config naming `model+adapter` (mergekit's LoRA syntax) merges the model with the PEFT adapter applied
/// as mergekit 0.1.5 applies it (fixtures/lora, made by scripts/fixtures/make_lora_fixtures.py).
/// Tolerance: `expectSameTensors`' 1e-5 relative in f32 (mergekit computes (B·A)·s then adds; we add
/// s·B·A in one sgemm, a different rounding order), plus the rounding allowance of that f32 sum where its
/// terms are large (`roundingAllowance`), and one bf16 step in bf16 (both round W + s·B·A
/// once from f32, so values can differ only where the f32 sums straddle a rounding boundary).
@Suite struct LoRAMergeTests {
    @Test(arguments: ["passthrough-rslora", "passthrough-save", "passthrough-rslora-bf16", "linear", "ties"])
    func aConfigWithModelPlusAdapterGivesMergekitsTensors(_ name: String) throws {
        let out = try runMerge(try fixtureConfig("lora/configs/\(name).yml"))
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        // A passthrough output is W + s·B·A itself: allow for the rounding of that f32 sum.
        let adapter = ["passthrough-rslora": "rslora", "passthrough-save": "save"][name]
        let allowance = try adapter.map { try roundingAllowance(base: fixturesDirectory + "/merge/models/base-f32",
                                                                adapter: fixturesDirectory + "/lora/adapters/" + $0) } ?? [:]
        try expectSameTensors(out, fixturesDirectory + "/lora/expected/\(name)", allowance: allowance)
    }

    /// Per element of each tensor the adapter changes, what two correct f32 evaluations of W + Σₖ s·Bₒₖ·Aₖᵢ can
    /// differ by: each is within γ(rank + 2) · (|W| + Σₖ |s·Bₒₖ·Aₖᵢ|) of the exact sum (Higham, γ(n) ≈ n·2⁻²⁴),
    /// whatever the order of its operations (mergekit: (B·A)·s, then + W; Amalgam: one sgemm with the scale,
    /// onto W; either in the order of its BLAS kernels). Where the rank products are large and cancel, that
    /// is far above 1e-5 of the result: an element of the rslora embedding is 0.068 from products summing
    /// to 15.8 in magnitude, and differs by 1.2e-6 between OpenBLAS's Haswell and SkylakeX kernels.
    func roundingAllowance(base: String, adapter folder: String) throws -> [String: [Double]] {
        let adapter = try LoRAAdapter(folder: folder)
        try #require(!adapter.fanInFanOut, "the fixtures' adapters are not fan_in_fan_out")
        let weights = try ModelSource.open(base).tensors
        var allowance: [String: [Double]] = [:]
        for (name, update) in adapter.updates {
            let w = try weights.tensor(name).floats(), shape = try #require(weights.info(name)).shape
            let a = try adapter.tensors.tensor(update.a).floats(), b = try adapter.tensors.tensor(update.b).floats()
            let r = update.rank, columns = shape[1]
            let gamma = 2 * Double(r + 2) * 0x1p-24
            allowance[name] = (0..<w.count).map { e in
                let (row, column) = (e / columns, e % columns)
                // Linear: W[out, in] += s·B[out, k]·A[k, in]. Embedding: W[token, hidden] += s·A[k, token]·B[hidden, k].
                let products = (0..<r).reduce(0.0) { sum, k in
                    let (bk, ak) = update.isEmbedding ? (b[column * r + k], a[k * shape[0] + row]) : (b[row * r + k], a[k * columns + column])
                    return sum + abs(update.scale * Double(bk) * Double(ak))
                }
                return gamma * (abs(Double(w[e])) + products)
            }
        }
        return allowance
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
