import AmalgamCheckpoint
import AmalgamCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reading every tensor of a ≥ 1 GB bf16 checkpoint through Amalgam (mapped, validated, handed out as
/// views, released after use) against a plain sequential `read()` of the same files into one reused
/// buffer (256 KiB by default, the fastest size measured here: it stays in cache). Both touch every byte
/// (a wrapping u64 sum); the page cache is warm for both.
enum ReadCheckpointBench {
    static let summary = "read every tensor of a sharded bf16 checkpoint vs plain read() [--path DIR] [--size-gb 1.2] [--repeat 3] [--buffer-mb 0.25]"

    static func run(_ args: [String]) throws {
        let options = try BenchArguments(args, options: ["path", "size-gb", "repeat", "buffer-mb"])
        let sizeGB = try options.double("size-gb", 1.2)
        let repeats = max(1, try options.int("repeat", 3))
        let bufferBytes = max(4096, Int(try options.double("buffer-mb", 0.25) * 1_048_576))
        let folder = options.string("path", NSTemporaryDirectory() + "amalgam-bench-checkpoint-\(sizeGB)GB")
        if !FileManager.default.fileExists(atPath: folder) {
            print("creating a synthetic \(sizeGB) GB bf16 checkpoint in \(folder) …")
            let t = try wallSeconds { try makeSyntheticCheckpoint(at: folder, bytes: Int(sizeGB * 1e9)) }
            print(String(format: "  written in %.1f s", t))
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".safetensors") }.sorted()
        let totalFileBytes = try files.reduce(0) { $0 + (try FileManager.default.attributesOfItem(atPath: folder + "/" + $1)[.size] as! Int) }
        let tensorBytes = try ModelFolder.openWeights(folder: folder).totalBytes
        print("checkpoint: \(folder)\n  \(files.count) files, \(gigabytes(totalFileBytes)) on disk, \(gigabytes(tensorBytes)) of tensors")

        // Warm the page cache first; then each side's best of `repeats`.
        var sink: UInt64 = try plainRead(folder: folder, files: files, bufferBytes: bufferBytes)
        let rssBefore = peakResidentBytes()
        var plainTimes: [Double] = []
        var amalgamTimes: [Double] = []
        for _ in 0..<repeats {
            plainTimes.append(try wallSeconds { sink &+= try plainRead(folder: folder, files: files, bufferBytes: bufferBytes) })
        }
        let rssPlain = peakResidentBytes()
        sink &+= try amalgamRead(folder: folder)
        for _ in 0..<repeats {
            amalgamTimes.append(try wallSeconds { sink &+= try amalgamRead(folder: folder) })
        }
        let rssAmalgam = peakResidentBytes()
        let plainBest = Double(totalFileBytes) / plainTimes.min()! / 1e9
        let amalgamBest = Double(tensorBytes) / amalgamTimes.min()! / 1e9
        print(String(format: "  plain read() into a reused %.0f KiB buffer: %6.2f GB/s (best of %d; %@)", Double(bufferBytes) / 1024, plainBest, repeats,
                     plainTimes.map { String(format: "%.3f s", $0) }.joined(separator: ", ")))
        print(String(format: "  Amalgam (open + validate + every tensor):   %6.2f GB/s (best of %d; %@)", amalgamBest, repeats,
                     amalgamTimes.map { String(format: "%.3f s", $0) }.joined(separator: ", ")))
        print(String(format: "  ratio Amalgam / plain read: %.2f×", amalgamBest / plainBest))
        print("  peak RSS: \(gigabytes(rssBefore)) after warm-up, \(gigabytes(rssPlain)) after plain reads, \(gigabytes(rssAmalgam)) after Amalgam reads")
        print("  (checksum \(sink & 0xFFFF))")
    }
}

/// Why the benchmark could not run.
private struct ReadCheckpointError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Bytes as "1.23 GB".
private func gigabytes(_ bytes: Int) -> String { String(format: "%.2f GB", Double(bytes) / 1e9) }

/// Every tensor through `ModelFolder.openWeights`, each released after use as a streaming merge does.
private func amalgamRead(folder: String) throws -> UInt64 {
    let weights = try ModelFolder.openWeights(folder: folder)
    var sum: UInt64 = 0
    for info in weights.tensorInfos {
        let t = try weights.tensor(info.name)
        sum &+= t.withUnsafeBytes { checksum($0) }
        weights.release(info.name)
    }
    return sum
}

