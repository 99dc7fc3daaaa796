import AmalgamReport
import ArgumentParser
import Foundation

/// `amalgam report DIR… --out report.html`: one self-contained HTML page of runs and evaluations.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw run folders and evaluation records as one self-contained HTML page (inline SVG, nothing fetched).",
        discussion: """
            Inputs, in any order: run folders of `evolve` (M2N2: fitness, coverage and archive diversity over children; \
            CMA-ES: best fitness and step size over generations), `dam` (loss terms over steps, learned coefficients per \
            layer and source as a heat map) and `finetune --run-dir` (loss per step); output folders of `amalgam eval` \
            (each task's score with its standard error, and each model's paired difference from the reference model with \
            a 95 % interval); and step-timing tables (.tsv with columns step, seconds, peak_rss_kib) for time and peak \
            memory. The page is written under a temporary name and renamed when complete.
            """
    )

    @Argument(help: "Run folders (with run.sqlite), `amalgam eval --out` folders, and step-timing .tsv tables.")
    var inputs: [String]

    @Option(help: "Where to write the page.")
    var out: String = "report.html"

    @Option(help: "The eval folder the other models are compared with (default: the first eval folder given).")
    var reference: String?

    @Option(help: "The page's title.")
    var title: String = "Amalgam report"

    func run() throws {
        let report = try RunReport(inputs: inputs, reference: reference, title: title)
        try report.write(to: out)
        let plots = report.plotCount
        print("wrote \(out): \(report.sections.count) section\(report.sections.count == 1 ? "" : "s"), \(plots) plot\(plots == 1 ? "" : "s")")
    }
}
