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
            roles normalised) keeps the model's row exactly; the rows of the other tokens are approximated: \
            omp (default) writes the donor's row as a sparse combination of k donor rows of shared tokens and \
            applies the same combination to the model's rows; mean and zero are the cheap fallbacks. The output \
            has the donor's tokenizer files and vocab size and appears only when complete. See docs/tokensurgeon.md.

            Example:
              amalgam tokensurgeon models/my-model models/donor my-model-donor-vocab -k 32
            """
    )

    @Argument(help: "The model whose weights are kept.")
    var model: String

    @Argument(help: "The model whose tokenizer (and embeddings, as a guide) the output takes.")
    var donor: String

    @Argument(help: "The output model folder.")
    var output: String

    @Option(name: [.customShort("k"), .customLong("k")], help: "Shared tokens combined per new token (omp).")
    var k = 64

    @Option(name: [.customShort("a"), .customLong("approximation-method")], help: "omp, mean or zero.")
    var approximationMethod = "omp"

    @Option(name: .customLong("new-vocab-noise"), help: "Standard deviation of Gaussian noise added to approximated rows (seeded).")
    var newVocabNoise: Double?

    @Option(name: .customLong("new-vocab-scale"), help: "Multiply approximated rows by this factor.")
    var newVocabScale: Double?

    @Option(help: "Seed of --new-vocab-noise. Same seed, same bytes.")
    var seed: UInt64 = 0

    @OptionGroup var out: ModelOutputOptions

    @Flag(help: "No progress line.")
    var quiet = false

    func run() throws {
        let start = Date()
        guard let method = TokenSurgeon.Method(rawValue: approximationMethod) else {
            throw ValidationError("--approximation-method '\(approximationMethod)' is not one of \(TokenSurgeon.Method.allCases.map(\.rawValue).joined(separator: ", ")) (mergekit's other methods are not implemented; see docs/tokensurgeon.md)")
        }
        let shardSize = try out.shardSize()
        var options = TokenSurgeon.Options()
        options.method = method
        options.k = k
        options.newVocabNoise = newVocabNoise
        options.newVocabScale = newVocabScale
        options.seed = seed
        let surgeon = try TokenSurgeon(model: ModelSource.open(model), donor: ModelSource.open(donor), options: options)
        let progress = ProgressDisplay(label: "tokensurgeon", enabled: !quiet)
        let reports = try surgeon.write(to: output, overwrite: out.overwrite, maxShardSize: shardSize, durability: out.durability) { p in
            progress.update(done: p.done, total: p.total, unit: "tensors", detail: p.item)
        }
        progress.finish()
        for r in reports {
            printError("\(r.tensor): \(r.rows) rows, \(r.exact) copied from the model, \(r.approximated) approximated (\(method.rawValue)\(method == .omp ? ", k = \(k)" : ""))")
        }
        if surgeon.modelIsTied { printError("lm_head stays tied to the embedding") }
        printError(String(format: "wrote %@ in %.1f s", output, Date().timeIntervalSince(start)))
    }
}
