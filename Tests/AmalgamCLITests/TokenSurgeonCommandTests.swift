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

    /// The largest relative L2 difference (absolute for a zero row of `theirs`) between the rows `rows` of
    /// `tensor` in two weight folders.
    func worstRowError(_ ours: String, _ theirs: String, tensor: String, rows: [Int]) throws -> Double {
        let a = try ModelFolder.openWeights(folder: ours), b = try ModelFolder.openWeights(folder: theirs)
        let x = try a.tensor(tensor).floats(), y = try b.tensor(tensor).floats()
        let C = try #require(b.info(tensor)).shape[1]
        var worst = 0.0
        for r in rows {
            var diff = 0.0, norm = 0.0
            for j in (r * C)..<((r + 1) * C) {
                diff += Double(x[j] - y[j]) * Double(x[j] - y[j])
                norm += Double(y[j]) * Double(y[j])
            }
            worst = max(worst, norm > 0 ? (diff / norm).squareRoot() : diff.squareRoot())
        }
        return worst
    }

    /// Runs one case of expected/cases.json and compares with mergekit's output: other tensors identical,
    /// the rows mergekit copied identical (and equal to the model's rows), approximated rows within
    /// `tolerance` relative L2 (absolute for zero rows), config.json's vocabulary keys equal. A case whose
    /// expected weights hold only the embedding and lm_head (the newer cases) is compared on those.
    /// `mustFail`: other cases whose mergekit rows must NOT pass this case's comparison (the check can fail).
    func checkAgainstMergekit(_ name: String, tolerance: Double = 1e-4, mustFail: [String] = []) throws {
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
        if theirs.tensorNames.count > 2 {
            #expect(Set(ours.tensorNames) == Set(theirs.tensorNames))
        } else {
            #expect(Set(theirs.tensorNames).isSubset(of: Set(ours.tensorNames)))
        }
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
        for other in mustFail {
            for tensor in theirs.tensorNames where tensor == "model.embed_tokens.weight" || tensor == "lm_head.weight" {
                let error = try worstRowError(root + "/expected/\(other)", root + "/expected/\(name)", tensor: tensor, rows: approximated)
                #expect(error > 100 * max(tolerance, 1e-7), "\(other)'s \(tensor) rows pass the \(name) comparison (\(error))")
            }
        }
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

    @Test func commonInterpolationMatchesMergekit() throws {
        try checkAgainstMergekit("ci-k8", tolerance: 1e-5, mustFail: ["mean", "omp-k8", "ci-k8-cosine", "ci-k8-least-squares"])
    }

    @Test func commonInterpolationWithCosineSimilarityMatchesMergekit() throws {
        try checkAgainstMergekit("ci-k8-cosine", tolerance: 1e-5, mustFail: ["mean", "ci-k8"])
    }

    @Test func commonInterpolationBarycentricMatchesMergekit() throws {
        try checkAgainstMergekit("ci-k8-barycentric", tolerance: 1e-5, mustFail: ["mean", "ci-k8", "ci-k8-least-squares"])
    }

    @Test func commonInterpolationLeastSquaresMatchesMergekit() throws {
        try checkAgainstMergekit("ci-k8-least-squares", tolerance: 1e-5, mustFail: ["mean", "ci-k8", "ci-k8-barycentric"])
    }

    /// k = 30 above the donor's hidden size 24: the least-squares systems are rank-deficient and mergekit
    /// (torch.linalg.lstsq, gelsy) takes the minimum-norm solution. Barycentric squares the conditioning
    /// (P·Pᵀ), so mergekit's f32 rows are further from the f64 ones.
    @Test func commonInterpolationWithMoreNeighboursThanDimensionsTakesTheMinimumNormWeights() throws {
        try checkAgainstMergekit("ci-k30-least-squares", tolerance: 1e-5, mustFail: ["ci-k8-least-squares", "ci-k30-barycentric"])
        try checkAgainstMergekit("ci-k30-barycentric", tolerance: 1e-4, mustFail: ["ci-k8-barycentric", "ci-k30-least-squares"])
    }

    @Test func commonInterpolationIntoATiedModelWithCosineAndLeastSquaresMatchesMergekit() throws {
        try checkAgainstMergekit("ci-k4-cosine-least-squares-tied-model", tolerance: 1e-5, mustFail: ["omp-k4-tied-model"])
    }

    @Test func subwordMethodsMatchMergekitExactly() throws {
        try checkAgainstMergekit("subword-mean", tolerance: 0, mustFail: ["mean", "subword-sum", "subword-weighted-mean"])
        try checkAgainstMergekit("subword-sum", tolerance: 0, mustFail: ["subword-mean"])
        try checkAgainstMergekit("subword-weighted-mean", tolerance: 0, mustFail: ["subword-mean", "subword-first-last"])
        try checkAgainstMergekit("subword-first-last", tolerance: 0, mustFail: ["subword-mean", "subword-weighted-mean"])
    }

    /// The text of a word-start token (Ġthe → " the") and of a special token (the pad token → "pad_token",
    /// mergekit's unnormalize_token) through the model's tokenizer.
    @Test func subwordTextsOfWordStartAndSpecialTokensAreMergekits() throws {
        try checkAgainstMergekit("subword-marked-donor", tolerance: 0)
    }

    /// randn and john_hewitt draw from Amalgam's seeded generator: the same seed gives the same bytes, another
    /// seed other rows; shared rows are the model's. (Their distribution: TokenSurgeonDrawTests.)
    @Test func randomMethodsAreSeededAndKeepSharedRows() throws {
        let rows = try JSONValue.parse(String(contentsOfFile: root + "/expected/mean/rows.json", encoding: .utf8))
        let copied = ints(rows["copied"]), approximated = ints(rows["approximated"])
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for method in ["randn", "john_hewitt"] {
            var outputs: [String] = []
            for (i, seed) in ["1", "1", "2"].enumerated() {
                let out = dir + "/\(method)-\(i)"
                let run = try runAmalgam(["tokensurgeon", root + "/models/model", root + "/models/donor", out, "-a", method, "--seed", seed, "--quiet"])
                #expect(run.status == 0, "\(run.err)")
                #expect(run.err.contains("approximated (\(method), seed \(seed))"), "\(run.err)")
                outputs.append(out)
            }
            #expect(try fileBytes(outputs[0] + "/model.safetensors") == fileBytes(outputs[1] + "/model.safetensors"), "\(method): same seed, other bytes")
            for tensor in ["model.embed_tokens.weight", "lm_head.weight"] {
                #expect(try worstRowError(outputs[0], outputs[2], tensor: tensor, rows: approximated) > 0.1, "\(method): seeds 1 and 2 give the same \(tensor) rows")
                #expect(try worstRowError(outputs[0], root + "/expected/mean", tensor: tensor, rows: copied) == 0, "\(method): \(tensor) shared rows differ")
            }
            // randn's rows are standard normal: 12 × 32 draws.
            if method == "randn" {
                let w = try ModelFolder.openWeights(folder: outputs[0])
                let x = try w.tensor("model.embed_tokens.weight").floats()
                let values = approximated.flatMap { r in x[(r * 32)..<((r + 1) * 32)].map(Double.init) }
                let mean = values.reduce(0, +) / Double(values.count)
                let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
                #expect(abs(mean) < 0.2 && variance > 0.75 && variance < 1.3, "randn rows: mean \(mean), variance \(variance)")
            }
        }
    }

    @Test func tokensurgeonRefusesUnknownOptionValues() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (args, expected) in [(["-w", "inverse"], "distance_proportional, barycentric, least_squares"),
                                 (["-s", "median"], "mean, sum, weighted_mean, first_last")] {
            let run = try runAmalgam(["tokensurgeon", root + "/models/model", root + "/models/donor", dir + "/out", "-a", "common_interpolation"] + args)
            #expect(run.status != 0)
            #expect(run.err.contains("'\(args[1])'") && run.err.contains(expected), "\(run.err)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
        }
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
        #expect(run.err.contains("omp, common_interpolation, subword, mean, zero, randn, john_hewitt"), "\(run.err)")
        #expect(run.err.contains("landmark_pca"), "\(run.err)")
    }

    @Test func tokensurgeonHelpShowsAnExample() throws {
        let run = try runAmalgam(["tokensurgeon", "--help"])
        #expect(run.status == 0)
        #expect(run.out.contains("amalgam tokensurgeon models/my-model models/donor my-model-donor-vocab -k 32"), "\(run.out)")
    }
}
