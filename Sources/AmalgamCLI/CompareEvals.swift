import AmalgamEval
import ArgumentParser
import Foundation

/// `amalgam compare A_DIR B_DIR`: two models' `amalgam eval` records compared example by example.
struct CompareEvals: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two models example by example from the records `amalgam eval --out` wrote for each.",
        discussion: """
            For every task evaluated in both folders (on the same examples: the same --limit and --seed), prints the \
            mean of each model, the mean per-example difference B − A with its standard error, and on how many \
            examples each model is better. The per-example metric is bits per byte for language modelling, acc for \
            multiple choice and exact_match for generation, unless --metric names another record key.
            """
    )

    @Argument(help: "The output folder of `amalgam eval` for model A (the reference).")
    var a: String

    @Argument(help: "The output folder of `amalgam eval` for model B.")
    var b: String

    @Option(help: "A per-example record key to compare (e.g. token_perplexity, acc_norm, loglikelihood) instead of each kind's default.")
    var metric: String?

    func run() throws {
        let comparisons = try PairedComparison.compare(folderA: a, folderB: b, metric: metric)
        let rows = comparisons.map { c in
            [c.task, c.metric + (c.lowerIsBetter ? " (lower is better)" : ""), "\(c.count)", String(format: "%.4f", c.meanA), String(format: "%.4f", c.meanB),
             String(format: "%+.4f", c.difference), c.stderr.map { String(format: "%.4f", $0) } ?? "N/A", "\(c.betterB) / \(c.betterA) / \(c.ties)"]
        }
        print(Eval.table(header: ["task", "metric", "n", "A", "B", "B − A", "± stderr", "B better / A better / equal"], rows: rows), terminator: "")
    }
}
