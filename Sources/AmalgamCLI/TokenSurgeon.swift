import AmalgamCheckpoint
import AmalgamCore
import AmalgamEval
import ArgumentParser
import Foundation

/// `amalgam tokensurgeon MODEL DONOR OUT`: mergekit-tokensurgeon's tokenizer transplant.
struct TokenSurgeonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokensurgeon",
        abstract: "Give a model a donor's tokenizer: rebuild its embedding and lm_head in the donor's vocabulary.",
        discussion: """
            A donor token the model also has (compared as mergekit does: word-start markers and special-token \
            roles normalised) keeps the model's row exactly; the rows of the other tokens are approximated (-a):

            omp (default): the donor's row as a sparse combination of k donor rows of shared tokens; the same \
            combination of the model's rows.
            common_interpolation: the k shared tokens nearest in the donor's space (Euclidean, or cosine with -c), \
            weighted by -w distance_proportional (default), barycentric or least_squares.
            subword: the model's rows of the token's text as the model's tokenizer splits it, combined by -s mean \
            (default), sum, weighted_mean or first_last.
            mean, zero: the mean of the model's rows; zeros.
            randn, john_hewitt: standard normal rows, or Gaussian with the mean and covariance of the model's rows, \
            drawn from Amalgam's seeded generator (--seed), NOT torch's: same seed, same bytes, but not mergekit's.

            The output has the donor's tokenizer files and vocab size and appears only when complete. \
            See docs/tokensurgeon.md.

            Example:
              amalgam tokensurgeon models/my-model models/donor my-model-donor-vocab -k 32
              amalgam tokensurgeon model donor out -a common_interpolation -w barycentric
            """
    )

    @Argument(help: "The model whose weights are kept.")
    var model: String

    @Argument(help: "The model whose tokenizer (and embeddings, as a guide) the output takes.")
    var donor: String

    @Argument(help: "The output model folder.")
    var output: String

    @Option(name: [.customShort("k"), .customLong("k")], help: "Shared tokens combined per new token (omp, common_interpolation).")
    var k = 64

    @Option(name: [.customShort("a"), .customLong("approximation-method")],
            help: "omp, common_interpolation, subword, mean, zero, randn or john_hewitt.")
    var approximationMethod = "omp"

    @Flag(name: [.customShort("c"), .customLong("cosine-similarity")],
          help: "common_interpolation: nearest shared tokens by cosine similarity, not Euclidean distance.")
    var cosineSimilarity = false

    @Option(name: [.customShort("w"), .customLong("weight-scheme")],
            help: "common_interpolation's weights: distance_proportional, barycentric or least_squares.")
    var weightScheme = "distance_proportional"

    @Option(name: [.customShort("s"), .customLong("subword-method")],
            help: "subword's combination: mean, sum, weighted_mean or first_last.")
    var subwordMethod = "mean"

    @Option(name: .customLong("new-vocab-noise"), help: "Standard deviation of Gaussian noise added to approximated rows (seeded).")
    var newVocabNoise: Double?

    @Option(name: .customLong("new-vocab-scale"), help: "Multiply approximated rows by this factor.")
    var newVocabScale: Double?

    @Option(help: "Seed of randn, john_hewitt and --new-vocab-noise. Same seed, same bytes.")
    var seed: UInt64 = 0

    @OptionGroup var out: ModelOutputOptions

    @Flag(help: "No progress line.")
    var quiet = false

    func run() throws {
        let start = Date()
        guard let method = TokenSurgeon.Method(rawValue: approximationMethod) else {
            throw ValidationError("--approximation-method '\(approximationMethod)' is not one of \(TokenSurgeon.Method.allCases.map(\.rawValue).joined(separator: ", ")) (mergekit's landmark_pca, stb and mp_rope are not implemented; see docs/tokensurgeon.md)")
        }
        guard let scheme = TokenSurgeon.WeightScheme(rawValue: weightScheme) else {
            throw ValidationError("--weight-scheme '\(weightScheme)' is not one of \(TokenSurgeon.WeightScheme.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let subword = TokenSurgeon.SubwordMethod(rawValue: subwordMethod) else {
            throw ValidationError("--subword-method '\(subwordMethod)' is not one of \(TokenSurgeon.SubwordMethod.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let shardSize = try out.shardSize()
        var options = TokenSurgeon.Options()
        options.method = method
        options.k = k
        options.cosineSimilarity = cosineSimilarity
        options.weightScheme = scheme
        options.subwordMethod = subword
        options.newVocabNoise = newVocabNoise
        options.newVocabScale = newVocabScale
        options.seed = seed
        let surgeon = try TokenSurgeon(model: ModelSource.open(model), donor: ModelSource.open(donor), options: options)
        let progress = ProgressDisplay(label: "tokensurgeon", enabled: !quiet)
        let reports = try surgeon.write(to: output, overwrite: out.overwrite, maxShardSize: shardSize, durability: out.durability) { p in
            progress.update(done: p.done, total: p.total, unit: "tensors", detail: p.item)
        }
        progress.finish()
        var how = method.rawValue
        if method.usesK { how += ", k = \(k)" }
        if method == .commonInterpolation { how += ", \(scheme.rawValue)\(cosineSimilarity ? ", cosine" : "")" }
        if method == .subword { how += ", \(subword.rawValue)" }
        if method.isRandom { how += ", seed \(seed)" }
        for r in reports {
            printError("\(r.tensor): \(r.rows) rows, \(r.exact) copied from the model, \(r.approximated) approximated (\(how))")
            for note in r.notes { printError("\(r.tensor): \(note)") }
        }
        if surgeon.modelIsTied { printError("lm_head stays tied to the embedding") }
        printError(String(format: "wrote %@ in %.1f s", output, Date().timeIntervalSince(start)))
    }
}
