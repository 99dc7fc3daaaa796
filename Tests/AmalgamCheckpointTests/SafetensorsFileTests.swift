import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Testing

/// Files written by the Python `safetensors` library (torch and numpy) decode to the values the
/// reference reports (values.json), element by element.
struct SafetensorsFileTests {
    static let files = ["all_dtypes.safetensors", "scalars_empty.safetensors", "numpy_meta.safetensors", "multi_meta.safetensors",
                        "no_tensors.safetensors", "metadata_only.safetensors"]

    @Test(arguments: files)
    func everyTensorDecodesToTheReferenceValues(file: String) throws {
        let reader = try SafetensorsFile(path: safetensorsFixtures + "/" + file)
        let expected = referenceValues[file]!["tensors"]!.objectValue!
        #expect(Set(reader.tensorNames) == Set(expected.keys))
        for (name, want) in expected {
            let t = try reader.tensor(name)
            #expect(t.dtype.rawValue == want["dtype"]!.stringValue!, "\(name)")
            #expect(t.shape == want["shape"]!.arrayValue!.map { $0.intValue! }, "\(name)")
            #expect(t.storage.isMapped)
            #expect(elementBits(t) == want["bits"]!.arrayValue!.map(unsigned), "\(name): raw elements")
            // As f32, the way torch's .to(torch.float32) converts each dtype.
            let floats = t.floats().map { UInt64($0.bitPattern) }
            #expect(floats == want["f32_bits"]!.arrayValue!.map(unsigned), "\(name): values as f32")
        }
    }

    @Test func metadataIsReadInFileOrder() throws {
        let numpy = try SafetensorsFile(path: safetensorsFixtures + "/numpy_meta.safetensors")
        let note = referenceValues["numpy_meta.safetensors"]!["metadata"]!.arrayValue![0].arrayValue![1].stringValue!
        #expect(numpy.metadata.map(\.key) == ["note"] && numpy.metadata[0].value == note)
        #expect(try SafetensorsFile(path: safetensorsFixtures + "/all_dtypes.safetensors").metadata.map(\.value) == ["pt"])
        #expect(try SafetensorsFile(path: safetensorsFixtures + "/scalars_empty.safetensors").metadata.isEmpty)
        let multi = try SafetensorsFile(path: safetensorsFixtures + "/multi_meta.safetensors")
        #expect(Set(multi.metadata.map(\.key)) == ["format", "author", "version"])
    }

    /// Tensors come in file order: by dtype (the Rust enum, descending), then by name as bytes.
    @Test func tensorsAreInFileOrder() throws {
        let reader = try SafetensorsFile(path: safetensorsFixtures + "/all_dtypes.safetensors")
        #expect(reader.tensorNames == [
            "i64", "double", "Weight", "weight", "i32", "a.bias", "é.bias", "layers.10.w", "layers.9.w",
            "i16", "i8", "u8", "mask",
        ])
        #expect(reader.headerSize % 8 == 0)
        var previous = -1
        for name in reader.tensorNames {
            let offset = reader.dataOffset(name)!
            #expect(offset > previous)
            previous = offset
        }
    }

    @Test func scalarsAndEmptyTensors() throws {
        let reader = try SafetensorsFile(path: safetensorsFixtures + "/scalars_empty.safetensors")
        #expect(try reader.tensor("scalar_f32").floats() == [3.5])
        #expect(try reader.tensor("scalar_f32").shape == [])
        #expect(try reader.tensor("scalar_bf16").floats() == [-0.15625])
        #expect(try reader.tensor("empty_cols").byteCount == 0)
        #expect(try reader.tensor("after_empty").floats() == [0, 1, 2, 3, 4, 5])
        #expect(reader.info("empty_rows") == TensorInfo(name: "empty_rows", dtype: .f32, shape: [0, 4]))
        #expect(throws: CheckpointError.tensorNotFound(path: reader.path, tensor: "nope")) { try reader.tensor("nope") }
    }

    @Test func shardsOfAModelDecodeLikeTheSingleFile() throws {
        let single = try SafetensorsFile(path: safetensorsFixtures + "/tiny-llama/model.safetensors")
        let sharded = try ModelFolder.openWeights(folder: safetensorsFixtures + "/tiny-llama-sharded")
        #expect(sharded.files.count == 3)
        #expect(Set(sharded.tensorNames) == Set(single.tensorNames))
        for name in single.tensorNames {
            #expect(try elementBits(sharded.tensor(name)) == elementBits(single.tensor(name)), "\(name)")
        }
        single.prefetch("lm_head.weight")
        single.release("lm_head.weight")
        #expect(try single.tensor("lm_head.weight").elementCount == 128 * 32)
    }
}
