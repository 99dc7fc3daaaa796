import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// Damaged files and folders, made in a temporary folder by editing valid reference bytes: each gives a
/// typed error naming the file (and the tensor), never a crash.
struct BadInputTests {
    let fm = FileManager.default
    /// A valid file: all_dtypes.safetensors from the Python library.
    let valid: [UInt8] = try! fileBytes(safetensorsFixtures + "/all_dtypes.safetensors")

    var headerLength: Int { Int(valid[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }) }
    var header: JSONObject { try! JSONValue.parse(Array(valid[8..<(8 + headerLength)])).objectValue! }
    var data: [UInt8] { Array(valid[(8 + headerLength)...]) }

    /// A safetensors file from header text and data.
    func file(header text: [UInt8], data: [UInt8], length: UInt64? = nil) -> [UInt8] {
        withUnsafeBytes(of: (length ?? UInt64(text.count)).littleEndian) { Array($0) } + text + data
    }

    func file(header object: JSONObject, data: [UInt8]) -> [UInt8] {
        file(header: Array(JSONValue.object(object).compactText().utf8), data: data)
    }

    /// `entry` of tensor `name` with a field replaced.
    func edit(_ name: String, _ key: String, _ value: JSONValue) -> JSONObject {
        var h = header
        var entry = h[name]!.objectValue!
        entry[key] = value
        h[name] = .object(entry)
        return h
    }

    /// Writes `bytes` to a temporary file and opens it, returning the error.
    func open(_ bytes: [UInt8]) -> (path: String, error: CheckpointError?) {
        let dir = temporaryFolder()
        let path = dir + "/bad.safetensors"
        try! writeFileAtomically(bytes, to: path)
        defer { try? fm.removeItem(atPath: dir) }
        do {
            _ = try SafetensorsFile(path: path)
            return (path, nil)
        } catch {
            return (path, error)
        }
    }

