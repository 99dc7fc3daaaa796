import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

private let quantsPath = fixturesDirectory + "/gguf/quants.gguf"

/// Writes `bytes` to a fresh temporary file and returns its path.
func temporaryFile(_ bytes: [UInt8], name: String = "broken.gguf") -> String {
    let dir = NSTemporaryDirectory() + "amalgam-gguf-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let path = dir + "/" + name
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return path
}

private func fixtureBytes() -> [UInt8] { [UInt8](FileManager.default.contents(atPath: quantsPath)!) }

/// The GGUF error opening `bytes` as a file gives, if any.
private func openError(_ bytes: [UInt8]) -> GGUFError? {
    do { _ = try GGUFFile(path: temporaryFile(bytes)) } catch {
        if case let .gguf(e) = error { return e }
        return nil
    }
    return nil
}

@Suite struct GGUFReaderTests {
    @Test func readsEveryMetadataValueTypeAsGGUFPyWroteIt() throws {
        let f = try GGUFFile(path: quantsPath)
        #expect(f.version == 3)
        #expect(f.alignment == 32)
        #expect(f["general.architecture"] == .string("test"))
        #expect(f["test.u8"] == .uint8(200))
        #expect(f["test.i8"] == .int8(-100))
        #expect(f["test.u16"] == .uint16(60000))
        #expect(f["test.i16"] == .int16(-30000))
        #expect(f["test.u32"] == .uint32(4_000_000_000))
        #expect(f["test.i32"] == .int32(-2_000_000_000))
        #expect(f["test.u64"] == .uint64(18_000_000_000_000_000_000))
        #expect(f["test.i64"] == .int64(-9_000_000_000_000_000_000))
        #expect(f["test.f32"] == .float32(0.15625))
        #expect(f["test.f64"] == .float64(-2.5e-300))
        #expect(f["test.bool"] == .bool(true))
        #expect(f["test.string"] == .string("héllo ✓"))
        #expect(f["test.ints"] == .array(.int32, [.int32(1), .int32(2), .int32(3)]))
        #expect(f["test.strings"] == .array(.string, [.string("a"), .string("bc"), .string("")]))
        #expect(f["test.nested"] == .array(.array, [.array(.int32, [.int32(1), .int32(2)]), .array(.int32, [.int32(3)])]))
    }

    @Test func reportsPyTorchShapesAndF32ForQuantizedTensors() throws {
        let f = try GGUFFile(path: quantsPath)
        #expect(f.entry("q4_k")?.ne == [512, 4])
        #expect(f.info("q4_k") == TensorInfo(name: "q4_k", dtype: .f32, shape: [4, 512]))
        #expect(f.info("f16") == TensorInfo(name: "f16", dtype: .f16, shape: [4, 512]))
        #expect(f.info("bf16")?.dtype == .bf16)
        let view = try f.tensor("f16")
        #expect(view.storage.isMapped)
    }

    @Test(arguments: ["source", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"])
    func dequantizesLikeGGUFPy(_ name: String) throws {
        let f = try GGUFFile(path: quantsPath)
        let expected = try SafetensorsFile(path: fixturesDirectory + "/gguf/quants-expected.safetensors").tensor(name).floats()
        let got = try f.tensor(name).floats()
        #expect(got.count == expected.count)
        // Same operations in the same order as quants.py: the values agree bit for bit, block by block.
        let blockSize = f.entry(name)!.type.blockLayout.elements
        var firstBad: Int?
        for i in 0..<got.count where got[i].bitPattern != expected[i].bitPattern && !(got[i].isNaN && expected[i].isNaN) {
            firstBad = i
            break
        }
        #expect(firstBad == nil, "\(name): block \(firstBad.map { $0 / blockSize } ?? -1) differs: \(firstBad.map { got[$0] } ?? 0) vs \(firstBad.map { expected[$0] } ?? 0)")
    }

    @Test func readsVersion2() throws {
        var bytes = fixtureBytes()
        bytes[4] = 2
        let f = try GGUFFile(path: temporaryFile(bytes))
        #expect(f.version == 2)
        #expect(f.tensors.count == 13)
    }

    @Test func rejectsBadMagicAndVersions() {
        var bytes = fixtureBytes()
        bytes[0] = UInt8(ascii: "X")
        if case .badMagic? = openError(bytes) {} else { Issue.record("expected badMagic") }
        bytes = fixtureBytes()
        bytes[4] = 1
        if case .unsupportedVersion(_, 1)? = openError(bytes) {} else { Issue.record("expected unsupportedVersion") }
    }

    @Test func rejectsTruncatedFilesAtEveryCut() {
        let bytes = fixtureBytes()
        let f = try! GGUFFile(path: quantsPath)
        // Inside the header: a truncation error; inside the data: an out-of-range tensor.
        for cut in [0, 3, 10, 23, 40, 200, f.dataOffset - 1, f.dataOffset + 100, bytes.count - 100] {
            let e = openError(Array(bytes[..<cut]))
            switch e {
            case .truncated?, .offsetOutOfRange?, .absurdCount?: break
            default: Issue.record("cut at \(cut): \(String(describing: e))")
            }
        }
    }

    @Test func rejectsAbsurdCountsAndUnknownTypes() {
        var bytes = fixtureBytes()
        // tensor count (offset 8) far past what the file can hold
        bytes[15] = 0x7F
        if case .absurdCount? = openError(bytes) {} else { Issue.record("expected absurdCount") }
        // the first key's value type (after the 8-byte length and the key "general.architecture")
        bytes = fixtureBytes()
        let typeOffset = 24 + 8 + "general.architecture".utf8.count
        bytes[typeOffset] = 77
        if case .unknownValueType(_, "general.architecture", 77)? = openError(bytes) {} else { Issue.record("expected unknownValueType") }
        // the ggml type of the last tensor info (u32 type then u64 offset before the padding)
        bytes = fixtureBytes()
        let f = try! GGUFFile(path: quantsPath)
        let lastInfoEnd = infoEnd(bytes, f)
        bytes[lastInfoEnd - 12] = 200
        if case .unknownTensorType(_, "q6_k", 200)? = openError(bytes) {} else { Issue.record("expected unknownTensorType") }
    }

    @Test func rejectsTensorsPastTheEnd() {
        var bytes = fixtureBytes()
        let f = try! GGUFFile(path: quantsPath)
        let end = infoEnd(bytes, f)
        // last tensor's offset: a u64 at end-8; move it past the file
        bytes[end - 3] = 0x10
        switch openError(bytes) {
        case .offsetOutOfRange?: break
        case let e: Issue.record("expected offsetOutOfRange, got \(String(describing: e))")
        }
    }
}

/// The byte just after the last tensor info (found by walking the header as the reader does).
private func infoEnd(_ bytes: [UInt8], _ f: GGUFFile) -> Int {
    // the last tensor name is "q6_k", stored last; its info is: name len (8), name, n_dims (4), 2 dims (16), type (4), offset (8)
    let name = Array("q6_k".utf8)
    var i = f.dataOffset - 1
    while i > 0 {
        if Array(bytes[i..<min(i + name.count, bytes.count)]) == name { return i + name.count + 4 + 16 + 4 + 8 }
        i -= 1
    }
    return 0
}
