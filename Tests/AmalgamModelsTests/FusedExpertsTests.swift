import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import AmalgamTestSupport
import Foundation
import Testing

/// The MoE families read from the fused expert layout mergekit 0.1.5 writes (transformers 5's in-memory
/// layout): `mlp.experts.gate_up_proj` [E, 2I, H] (each expert's gate rows, then its up rows),
/// `mlp.experts.down_proj` [E, H, I], Mixtral's router as `mlp.gate.weight`. The family fixtures (saved
/// per expert by transformers) are rewritten fused, as transformers' conversion_mapping fuses them on
/// load, and must still give transformers' logits.
@Suite struct FusedExpertsTests {
    /// `folder`'s model with its experts fused (and Mixtral's `block_sparse_moe.` renamed `mlp.`), in `out`.
    static func writeFused(_ folder: String, mixtral: Bool, into out: String) throws {
        let weights = try ModelFolder.openWeights(folder: folder)
        let (g, u, d) = mixtral ? ("w1", "w3", "w2") : ("gate_proj", "up_proj", "down_proj")
        var infos: [TensorInfo] = []
        var fused: [String: Tensor] = [:]
        for info in weights.tensorInfos {
            let name = mixtral ? info.name.replacingOccurrences(of: ".block_sparse_moe.", with: ".mlp.") : info.name
            guard let range = name.range(of: ".mlp.experts.") else {
                infos.append(TensorInfo(name: name, dtype: info.dtype, shape: info.shape))
                fused[name] = try weights.tensor(info.name)
                continue
            }
            let prefix = String(name[..<range.upperBound])
            guard fused[prefix + "gate_up_proj"] == nil else { continue }
            let stored = info.name[..<info.name.range(of: ".experts.")!.upperBound]
            var gateUp: [Float] = [], down: [Float] = []
            var e = 0
            var shape: [Int] = []
            while weights.info(stored + "\(e).\(g).weight") != nil {
                let gate = try weights.tensor(stored + "\(e).\(g).weight")
                shape = gate.shape
                gateUp += gate.floats() + (try weights.tensor(stored + "\(e).\(u).weight").floats())
                down += try weights.tensor(stored + "\(e).\(d).weight").floats()
                e += 1
            }
            let (i, h) = (shape[0], shape[1])
            fused[prefix + "gate_up_proj"] = Tensor(gateUp, shape: [e, 2 * i, h])
            fused[prefix + "down_proj"] = Tensor(down, shape: [e, h, i])
            infos.append(TensorInfo(name: prefix + "gate_up_proj", dtype: .f32, shape: [e, 2 * i, h]))
            infos.append(TensorInfo(name: prefix + "down_proj", dtype: .f32, shape: [e, h, i]))
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let writer = try CheckpointWriter(directory: out, tensors: infos)
        for info in infos { try writer.write(info.name, tensor: fused[info.name]!) }
        try writer.finish()
        try FileManager.default.copyItem(atPath: folder + "/config.json", toPath: out + "/config.json")
    }

    @Test(arguments: ["mixtral", "qwen2-moe", "qwen3-moe"])
    func theFusedLayoutGivesTransformersLogits(_ name: String) throws {
        let fixture = try FamilyFixture(name)
        let root = temporaryFolder("fused-experts-\(name)")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.writeFused(fixture.folder, mixtral: name == "mixtral", into: root)
        let weights = try ModelFolder.openWeights(folder: root)
        #expect(weights.tensorNames.contains { $0.hasSuffix("mlp.experts.gate_up_proj") })
        #expect(!weights.tensorNames.contains { $0.contains("experts.0.") || $0.contains("block_sparse_moe") })
        let model = try LlamaModel(folder: root)
        let ours = try model.logits(fixture.batch)
        let difference = fixture.maxDifference(ours)
        #expect(difference <= 1e-4, "\(name) fused: max |ours − transformers| = \(difference)")
        // The same weights, read from either layout, give the same logits bit for bit.
        #expect(ours.values == (try LlamaModel(folder: fixture.folder).logits(fixture.batch)).values)
    }

    /// What `amalgam moe` writes (mergekit-moe's fused layout, fixtures/moe/expected) opens in the engine
    /// (before the fused reader it did not) and gives finite logits.
    @Test(arguments: ["mixtral-cheap-embed", "qwen3-moe-cheap-embed"])
    func mergekitMoEOutputsOpen(_ name: String) throws {
        let model = try LlamaModel(folder: fixturePath("moe/expected/" + name))
        let batch = try TokenBatch(padded: [[1, 5, 9, 12, 30]], mask: [[1, 1, 1, 1, 1]])
        let logits = try model.logits(batch)
        #expect(logits.values.allSatisfy(\.isFinite) && logits.values.contains { $0 != 0 })
    }

    /// A fused tensor of the wrong shape is an error naming it.
    @Test func aFusedTensorOfTheWrongShapeIsNamed() throws {
        let fixture = try FamilyFixture("qwen3-moe")
        let root = temporaryFolder("fused-experts-bad")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.writeFused(fixture.folder, mixtral: false, into: root + "/good")
        let weights = try ModelFolder.openWeights(folder: root + "/good")
        let bad = "model.layers.0.mlp.experts.down_proj"
        let infos = weights.tensorInfos.map { $0.name == bad ? TensorInfo(name: bad, dtype: .f32, shape: [$0.shape[0], $0.shape[2], $0.shape[1]]) : $0 }
        try FileManager.default.createDirectory(atPath: root + "/bad", withIntermediateDirectories: true)
        let writer = try CheckpointWriter(directory: root + "/bad", tensors: infos)
        for info in infos {
            let t = try weights.tensor(info.name)
            try writer.write(info.name, tensor: info.name == bad ? Tensor(t.floats(), shape: info.shape) : t)
        }
        try writer.finish()
        try FileManager.default.copyItem(atPath: root + "/good/config.json", toPath: root + "/bad/config.json")
        #expect {
            _ = try LlamaModel(folder: root + "/bad")
        } throws: { error in "\(error)".contains(bad) }
    }
}