    func expectError(_ bytes: [UInt8], mentions words: [String] = [], _ check: (CheckpointError, String) -> Bool) {
        let (path, error) = open(bytes)
        guard let error else { Issue.record("no error for a damaged file"); return }
        #expect(check(error, path), "\(error)")
        #expect(error.description.contains(path), "the message names the file: \(error)")
        for w in words { #expect(error.description.contains(w), "the message mentions \(w): \(error)") }
    }

    @Test func theValidFileOpens() {
        #expect(open(valid).error == nil)
        #expect(open(file(header: header, data: data)).error == nil)
    }

    @Test func shorterThanTheLengthField() {
        expectError(Array(valid[0..<5])) { e, p in e == .truncated(path: p, needed: 8, actual: 5) }
        expectError([]) { e, p in e == .truncated(path: p, needed: 8, actual: 0) }
    }

    @Test func truncatedInTheData() {
        // The last tensor in the file ("mask", 5 bytes) now ends past the data.
        expectError(Array(valid.dropLast(3)), mentions: ["'mask'"]) { e, p in
            if case let .offsetOutOfRange(path, tensor, _, _) = e { return path == p && tensor == "mask" }
            return false
        }
    }

    @Test func headerLongerThanTheFile() {
        let bytes = file(header: Array(valid[8..<(8 + headerLength)]), data: data, length: UInt64(valid.count))
        expectError(bytes) { e, p in e == .headerOutsideFile(path: p, headerSize: valid.count, fileSize: valid.count) }
    }

    @Test func headerOverTheSizeLimit() {
        let bytes = file(header: Array(valid[8..<(8 + headerLength)]), data: data, length: 100_000_001)
        expectError(bytes) { e, p in e == .headerTooLarge(path: p, size: 100_000_001, limit: 100_000_000) }
        expectError(file(header: [], data: [], length: UInt64.max)) { e, _ in
            if case .headerTooLarge = e { return true } else { return false }
        }
    }

    @Test func overlappingOffsets() {
        // "double" (F64, 32 bytes at [40, 72]) starts 8 bytes early, inside "i64".
        var h = edit("double", "data_offsets", .array([.int(32), .int(64)]))
        var weight = h["Weight"]!.objectValue!
        weight["data_offsets"] = .array([.int(64), .int(100)])
        weight["shape"] = .array([.int(9)])
        h["Weight"] = .object(weight)
        expectError(file(header: h, data: data), mentions: ["'i64'", "'double'"]) { e, p in
            e == .overlappingTensors(path: p, first: "i64", second: "double")
        }
    }

    @Test func gapBetweenTensors() {
        // "mask" (the last tensor) moved 3 bytes later, with 3 more bytes of data.
        let end = data.count
        let h = edit("mask", "data_offsets", .array([.int(end - 2), .int(end + 3)]))
        expectError(file(header: h, data: data + [0, 0, 0]), mentions: ["'mask'"]) { e, p in
            e == .gapBetweenTensors(path: p, before: "u8", after: "mask", gap: 3)
        }
    }

    @Test func offsetsOutOfRange() {
        let end = data.count
        let h = edit("mask", "data_offsets", .array([.int(end - 5), .int(end + 1000)]))
        expectError(file(header: h, data: data), mentions: ["'mask'"]) { e, _ in
            // The span no longer matches the shape: caught before the range check, still naming the tensor.
            if case let .sizeMismatch(_, tensor, 5, 1005) = e { return tensor == "mask" } else { return false }
        }
        // Far past the end with a consistent span: the data before it is missing, reported as a gap.
        let far = 1 << 62
        expectError(file(header: edit("mask", "data_offsets", .array([.int(far), .int(far + 5)])), data: data), mentions: ["'mask'"]) { e, p in
            e == .gapBetweenTensors(path: p, before: "u8", after: "mask", gap: far - (end - 5))
        }
        // Offsets too large for any integer: an error, not an overflow trap.
        let huge = edit("mask", "data_offsets", .array([.number("18446744073709551610"), .number("18446744073709551615")]))
        expectError(file(header: huge, data: data), mentions: ["'mask'"]) { e, _ in
            if case .badTensorInfo(_, "mask", _) = e { return true } else { return false }
        }
    }

    @Test func trailingBytesAfterTheLastTensor() {
        expectError(valid + [0, 0, 0, 0]) { e, p in e == .dataNotCovered(path: p, used: data.count, dataSize: data.count + 4) }
    }

    @Test func shapeTimesDTypeDiffersFromTheSpan() {
        expectError(file(header: edit("weight", "shape", .array([.int(3), .int(4)])), data: data), mentions: ["'weight'"]) { e, p in
            e == .sizeMismatch(path: p, tensor: "weight", expected: 48, actual: 60)
        }
        expectError(file(header: edit("weight", "shape", .array([.int(-3), .int(5)])), data: data), mentions: ["'weight'"]) { e, _ in
            if case .badTensorInfo(_, "weight", _) = e { return true } else { return false }
        }
        expectError(file(header: edit("weight", "shape", .array([.int(1 << 40), .int(1 << 40)])), data: data), mentions: ["'weight'"]) { e, _ in
            if case .badTensorInfo(_, "weight", _) = e { return true } else { return false }
        }
    }

    @Test func unknownDType() {
        expectError(file(header: edit("u8", "dtype", .string("F8_E4M3")), data: data), mentions: ["'u8'", "F8_E4M3"]) { e, p in
            e == .unknownDType(path: p, tensor: "u8", dtype: "F8_E4M3")
        }
    }

    @Test func missingFields() {
        var h = header
        var entry = h["u8"]!.objectValue!
        entry["data_offsets"] = nil
        h["u8"] = .object(entry)
        expectError(file(header: h, data: data), mentions: ["'u8'", "data_offsets"]) { e, _ in
            if case .badTensorInfo(_, "u8", _) = e { return true } else { return false }
        }
        var m = header
        m["__metadata__"] = .object(JSONObject([("format", .int(1))]))
        expectError(file(header: m, data: data), mentions: ["format"]) { e, _ in
            if case .invalidHeader = e { return true } else { return false }
        }
    }

    @Test func invalidJSON() {
        var text = Array(valid[8..<(8 + headerLength)])
        text[text.firstIndex(of: UInt8(ascii: ":"))!] = UInt8(ascii: ",")  // {"__metadata__",{…
        expectError(file(header: text, data: data), mentions: ["invalid"]) { e, _ in
            if case .invalidHeader = e { return true } else { return false }
        }
        expectError(file(header: Array("[1, 2]".utf8), data: []), mentions: ["not"]) { e, _ in
            if case .invalidHeader = e { return true } else { return false }
        }
    }

    @Test func invalidUTF8InTheHeader() {
        // The "é" of "é.bias" (C3 A9) becomes C3 28: not UTF-8.
        var text = Array(valid[8..<(8 + headerLength)])
        let at = (0..<(text.count - 1)).first { text[$0] == 0xC3 && text[$0 + 1] == 0xA9 }!
        text[at + 1] = 0x28
        expectError(file(header: text, data: data), mentions: ["UTF-8"]) { e, _ in
            if case .invalidHeader = e { return true } else { return false }
        }
    }

    @Test func notAFileAtAll() {
        let dir = temporaryFolder()
        defer { try? fm.removeItem(atPath: dir) }
        #expect(throws: CheckpointError.file(.isDirectory(path: dir))) { _ = try SafetensorsFile(path: dir) }
        #expect { _ = try SafetensorsFile(path: dir + "/missing.safetensors") } throws: { e in "\(e)".contains(dir + "/missing.safetensors") }
    }

    // MARK: folders

    /// A copy of the sharded fixture folder, to damage.
    func shardedCopy() throws -> String {
        let dir = temporaryFolder()
        try fm.removeItem(atPath: dir)
        try fm.copyItem(atPath: safetensorsFixtures + "/tiny-llama-sharded", toPath: dir)
        return dir
    }

    @Test func missingShardNamedInTheIndex() throws {
        let dir = try shardedCopy()
        defer { try? fm.removeItem(atPath: dir) }
        try fm.removeItem(atPath: dir + "/model-00002-of-00003.safetensors")
        #expect { _ = try ModelFolder(path: dir) } throws: { error in
            guard case let .missingShard(index, shard, tensor) = error as? CheckpointError else { return false }
            return index == dir + "/model.safetensors.index.json" && shard == "model-00002-of-00003.safetensors" && !tensor.isEmpty
                && "\(error)".contains("model-00002-of-00003.safetensors")
        }
    }

