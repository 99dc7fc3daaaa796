import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamTestSupport
import Foundation
import Testing

/// A fixture config with its repository-relative model paths made absolute.
func fixtureConfig(_ relativePath: String) throws -> MergeConfig {
    let path = fixturesDirectory + "/" + relativePath
    let text = try String(contentsOfFile: path, encoding: .utf8)
        .replacingOccurrences(of: "fixtures/", with: fixturesDirectory + "/")
    return try MergeConfig(yaml: text, path: path)
}

/// Runs a merge into a new folder and returns the folder.
@discardableResult
func runMerge(_ config: MergeConfig, seed: UInt64 = 0, threads: Int = 2, shardSize: Int = 5_000_000_000,
              truncateEmbeddings: Bool = false, durability: Durability = .machine, arithmetic: MergeArithmetic = .exact,
              moeExperts: MoEExperts = .fused, into out: String? = nil) throws -> String {
    let output = out ?? temporaryFolder("merge") + "/out"
    let plan = try MergePlan(config: config, seed: seed, truncateEmbeddings: truncateEmbeddings, arithmetic: arithmetic, moeExperts: moeExperts)
    try MergeExecutor(plan: plan).run(MergeOptions(outputPath: output, maxShardSize: shardSize, overwrite: true, concurrentTensors: threads,
                                                   durability: durability))
    return output
}

/// Token text → id from a folder's tokenizer.json (model vocabulary and added tokens).
func vocabulary(_ folder: String) throws -> [String: Int] {
    let file = try MappedFile(path: folder + "/tokenizer.json")
    let json = try JSONValue.parse(file.bytes(offset: 0, count: file.count))
    var ids: [String: Int] = [:]
    for (k, v) in json["model"]?["vocab"]?.objectValue ?? JSONObject() { ids[k] = v.intValue }
    for t in json["added_tokens"]?.arrayValue ?? [] { ids[t["content"]!.stringValue!] = t["id"]!.intValue! }
    return ids
}

/// Compares every tensor of two model folders: same names, shapes and dtypes; f32 values within 1e-5
/// relative (absolute floor 1e-6); bf16 and f16 within one step of the reference's own precision. With
/// `byToken`, embedding-like rows are matched by token text through each folder's tokenizer.json (ids of
/// tokens a merge adds are not fixed by mergekit).
///
/// `allowance[name]`, when given, adds an absolute tolerance per element of that tensor (f32 only): the
/// rounding error two correct f32 computations can differ by where the result is a small sum of large terms.
func expectSameTensors(_ ours: String, _ reference: String, byToken: Bool = false, allowance: [String: [Double]] = [:],
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
    let a = try ModelFolder.openWeights(folder: ours)
    let b = try ModelFolder.openWeights(folder: reference)
    #expect(Set(a.tensorNames) == Set(b.tensorNames), "tensor names differ", sourceLocation: sourceLocation)
    let vocabA = byToken ? try vocabulary(ours) : [:]
    let vocabB = byToken ? try vocabulary(reference) : [:]
    for info in b.tensorInfos {
        guard let mine = a.info(info.name) else { continue }
        #expect(mine.shape == info.shape, "\(info.name): shape \(mine.shape) vs \(info.shape)", sourceLocation: sourceLocation)
        #expect(mine.dtype == info.dtype, "\(info.name): dtype \(mine.dtype) vs \(info.dtype)", sourceLocation: sourceLocation)
        guard mine.shape == info.shape else { continue }
        let x = try a.tensor(info.name).floats()
        let y = try b.tensor(info.name).floats()
        var pairs: [(Int, Int)] = Array(zip(x.indices, y.indices))
        if byToken, TensorName(info.name).role.isEmbeddingLike {
            let width = info.shape[1]
            pairs = []
            for (token, idB) in vocabB {
                guard let idA = vocabA[token] else { Issue.record("token \(token) missing from ours", sourceLocation: sourceLocation); continue }
                for j in 0..<width { pairs.append((idA * width + j, idB * width + j)) }
            }
        }
        var worst = 0.0
        var worstIndex = -1
        for (i, j) in pairs {
            let (u, v) = (Double(x[i]), Double(y[j]))
            let err: Double
            // One step of the format at the larger magnitude of the two (|v|·2⁻⁷ would allow up to two).
            switch info.dtype {
            case .bf16: err = abs(u - v) / formatStep(max(abs(u), abs(v)), fractionBits: 7, minimumExponent: -126)
            case .f16: err = abs(u - v) / formatStep(max(abs(u), abs(v)), fractionBits: 10, minimumExponent: -14)
            default:
                let extra = allowance[info.name].map { $0[j] } ?? 0
                err = max(0, abs(u - v) - extra) / max(abs(v), 0.1) * 1e5
            }
            if err > worst { worst = err; worstIndex = j }
        }
        #expect(worst <= 1.0 + 1e-9, "\(info.name): worst error \(worst) (in units of the tolerance) at \(worstIndex): ours vs mergekit's \(worstIndex >= 0 ? y[worstIndex] : 0)", sourceLocation: sourceLocation)
    }
}

/// The spacing of a binary floating-point format's values at magnitude `x` (subnormal spacing below
/// its smallest normal): one step of bf16 (7 fraction bits) or f16 (10).
func formatStep(_ x: Double, fractionBits: Int, minimumExponent: Int) -> Double {
    let exponent = x >= 0x1p-1022 ? max(Int(x.exponent), minimumExponent) : minimumExponent
    return Double(sign: .plus, exponent: exponent - fractionBits, significand: 1)
}

/// A key of a folder's config.json.
func configValue(_ folder: String, _ key: String) throws -> JSONValue? {
    try ModelConfig(contentsOf: folder + "/config.json").raw[key]
}
