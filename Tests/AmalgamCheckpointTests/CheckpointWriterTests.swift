import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Dispatch
import Foundation
import Testing

/// Sharded folders byte for byte as transformers 5.23 `save_pretrained(max_shard_size=…)` writes them.
struct CheckpointWriterTests {
    /// The tiny Llama's tensors in its state-dict order (what save_pretrained walks), read from the
    /// single-file save.
    func stateDict() throws -> (SafetensorsFile, [TensorInfo]) {
        let single = try SafetensorsFile(path: safetensorsFixtures + "/tiny-llama/model.safetensors")
        let order = referenceValues["tiny-llama"]!["state_dict_order"]!.arrayValue!.map { $0.stringValue! }
        return (single, order.map { single.info($0)! })
    }

    func writeFolder(maxShardSize: Int, into dir: String) throws -> CheckpointWriter {
        let (single, infos) = try stateDict()
        let writer = try CheckpointWriter(directory: dir, tensors: infos, maxShardSize: maxShardSize)
        // From two threads, in reverse order: the layout is fixed up front, so arrival order is free.
        let names = infos.map(\.name).reversed()
        let failures = Lock()
        nonisolated(unsafe) var errors: [Error] = []
        DispatchQueue.concurrentPerform(iterations: 2) { part in
            for (i, name) in names.enumerated() where i % 2 == part {
                do { try writer.write(name, tensor: single.tensor(name)) } catch { failures.withLock { errors.append(error) } }
            }
        }
        #expect(errors.isEmpty)
        try writer.finish()
        return writer
    }

    @Test(arguments: [("tiny-llama-sharded", "20KB"), ("tiny-llama-sharded-5KB", "5KB")])
    func shardsAndIndexMatchSavePretrained(folder: String, size: String) throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try writeFolder(maxShardSize: try parseShardSize(size), into: dir)
        let reference = safetensorsFixtures + "/" + folder
        let expectedFiles = try folderFiles(reference).filter { $0.hasPrefix("model") }
        #expect(try folderFiles(dir) == expectedFiles)
        #expect(writer.shardNames == expectedFiles.filter { $0.hasSuffix(".safetensors") })
        for name in expectedFiles {
            #expect(try fileBytes(dir + "/" + name) == fileBytes(reference + "/" + name), "\(name)")
        }
        let index = try JSONValue.parse(try fileBytes(dir + "/model.safetensors.index.json"))
        #expect(index["metadata"]?["total_parameters"]?.intValue == referenceValues["tiny-llama"]!["num_parameters"]!.intValue)
    }

    @Test func oneShardIsModelSafetensorsWithoutAnIndex() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try writeFolder(maxShardSize: 5_000_000_000, into: dir)
        #expect(try folderFiles(dir) == ["model.safetensors"])
        #expect(try fileBytes(dir + "/model.safetensors") == fileBytes(safetensorsFixtures + "/tiny-llama/model.safetensors"))
    }

    /// huggingface_hub's `parse_size_to_int` (what save_pretrained applies to a string), and transformers'
    /// `convert_file_size_to_int` for the binary units hub does not know.
    @Test func parseShardSizeMatchesTheReference() throws {
        let sizes = referenceValues["shard_sizes"]!
        for (text, bytes) in sizes["huggingface_hub"]!.objectValue! {
            #expect(try parseShardSize(text) == bytes.intValue!, "\(text)")
        }
        for (text, bytes) in sizes["transformers"]!.objectValue! where text.uppercased().hasSuffix("IB") || text.hasSuffix("B") {
            #expect(try parseShardSize(text) == bytes.intValue!, "\(text)")
        }
        #expect(try parseShardSize("123456") == 123456)
        for bad in ["", "GB", "-5GB", "5XB", "0", "abc", "0.0001KB"] {
            #expect(throws: CheckpointError.invalidShardSize(bad)) { try parseShardSize(bad) }
        }
    }

    @Test func writingATensorOutsideThePlanIsAnError() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try CheckpointWriter(directory: dir, tensors: [TensorInfo(name: "w", dtype: .bf16, shape: [2])])
        #expect { try writer.write("other", tensor: Tensor([1], shape: [1])) } throws: { error in
            "\(error)".contains("'other'") && "\(error)".contains(dir)
        }
        #expect(throws: CheckpointError.self) { try writer.finish() }
    }
}