/// The files front to back with `read()` into one reused buffer.
private func plainRead(folder: String, files: [String], bufferBytes size: Int) throws -> UInt64 {
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
    defer { buffer.deallocate() }
    var sum: UInt64 = 0
    for name in files {
        let fd = open(folder + "/" + name, O_RDONLY)
        guard fd >= 0 else { throw ReadCheckpointError("cannot open \(folder)/\(name)") }
        defer { close(fd) }
        while true {
            let n = read(fd, buffer, size)
            if n < 0 { throw ReadCheckpointError("read failed on \(name)") }
            if n == 0 { break }
            sum &+= checksum(UnsafeRawBufferPointer(start: buffer, count: n))
        }
    }
    return sum
}

/// Wrapping sum of the bytes as u64 words (the tail byte by byte): touches every byte at memory speed.
@inline(never)
private func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    guard let base = bytes.baseAddress else { return 0 }
    var acc = SIMD8<UInt64>(repeating: 0)
    var i = 0
    while i + 64 <= bytes.count {
        acc &+= (base + i).loadUnaligned(as: SIMD8<UInt64>.self)
        i += 64
    }
    var s = acc.wrappedSum()
    while i < bytes.count { s &+= UInt64(bytes[i]); i += 1 }
    return s
}

/// A Llama-shaped bf16 checkpoint (hidden 2048, intermediate 5632, 32k vocabulary) with as many layers as
/// reach `bytes`, written with `CheckpointWriter` in 500 MB shards.
private func makeSyntheticCheckpoint(at path: String, bytes: Int) throws {
    let hidden = 2048, intermediate = 5632, kv = 256, vocab = 32000
    func layer(_ i: Int) -> [TensorInfo] {
        let p = "model.layers.\(i)."
        return [
            TensorInfo(name: p + "self_attn.q_proj.weight", dtype: .bf16, shape: [hidden, hidden]),
            TensorInfo(name: p + "self_attn.k_proj.weight", dtype: .bf16, shape: [kv, hidden]),
            TensorInfo(name: p + "self_attn.v_proj.weight", dtype: .bf16, shape: [kv, hidden]),
            TensorInfo(name: p + "self_attn.o_proj.weight", dtype: .bf16, shape: [hidden, hidden]),
            TensorInfo(name: p + "mlp.gate_proj.weight", dtype: .bf16, shape: [intermediate, hidden]),
            TensorInfo(name: p + "mlp.up_proj.weight", dtype: .bf16, shape: [intermediate, hidden]),
            TensorInfo(name: p + "mlp.down_proj.weight", dtype: .bf16, shape: [hidden, intermediate]),
            TensorInfo(name: p + "input_layernorm.weight", dtype: .bf16, shape: [hidden]),
            TensorInfo(name: p + "post_attention_layernorm.weight", dtype: .bf16, shape: [hidden]),
        ]
    }
    let embed = TensorInfo(name: "model.embed_tokens.weight", dtype: .bf16, shape: [vocab, hidden])
    let perLayer = layer(0).reduce(0) { $0 + $1.byteCount }
    let layers = max(1, Int((Double(bytes - 2 * embed.byteCount) / Double(perLayer)).rounded(.up)))
    var infos = [embed]
    for i in 0..<layers { infos += layer(i) }
    infos += [TensorInfo(name: "model.norm.weight", dtype: .bf16, shape: [hidden]),
              TensorInfo(name: "lm_head.weight", dtype: .bf16, shape: [vocab, hidden])]

    let output = try AtomicOutput(path: path, overwrite: false)
    try output.makeWorkingDirectory()
    do {
        let writer = try CheckpointWriter(directory: output.workingPath, tensors: infos, maxShardSize: 500_000_000)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for info in infos {
            let t = Tensor(zeros: .bf16, shape: info.shape)
            let p = t.storage.mutableBase!.assumingMemoryBound(to: UInt16.self)
            for i in 0..<info.elementCount {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                // Magnitudes 2^-8 … 1 with either sign, like trained weights; never NaN or inf.
                let r = UInt16(truncatingIfNeeded: state >> 40)
                p[i] = (r & 0x8000) | (119 + (r & 7)) << 7 | (r >> 3) & 0x7F
            }
            try writer.write(info.name, tensor: t)
        }
        try writer.finish()
        try output.commit()
    } catch {
        output.abandon()
        throw error
    }
}
