import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// Writing the same tensors and metadata gives the same bytes as the Python `safetensors` library.
struct SafetensorsWriterTests {
    static let files = ["all_dtypes.safetensors", "scalars_empty.safetensors", "numpy_meta.safetensors", "multi_meta.safetensors",
                        "no_tensors.safetensors", "metadata_only.safetensors"]

    /// Where written files also go when AMALGAM_VERIFY_DIR is set, for
    /// `make_safetensors_fixtures.py --verify DIR` (the reference library reading our files).
    func keepForVerification(_ path: String, as name: String) {
        guard let dir = ProcessInfo.processInfo.environment["AMALGAM_VERIFY_DIR"] else { return }
        let target = dir + "/" + name
        try? FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: target)
        try? FileManager.default.copyItem(atPath: path, toPath: target)
    }

    /// Read theirs, write it again: identical bytes.
    @Test(arguments: files)
    func rewritingAReferenceFileGivesItsBytes(file: String) throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let reference = safetensorsFixtures + "/" + file
        let reader = try SafetensorsFile(path: reference)
        let tensors = try reader.tensorNames.reversed().map { ($0, try reader.tensor($0)) }
        // The crate keeps metadata in a HashMap, so its order is whatever the file holds; no
        // `__metadata__` at all when the file has none.
        try SafetensorsWriter.save(tensors, to: dir + "/out.safetensors", metadata: reader.metadata.isEmpty ? nil : reader.metadata)
        #expect(try fileBytes(dir + "/out.safetensors") == fileBytes(reference))
    }

    /// Built from the reference values alone (not from their file), in the order the script created
    /// them: identical bytes, so layout, header text and padding are ours, not copied.
    @Test(arguments: ["all_dtypes.safetensors", "scalars_empty.safetensors", "numpy_meta.safetensors", "no_tensors.safetensors",
                      "metadata_only.safetensors"])
    func writingTheReferenceValuesGivesTheirBytes(file: String) throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let values = referenceValues[file]!
        let tensors = values["tensors"]!.objectValue!.map { name, v in
            (name, tensor(dtype: DType(rawValue: v["dtype"]!.stringValue!)!, shape: v["shape"]!.arrayValue!.map { $0.intValue! },
                          bits: v["bits"]!.arrayValue!.map(unsigned)))
        }
        let metadata = values["metadata"]!.arrayValue?.map { ($0.arrayValue![0].stringValue!, $0.arrayValue![1].stringValue!) }
        try SafetensorsWriter.save(tensors, to: dir + "/out.safetensors", metadata: metadata)
        #expect(try fileBytes(dir + "/out.safetensors") == fileBytes(safetensorsFixtures + "/" + file))
        keepForVerification(dir + "/out.safetensors", as: file)
    }

    /// Streaming: tensors arrive in any order, some as f32 to be converted; same bytes. The layout is
    /// given in seeded shuffled orders (the writer sorts it as safetensors does), so a failure repeats.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func streamingInAnyOrderWithConversion(seed: UInt64) throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let reference = safetensorsFixtures + "/tiny-llama/model.safetensors"
        let reader = try SafetensorsFile(path: reference)
        var generator = SeededGenerator(seed: seed)
        let order = reader.tensorInfos.shuffled(using: &generator)
        #expect(order.map(\.name) != reader.tensorInfos.map(\.name), "the shuffled layout is in another order")
        let layout = try SafetensorsLayout(tensors: order, metadata: reader.metadata)
        let writer = try SafetensorsWriter(path: dir + "/model.safetensors", layout: layout)
        for (i, name) in reader.tensorNames.reversed().enumerated() {
            // Every other tensor goes in as f32, a temporary the writer converts back to bf16.
            if i % 2 == 0 {
                try writer.write(name, tensor: reader.tensor(name).converted(to: .f32))
            } else {
                try writer.write(name, tensor: reader.tensor(name))
            }
        }
        try writer.finish()
        #expect(try fileBytes(dir + "/model.safetensors") == fileBytes(reference))
        keepForVerification(dir + "/model.safetensors", as: "tiny-llama/model.safetensors")
    }

    @Test func writerErrorsNameTheFileAndTensor() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/x.safetensors"
        let layout = try SafetensorsLayout(tensors: [TensorInfo(name: "a", dtype: .f32, shape: [2]), TensorInfo(name: "b", dtype: .bf16, shape: [3])])
        let writer = try SafetensorsWriter(path: path, layout: layout)
        #expect(throws: CheckpointError.unexpectedTensor(path: path, tensor: "zz", reason: "not part of this file's layout")) {
            try writer.write("zz", tensor: Tensor([1], shape: [1]))
        }
        #expect { try writer.write("a", tensor: Tensor([1, 2, 3], shape: [3])) } throws: { error in
            "\(error)".contains("'a'") && "\(error)".contains(path)
        }
        try writer.write("a", tensor: Tensor([1, 2], shape: [2]))
        #expect(throws: CheckpointError.incompleteWrite(path: path, missing: ["b"])) { try writer.finish() }
        #expect(throws: CheckpointError.duplicateTensor(path: "(output)", tensor: "a")) {
            _ = try SafetensorsLayout(tensors: [TensorInfo(name: "a", dtype: .f32, shape: [1]), TensorInfo(name: "a", dtype: .f32, shape: [1])])
        }
    }
}
