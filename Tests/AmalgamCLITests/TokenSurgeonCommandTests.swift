import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam tokensurgeon` as a user runs it, against mergekit-tokensurgeon 0.1.5's output for the same models
/// (fixtures/tokensurgeon, made by scripts/fixtures/make_tokensurgeon_fixtures.py).
@Suite(.requires(amalgamProgram))
struct TokenSurgeonCommandTests {
    let root = fixturesDirectory + "/tokensurgeon"

    func ints(_ value: JSONValue?) -> [Int] { value?.arrayValue?.compactMap(\.intValue) ?? [] }

    /// Runs one case of expected/cases.json and compares with mergekit's output: other tensors identical,
    /// the rows mergekit copied identical (and equal to the model's rows), approximated rows within
    /// `tolerance` relative L2 (absolute for zero rows), config.json's vocabulary keys equal.
    func checkAgainstMergekit(_ name: String, tolerance: Double = 1e-4) throws {
        let cases = try JSONValue.parse(String(contentsOfFile: root + "/expected/cases.json", encoding: .utf8))
        let args = cases[name]?.arrayValue?.compactMap(\.stringValue) ?? []
        try #require(args.count >= 2, "no case \(name)")
        let rows = try JSONValue.parse(String(contentsOfFile: root + "/expected/\(name)/rows.json", encoding: .utf8))
        let copied = ints(rows["copied"]), approximated = ints(rows["approximated"]), modelIds = ints(rows["model_ids"])
        let dir = temporaryFolder(name)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try runAmalgam(["tokensurgeon", root + "/models/" + args[0], root + "/models/" + args[1], dir + "/out"] + Array(args.dropFirst(2)))
        #expect(run.status == 0, "\(run.err)")
        guard run.status == 0 else { return }
        #expect(run.err.contains("\(copied.count) copied from the model, \(approximated.count) approximated"), "\(run.err)")
        let ours = try ModelFolder.openWeights(folder: dir + "/out")
        let theirs = try ModelFolder.openWeights(folder: root + "/expected/\(name)")
        let model = try ModelFolder.openWeights(folder: root + "/models/" + args[0])
        #expect(Set(ours.tensorNames) == Set(theirs.tensorNames))
        for info in theirs.tensorInfos {
            guard let mine = ours.info(info.name) else { continue }
            #expect(mine.dtype == info.dtype && mine.shape == info.shape, "\(info.name): \(mine) vs mergekit \(info)")
            let a = try ours.tensor(info.name).floats(), b = try theirs.tensor(info.name).floats()
            guard info.name == "model.embed_tokens.weight" || info.name == "lm_head.weight" else {
                #expect(a == b, "\(info.name) differs from mergekit's")
                continue
            }
            let C = info.shape[1]
            func row(_ v: [Float], _ r: Int) -> ArraySlice<Float> { v[(r * C)..<((r + 1) * C)] }
            let original = try model.tensor(info.name).floats()
            for (donorId, modelId) in zip(copied, modelIds) {
                #expect(row(a, donorId) == row(b, donorId), "\(info.name) row \(donorId): not mergekit's copy")
                #expect(row(a, donorId) == row(original, modelId), "\(info.name) row \(donorId): not the model's row \(modelId)")
            }
            for r in approximated {
                let x = row(a, r), y = row(b, r)
                let diff = zip(x, y).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
                let norm = y.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                let error = norm > 0 ? diff / norm : diff
                #expect(error <= tolerance, "\(info.name) row \(r): \(error) from mergekit's")
            }
        }
        let mine = try JSONValue.parse(String(contentsOfFile: dir + "/out/config.json", encoding: .utf8))
        let reference = try JSONValue.parse(String(contentsOfFile: root + "/expected/\(name)/config.json", encoding: .utf8))
        for key in ["vocab_size", "bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings"] {
            #expect(mine[key] == reference[key], "config.json \(key): \(String(describing: mine[key])) vs mergekit \(String(describing: reference[key]))")
        }
        // The donor's tokenizer, byte for byte.
        #expect(try fileBytes(dir + "/out/tokenizer.json") == fileBytes(root + "/models/" + args[1] + "/tokenizer.json"))
    }

    @Test func ompTransplantMatchesMergekit() throws {
        try checkAgainstMergekit("omp-k8")
    }

    @Test func ompTransplantIntoATiedModelKeepsItTied() throws {
        try checkAgainstMergekit("omp-k4-tied-model")
    }

    @Test func ompTransplantFromATiedDonorUsesItsEmbeddingForTheOutput() throws {
        try checkAgainstMergekit("omp-k8-tied-donor")
    }

    @Test func meanAndZeroApproximationsMatchMergekit() throws {
        try checkAgainstMergekit("mean", tolerance: 1e-6)
        try checkAgainstMergekit("zero", tolerance: 0)
    }

    @Test func tokensurgeonRefusesMoreAtomsThanSharedTokens() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try runAmalgam(["tokensurgeon", root + "/models/model", root + "/models/donor", dir + "/out", "-k", "500", "--quiet"])
        #expect(run.status != 0)
        #expect(run.err.contains("-k") && run.err.contains("share only"), "\(run.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
    }

    @Test func tokensurgeonNamesTheMethodsItHas() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try runAmalgam(["tokensurgeon", root + "/models/model", root + "/models/donor", dir + "/out", "-a", "landmark_pca"])
        #expect(run.status != 0)
        #expect(run.err.contains("omp, mean, zero"), "\(run.err)")
    }

    @Test func tokensurgeonHelpShowsAnExample() throws {
        let run = try runAmalgam(["tokensurgeon", "--help"])
        #expect(run.status == 0)
        #expect(run.out.contains("amalgam tokensurgeon models/my-model models/donor my-model-donor-vocab -k 32"), "\(run.out)")
    }
}
