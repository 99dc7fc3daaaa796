import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import AmalgamTestSupport
import Testing

/// A fixture's weights with one tensor hidden or replaced, to see what loading says.
private struct AlteredSource: TensorSource {
    let base: SafetensorsCheckpoint
    let name: String
    let replacement: Tensor?
    var path: String { base.path }
    var tensorInfos: [TensorInfo] { base.tensorInfos.filter { $0.name != name } + (replacement.map { [TensorInfo(name: name, dtype: $0.dtype, shape: $0.shape)] } ?? []) }
    func info(_ n: String) -> TensorInfo? { tensorInfos.first { $0.name == n } }
    func tensor(_ n: String) throws(CheckpointError) -> Tensor {
        if n == name, let replacement { return replacement }
        guard n != name else { throw .tensorNotFound(path: path, tensor: n) }
        return try base.tensor(n)
    }
}

@Test("a missing or misshapen weight is named, with both shapes")
func loadingErrorsNameTheTensor() throws {
    let folder = try ModelFolder(path: modelFixture("llama"))
    let up = "model.layers.1.mlp.up_proj.weight"
    #expect(throws: ModelError.missingTensor(path: folder.weights.path, tensor: up)) {
        try LlamaModel(config: folder.config, weights: AlteredSource(base: folder.weights, name: up, replacement: nil))
    }
    #expect(throws: ModelError.shapeMismatch(path: folder.weights.path, tensor: up, expected: [64, 32], actual: [32, 64])) {
        try LlamaModel(config: folder.config, weights: AlteredSource(base: folder.weights, name: up, replacement: Tensor(zeros: .f32, shape: [32, 64])))
    }
    #expect(throws: ModelError.unsupportedDType(path: folder.weights.path, tensor: up, dtype: .i32)) {
        try LlamaModel(config: folder.config, weights: AlteredSource(base: folder.weights, name: up, replacement: Tensor(zeros: .i32, shape: [64, 32])))
    }
}

@Test("a model loads from any TensorSource, here one that converts every weight to bf16 in memory")
func bf16InMemorySourceMatches() throws {
    let folder = try ModelFolder(path: modelFixture("llama-bf16"))
    struct Converted: TensorSource {
        let base: SafetensorsCheckpoint
        var path: String { base.path }
        var tensorInfos: [TensorInfo] { base.tensorInfos }
        func info(_ n: String) -> TensorInfo? { base.info(n) }
        func tensor(_ n: String) throws(CheckpointError) -> Tensor { try base.tensor(n).converted(to: .f32) }
    }
    let fromF32 = try LlamaModel(config: folder.config, weights: Converted(base: folder.weights))
    let fromBF16 = try LlamaModel(folder: modelFixture("llama-bf16"))
    let batch = try TokenBatch([[1, 2, 3, 4, 5, 6], [7, 8]])
    let a = try fromF32.logits(batch), b = try fromBF16.logits(batch)
    #expect(zip(a.values, b.values).map { abs($0 - $1) }.max()! <= 1e-5)
}
