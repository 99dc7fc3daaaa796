import AmalgamTestSupport
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// `amalgam report` as a user runs it, on run folders and eval records the cheapest runs make (the tiny llama
/// of fixtures/gguf): one page, every plot drawn, well-formed, nothing fetched.
@Suite(.requires(amalgamProgram))
struct ReportCommandTests {
    /// The `<svg class="plot" …>…</svg>` elements of `page`.
    func plots(_ page: String) -> [String] {
        page.components(separatedBy: "<svg class=\"plot\"").dropFirst().map { $0.components(separatedBy: "</svg>")[0] }
    }

    /// Whether a plot draws something: a line with at least two points, a dot, a bar or a heat-map cell.
    func hasMarks(_ plot: String) -> Bool {
        if plot.contains("class=\"interval\"") || plot.contains("class=\"bar\"") || plot.contains("class=\"cell\"") { return true }
        return plot.components(separatedBy: "class=\"series\"").dropFirst().contains { part in
            guard let d = part.components(separatedBy: "d=\"").dropFirst().first?.components(separatedBy: "\"").first else { return false }
            return d.hasPrefix("M") && d.contains("L")
        }
    }

    /// Whether `page` parses as XML (the page is written to be: no named entities, every element closed).
    func isWellFormed(_ page: String) -> Bool {
        let parser = XMLParser(data: Data(page.utf8))
        return parser.parse()
    }

    /// The runs: evolve M2N2 and CMA-ES, DAM and a fine-tune on the tiny llama; `eval` of the two evolve
    /// inputs on the tiny task; a step-timing table. Returns the inputs of `amalgam report`.
    func makeInputs(_ dir: String) throws -> [String] {
        let evolve = EvolveTests()
        let inputs = try evolve.makeInputs(dir)
        for (name, method, budget) in [("m2n2", "m2n2", 8), ("cmaes", "cmaes", 8)] {
            let config = try evolve.writeConfig(dir + "/\(name).yml", inputs, method: method, budget: budget, seed: 3, extra: """
                batch_size: 4
                m2n2: {archive_size: 3}
                cmaes: {merge_method: linear, population: 4, layer_granularity: 1}
                """)
            let run = try runAmalgam(["evolve", config, "--run-dir", dir + "/run-" + name, "--quiet"])
            #expect(run.status == 0, "evolve \(name): \(run.err)")
        }
        let (damDir, damConfig) = try DAMCommandTests().setUp()
        let dam = try runAmalgam(["dam", damConfig, dir + "/dam-model"])
        #expect(dam.status == 0, "dam: \(dam.err)")
        try FileManager.default.moveItem(atPath: damDir + "/run", toPath: dir + "/run-dam")
        try? FileManager.default.removeItem(atPath: damDir)

        let text = dir + "/train.txt"
        try (0..<40).map { "Line \($0): the quick brown fox jumps over the lazy dog." }.joined(separator: "\n").write(toFile: text, atomically: true, encoding: .utf8)
        let fineTune = try runAmalgam(["finetune", inputs.a, text, dir + "/tuned", "--run-dir", dir + "/run-finetune", "--seq-len", "16",
                                       "--batch-tokens", "32", "--micro-batch-tokens", "32", "--seed", "3", "--steps", "4", "--checkpoint-every", "2"])
        #expect(fineTune.status == 0, "finetune: \(fineTune.err)")

        for model in [inputs.a, inputs.b] {
            let eval = try runAmalgam(["eval", model, inputs.task, "--out", model + "-eval", "--quiet"])
            #expect(eval.status == 0, "eval: \(eval.err)")
        }
        try "step\tseconds\tpeak_rss_kib\nmerge average\t1.5\t204800\nevaluate\t12\t512000\n".write(toFile: dir + "/steps.tsv", atomically: true, encoding: .utf8)
        return [inputs.a + "-eval", inputs.b + "-eval", dir + "/run-m2n2", dir + "/run-cmaes", dir + "/run-dam", dir + "/run-finetune", dir + "/steps.tsv"]
    }

    @Test func aReportOfEveryKindOfRunAndTwoEvaluatedModelsDrawsEveryPlotAndFetchesNothing() throws {
        let dir = temporaryFolder("report")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inputs = try makeInputs(dir)
        let report = try runAmalgam(["report"] + inputs + ["--out", dir + "/report.html"])
        #expect(report.status == 0, "\(report.err)")
        let page = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
        #expect(isWellFormed(page))
        for heading in ["Scores on held-out tasks", "Paired differences from a-eval", "M2N2 run run-m2n2", "CMA-ES run run-cmaes",
                        "DAM run run-dam", "Fine-tune run run-finetune", "Time and peak memory per step"] {
            #expect(page.contains("<h2>\(heading)</h2>"), "no section \(heading)")
        }
        // One plot per series: eval 1 + 1, M2N2 3, CMA-ES 2, DAM 3 + the heat map, fine-tune 2, timing 2.
        let drawn = plots(page)
        #expect(drawn.count == 15, "\(drawn.count) plots")
        for plot in drawn {
            #expect(hasMarks(plot), "an empty plot: \(plot.prefix(300))")
        }
        #expect(!page.contains("This run recorded no"), "a run without history")
        #expect(report.out.contains("15 plots"), "\(report.out)")
        // Self-contained: no address, no script, no external reference of any kind.
        for outside in ["http:", "https:", "//", "<script", "<link", "<img", "src=", "url(", "@import"] {
            #expect(!page.replacingOccurrences(of: "<!DOCTYPE html>", with: "").contains(outside), "the page refers to \(outside)")
        }
    }

    @Test func aFolderTheReportCannotReadIsNamedAndNoPageIsWritten() throws {
        let dir = temporaryFolder("report-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/empty", withIntermediateDirectories: true)
        let empty = try runAmalgam(["report", dir + "/empty", "--out", dir + "/report.html"])
        #expect(empty.status != 0 && empty.err.contains(dir + "/empty") && empty.err.contains("run folder"), "\(empty.err)")

        try FileManager.default.createDirectory(atPath: dir + "/broken", withIntermediateDirectories: true)
        try "not a database".write(toFile: dir + "/broken/run.sqlite", atomically: true, encoding: .utf8)
        let broken = try runAmalgam(["report", dir + "/broken", "--out", dir + "/report.html"])
        #expect(broken.status != 0 && broken.err.contains(dir + "/broken"), "\(broken.err)")

        try "step\tseconds\nmerge\tfast\n".write(toFile: dir + "/bad.tsv", atomically: true, encoding: .utf8)
        let table = try runAmalgam(["report", dir + "/bad.tsv", "--out", dir + "/report.html"])
        #expect(table.status != 0 && table.err.contains(dir + "/bad.tsv") && table.err.contains("line 2"), "\(table.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/report.html"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains("report") }.isEmpty)
    }
}
