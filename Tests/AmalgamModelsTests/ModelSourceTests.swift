import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import AmalgamTestSupport
import Foundation
import Testing

/// One way to open a model: a folder, the same weights split into shards, its single `.safetensors` file
/// and the GGUF transformers made that folder from (fixtures/gguf) all give the same tensors and logits.
@Suite struct ModelSourceTests {
    let gguf = fixturesDirectory + "/gguf/tiny-llama.gguf"
    let folder = fixturesDirectory + "/gguf/tiny-llama-hf"
    let ids = [[1, 17, 42, 99, 3, 250, 8], [1, 5, 6]]

    /// The folder's weights written again in shards of at most 20 kB, beside a copy of its config.json.
    func shardedCopy() throws -> String {
        let out = NSTemporaryDirectory() + "amalgam-modelsource-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let source = try ModelFolder(path: folder).weights
        let writer = try CheckpointWriter(directory: out, tensors: source.tensorInfos, maxShardSize: 20_000)
        for info in source.tensorInfos { try writer.write(info.name, tensor: source.tensor(info.name)) }
        try writer.finish()
        try FileManager.default.copyItem(atPath: folder + "/config.json", toPath: out + "/config.json")
        return out
    }

    @Test func aFolderItsShardsItsSafetensorsFileAndItsGGUFOpenAlike() throws {
        let sharded = try shardedCopy()
        defer { try? FileManager.default.removeItem(atPath: sharded) }
        let plain = try ModelSource.open(folder)
        let opened = [plain, try ModelSource.open(sharded), try ModelSource.open(folder + "/model.safetensors"), try ModelSource.open(gguf)]
        #expect(opened.map(\.kind) == [.folder, .shardedFolder, .safetensorsFile, .gguf])
        let reference = try LlamaModel(source: plain).logits(TokenBatch(ids)).values
        for source in opened {
            #expect(Set(source.tensors.tensorNames) == Set(plain.tensors.tensorNames), "\(source.path)")
            #expect(source.layerCount == 2 && source.config.vocabSize == 272, "\(source.path)")
            for name in plain.tensors.tensorNames {
                #expect(try source.tensors.tensor(name).floats() == plain.tensors.tensor(name).floats(), "\(source.path): \(name)")
            }
            let logits = try LlamaModel(source: source).logits(TokenBatch(ids)).values
            if source.kind == .gguf {
                // the GGUF keeps its F16 tensors in F16 (read in place), so the products round differently
                let worst = zip(logits, reference).map { abs($0 - $1) }.max()!
                #expect(worst < 1e-4, "\(source.path): max |Δ logit| \(worst)")
            } else {
                #expect(logits == reference, "\(source.path)")
            }
        }
    }

    @Test func companionFilesComeFromTheFolderOrFromTheGGUFMetadata() throws {
        let plain = try ModelSource.open(folder)
        #expect(plain.companions.contains("tokenizer.json") && plain.companions.contains("chat_template.jinja"))
        #expect(try plain.companionBytes("tokenizer.json") == Array(Data(contentsOf: URL(fileURLWithPath: folder + "/tokenizer.json"))))
        let single = try ModelSource.open(folder + "/model.safetensors")
        #expect(single.companions == plain.companions && single.companionFolder == folder)
        let g = try ModelSource.open(gguf)
        #expect(g.companionFolder == nil && g.companions == ["tokenizer.json", "tokenizer_config.json"])
        #expect(g.companionText("tokenizer.json")?.contains("\"model\"") == true)
        #expect(g.config.raw["tie_word_embeddings"]?.boolValue == false)
        #expect(g.companionText("chat_template.jinja") == nil)
    }

    @Test func aReferenceThatIsNotOnDiskIsNamed() throws {
        // A path that cannot be a Hugging Face name (three components) is a local path that is not there.
        #expect(throws: CheckpointError.modelNotFound(reference: "models/org/no-such-model")) { try ModelSource.open("models/org/no-such-model") }
        // (`org/name` is a Hugging Face name: HubCacheTests check its errors with an explicit environment.)
        // a relative reference is tried against the base folder (configs that name models beside them)
        let source = try ModelSource.open("tiny-llama-hf", relativeTo: fixturesDirectory + "/gguf")
        #expect(source.path == fixturesDirectory + "/gguf/tiny-llama-hf" && source.reference == "tiny-llama-hf")
    }

    @Test func aSafetensorsFileWithoutAConfigBesideItIsRefusedNamingTheConfig() throws {
        let dir = NSTemporaryDirectory() + "amalgam-modelsource-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: folder + "/model.safetensors", toPath: dir + "/weights.safetensors")
        do {
            _ = try ModelSource.open(dir + "/weights.safetensors")
            Issue.record("opened a .safetensors file with no config.json beside it")
        } catch {
            #expect(error.description.contains(dir + "/config.json"), "\(error)")
        }
    }
}