    @Test func tensorInTheIndexButNotInItsShard() throws {
        let dir = try shardedCopy()
        defer { try? fm.removeItem(atPath: dir) }
        let indexPath = dir + "/model.safetensors.index.json"
        var index = try JSONValue.parse(try fileBytes(indexPath)).objectValue!
        var map = index["weight_map"]!.objectValue!
        map["model.layers.9.mlp.up_proj.weight"] = .string("model-00001-of-00003.safetensors")
        index["weight_map"] = .object(map)
        try writeFileAtomically(JSONValue.object(index).pythonText(), to: indexPath)
        #expect(throws: CheckpointError.tensorMissingFromShard(index: indexPath, shard: "model-00001-of-00003.safetensors",
                                                              tensor: "model.layers.9.mlp.up_proj.weight")) {
            _ = try ModelFolder(path: dir)
        }
    }

    @Test func damagedShardNamesTheShard() throws {
        let dir = try shardedCopy()
        defer { try? fm.removeItem(atPath: dir) }
        let shard = dir + "/model-00003-of-00003.safetensors"
        try writeFileAtomically(Array(try fileBytes(shard).dropLast(10)), to: shard)
        #expect { _ = try ModelFolder(path: dir) } throws: { error in "\(error)".contains(shard) }
    }

    @Test func folderWithoutWeights() throws {
        let dir = temporaryFolder()
        defer { try? fm.removeItem(atPath: dir) }
        try fm.copyItem(atPath: safetensorsFixtures + "/configs/llama/config.json", toPath: dir + "/config.json")
        #expect(throws: CheckpointError.noWeights(folder: dir)) { _ = try ModelFolder(path: dir) }
        try writeFileAtomically([1, 2, 3], to: dir + "/pytorch_model.bin")
        #expect(throws: CheckpointError.unsupportedWeights(folder: dir, file: "pytorch_model.bin")) { _ = try ModelFolder(path: dir) }
        #expect(CheckpointError.unsupportedWeights(folder: dir, file: "pytorch_model.bin").description.contains("safe_serialization"))
    }

    @Test func folderWithoutConfig() throws {
        let dir = temporaryFolder()
        defer { try? fm.removeItem(atPath: dir) }
        #expect { _ = try ModelFolder(path: dir) } throws: { error in "\(error)".contains(dir + "/config.json") }
    }
}

extension BadInputTests {
    @Test func shardNamesMustStayInTheFolder() throws {
        let dir = try shardedCopy()
        defer { try? fm.removeItem(atPath: dir) }
        let indexPath = dir + "/model.safetensors.index.json"
        var index = try JSONValue.parse(try fileBytes(indexPath)).objectValue!
        var map = index["weight_map"]!.objectValue!
        map["lm_head.weight"] = .string("../tiny-llama/model.safetensors")
        index["weight_map"] = .object(map)
        try writeFileAtomically(JSONValue.object(index).pythonText(), to: indexPath)
        #expect(throws: CheckpointError.invalidConfig(path: indexPath, key: "weight_map.lm_head.weight",
                                                      reason: "must be the name of a file in the folder")) {
            _ = try ModelFolder(path: dir)
        }
    }

    @Test func nullMetadataIsNoMetadata() {
        var h = header
        h["__metadata__"] = .null
        #expect(open(file(header: h, data: data)).error == nil)
    }

    @Test func duplicateNamesInAShardedPlan() {
        let infos = [TensorInfo(name: "a", dtype: .f32, shape: [1000]), TensorInfo(name: "a", dtype: .f32, shape: [1000])]
        #expect(throws: CheckpointError.duplicateTensor(path: "/nonexistent", tensor: "a")) {
            _ = try CheckpointWriter(directory: "/nonexistent", tensors: infos, maxShardSize: 4000)
        }
    }
}
