import AmalgamSearch
import Foundation

/// The page's section for one run folder, by its kind: M2N2's archive over passes, CMA-ES's fitness and step
/// size over generations, DAM's loss terms and learned coefficients, a fine-tune's loss. Everything is read
/// through the run store (`RunFolder.openToRead` and the jobs' `history` readers), which changes nothing.
enum RunSections {
    static func section(runFolder path: String) throws(ReportError) -> ReportSection {
        let folder: RunFolder
        do { folder = try RunFolder.openToRead(path: path) } catch { throw .input(path: path, reason: error.description) }
        let name = (path as NSString).lastPathComponent
        do {
            switch folder.kind {
            case EvolveRunner.m2n2Kind: return try m2n2(folder, name: name)
            case EvolveRunner.cmaesKind: return try cmaes(folder, name: name)
            case DAMRunFolder.kind: return try dam(folder, name: name)
            case FineTuneRunFolder.kind: return try fineTune(folder, name: name)
            default:
                throw ReportError.input(path: path, reason: "holds a `\(folder.kind)` run, which a report does not draw yet "
                    + "(it draws m2n2, evolve-cmaes, dam and finetune runs)")
            }
        } catch let error as ReportError {
            throw error
        } catch let error as SearchError {
            throw .input(path: path, reason: error.description)
        } catch {
            throw .input(path: path, reason: "\(error)")
        }
    }

    /// A note for a run that recorded no history (made before amalgam kept one, or stopped before its first step).
    static func noHistory(_ what: String) -> ReportBlock {
        .note("This run recorded no \(what): it was made by an amalgam older than the report (which did not keep it) "
            + "or stopped before its first recorded step. Run it again (or continue it with --resume) to see it here.")
    }

    static func m2n2(_ folder: RunFolder, name: String) throws -> ReportSection {
        let points = try M2N2HistoryPoint.history(in: folder)
        var section = ReportSection(title: "M2N2 run \(name)", source: folder.path, blocks: [
            .paragraph("The archive after each recorded number of children (forward passes): competition-shared fitness, the members' mean "
                + "training scores, coverage (the fraction of training examples some member solves) and diversity (the mean fraction of examples "
                + "on which two members differ)."),
        ])
        guard !points.isEmpty else {
            section.blocks.append(noHistory("archive history"))
            return section
        }
        let x = points.map { Double($0.passes) }
        func series(_ name: String, _ values: [Double]) -> LineChart.Series { LineChart.Series(name: name, points: Array(zip(x, values)).map { ($0.0, $0.1) }) }
        let last = points.last!
        section.blocks.append(.table(header: ["children", "best fitness", "best score", "mean score", "coverage", "diversity", "seconds"],
                                     rows: [["\(last.passes)", formatNumber(last.bestFitness), formatNumber(last.bestScore), formatNumber(last.meanScore),
                                             formatNumber(last.coverage), formatNumber(last.diversity), formatNumber(last.seconds)]]))
        section.blocks.append(.charts([
            LineChart(title: "Archive fitness", xLabel: "children (forward passes)", yLabel: "fitness",
                      series: [series("best", points.map(\.bestFitness)), series("mean", points.map(\.meanFitness))]).svg(),
            LineChart(title: "Members' training score", xLabel: "children (forward passes)", yLabel: "mean score",
                      series: [series("best member", points.map(\.bestScore)), series("archive mean", points.map(\.meanScore))]).svg(),
            LineChart(title: "Coverage and diversity", xLabel: "children (forward passes)", yLabel: "fraction of examples",
                      series: [series("coverage", points.map(\.coverage)), series("diversity", points.map(\.diversity))], fixedY: (0, 1)).svg(),
        ]))
        return section
    }

    static func cmaes(_ folder: RunFolder, name: String) throws -> ReportSection {
        let points = try EvolveRunner.cmaesHistory(in: folder)
        var section = ReportSection(title: "CMA-ES run \(name)", source: folder.path, blocks: [
            .paragraph("Each generation's candidates: the best fitness so far, the generation's best and mean, and the step size σ after the generation, "
                + "against the number of candidates scored (the evaluation budget)."),
        ])
        guard !points.isEmpty else {
            section.blocks.append(noHistory("generation"))
            return section
        }
        let x = points.map { Double($0.evaluations) }
        func series(_ name: String, _ values: [Double]) -> LineChart.Series { LineChart.Series(name: name, points: Array(zip(x, values)).map { ($0.0, $0.1) }) }
        let last = points.last!
        section.blocks.append(.table(header: ["candidates scored", "generations", "restarts", "best fitness", "σ"],
                                     rows: [["\(last.evaluations)", "\(points.count)", "\(last.restart)", formatNumber(last.bestSoFar),
                                             last.sigma.map(formatNumber) ?? "not recorded"]]))
        var charts = [LineChart(title: "Fitness per generation", xLabel: "candidates scored", yLabel: "fitness",
                                series: [series("best so far", points.map(\.bestSoFar)), series("generation best", points.map(\.generationBest)),
                                         series("generation mean", points.map(\.generationMean))]).svg()]
        let sigmas = points.compactMap { p in p.sigma.map { (Double(p.evaluations), $0) } }
        if sigmas.isEmpty {
            section.blocks.append(.note("This run recorded no step size σ (an amalgam older than the report made it)."))
        } else {
            charts.append(LineChart(title: "Step size σ", xLabel: "candidates scored", yLabel: "σ",
                                    series: [LineChart.Series(name: "σ", points: sigmas.map { ($0.0, $0.1) })]).svg())
        }
        section.blocks.append(.charts(charts))
        return section
    }

    static func dam(_ folder: RunFolder, name: String) throws -> ReportSection {
        let history = try DAMRunFolder.history(in: folder)
        var section = ReportSection(title: "DAM run \(name)", source: folder.path, blocks: [
            .paragraph("The loss terms of each step (KL divergence to each source on its own batch, and the similarity, L1 and L2 terms before "
                + "their λ), the gradient norm, and the learned coefficients: the mean raw weight coefficient of each merged tensor per source."),
        ])
        if history.steps.isEmpty {
            section.blocks.append(noHistory("steps"))
        } else {
            let x = history.steps.map { Double($0.step) }
            func series(_ name: String, _ values: [Double]) -> LineChart.Series { LineChart.Series(name: name, points: Array(zip(x, values)).map { ($0.0, $0.1) }) }
            let sources = history.steps.map(\.loss.kl.count).max() ?? 0
            var klSeries = [series("total", history.steps.map(\.loss.total))]
            for k in 0..<sources {
                klSeries.append(series("KL source \(k)", history.steps.map { $0.loss.kl.count > k ? $0.loss.kl[k] : .nan }))
            }
            let last = history.steps.last!
            section.blocks.append(.table(header: ["steps", "total loss", "KL per source", "similarity", "L1", "L2", "gradient norm"],
                                         rows: [["\(last.step)", formatNumber(last.loss.total), last.loss.kl.map(formatNumber).joined(separator: ", "),
                                                 formatNumber(last.loss.similarity), formatNumber(last.loss.l1), formatNumber(last.loss.l2),
                                                 formatNumber(last.gradientNorm)]]))
            section.blocks.append(.charts([
                LineChart(title: "Loss and KL per source", xLabel: "step", yLabel: "loss", series: klSeries).svg(),
                LineChart(title: "Regularisation terms (before λ)", xLabel: "step", yLabel: "value",
                          series: [series("similarity", history.steps.map(\.loss.similarity)), series("L1", history.steps.map(\.loss.l1)),
                                   series("L2", history.steps.map(\.loss.l2))]).svg(),
                LineChart(title: "Gradient norm", xLabel: "step", yLabel: "‖g‖", series: [series("gradient norm", history.steps.map(\.gradientNorm))]).svg(),
            ]))
        }
        if history.coefficients.isEmpty {
            section.blocks.append(.note("No exported coefficients: the run has not finished (coefficients.safetensors is written at its end)."))
        } else {
            section.blocks.append(.charts([coefficientHeatMap(history)]))
        }
        return section
    }

    /// Columns: layers (the number in `layers.N.`, or the tensor's name when it has none); rows: source × the
    /// tensor's part within the layer (`mlp.up_proj`).
    static func coefficientHeatMap(_ history: DAMHistory) -> String {
        func split(_ tensor: String) -> (layer: String, part: String) {
            if let r = tensor.range(of: #"layers\.[0-9]+\."#, options: .regularExpression) {
                let layer = tensor[r].dropFirst("layers.".count).dropLast()
                return (String(layer), String(tensor[r.upperBound...]))
            }
            return (tensor, "")
        }
        var layers: [String] = [], parts: [String] = []
        for t in history.coefficients {
            let (layer, part) = split(t.tensor)
            if !layers.contains(layer) { layers.append(layer) }
            if !parts.contains(part) { parts.append(part) }
        }
        if layers.allSatisfy({ Int($0) != nil }) { layers.sort { Int($0)! < Int($1)! } }
        let sources = history.coefficients.map(\.meanPerSource.count).max() ?? 0
        var rows: [String] = [], values: [[Double?]] = []
        for k in 0..<sources {
            for part in parts {
                rows.append(part.isEmpty ? "source \(k)" : "source \(k) · \(part)")
                values.append(layers.map { layer in
                    history.coefficients.first { split($0.tensor) == (layer, part) }.flatMap { $0.meanPerSource.count > k ? $0.meanPerSource[k] : nil }
                })
            }
        }
        let all = values.flatMap { $0.compactMap { $0 } }
        let centre = all.isEmpty ? 0 : all.reduce(0, +) / Double(all.count)
        let scale = history.scaleFunction.map { ", before f = \($0)" } ?? ""
        return HeatMap(title: "Mean raw coefficient per layer and source\(scale) (centred on \(formatNumber(centre)))",
                       rows: rows, columns: layers, values: values, centre: centre).svg()
    }

    static func fineTune(_ folder: RunFolder, name: String) throws -> ReportSection {
        let steps = try FineTuneRunFolder.history(in: folder)
        var section = ReportSection(title: "Fine-tune run \(name)", source: folder.path, blocks: [
            .paragraph("The mean next-token loss of each step's batch, the learning rate and the gradient norm before clipping."),
        ])
        guard !steps.isEmpty else {
            section.blocks.append(noHistory("loss per step"))
            return section
        }
        let x = steps.map { Double($0.step) }
        func series(_ name: String, _ values: [Double?]) -> LineChart.Series {
            LineChart.Series(name: name, points: zip(x, values).compactMap { p in p.1.map { (p.0, $0) } })
        }
        section.blocks.append(.charts([
            LineChart(title: "Training loss", xLabel: "step", yLabel: "loss (nats per token)", series: [series("loss", steps.map(\.loss))]).svg(),
            LineChart(title: "Learning rate and gradient norm", xLabel: "step", yLabel: "value",
                      series: [series("learning rate × 1e4", steps.map { $0.learningRate.map { $0 * 1e4 } }),
                               series("gradient norm", steps.map(\.gradientNorm))]).svg(),
        ]))
        return section
    }
}

/// A step-timing table (tab-separated, a header line naming `step`, `seconds` and optionally `peak_rss_kib`):
/// each step's wall time and peak memory as bars.
enum TimingSection {
    static func section(_ path: String) throws(ReportError) -> ReportSection {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw .input(path: path, reason: "cannot be read as UTF-8 text") }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        guard let header = lines.first, let stepColumn = header.firstIndex(of: "step"), let secondsColumn = header.firstIndex(of: "seconds") else {
            throw .input(path: path, reason: "is not a step-timing table: its first line must name the tab-separated columns step, seconds (and peak_rss_kib)")
        }
        let memoryColumn = header.firstIndex(of: "peak_rss_kib")
        var seconds: [(label: String, value: Double)] = [], memory: [(label: String, value: Double)] = [], rows: [[String]] = []
        for (n, fields) in lines.dropFirst().enumerated() {
            guard fields.count == header.count, let s = Double(fields[secondsColumn]) else {
                throw .input(path: path, reason: "line \(n + 2) does not have \(header.count) tab-separated fields with a number of seconds")
            }
            let mib = memoryColumn.flatMap { Double(fields[$0]) }.map { $0 / 1024 }
            seconds.append((fields[stepColumn], s))
            if let mib { memory.append((fields[stepColumn], mib)) }
            rows.append([fields[stepColumn], formatNumber(s), mib.map(formatNumber) ?? "—"])
        }
        guard !rows.isEmpty else { throw .input(path: path, reason: "holds a header but no steps") }
        var section = ReportSection(title: "Time and peak memory per step", source: path, blocks: [
            .paragraph("Wall time of each step and the peak resident memory of its largest process, as the job measured them."),
            .table(header: ["step", "seconds", "peak memory (MiB)"], rows: rows),
        ])
        var charts = [BarChart(title: "Wall time per step", xLabel: "seconds", bars: seconds).svg()]
        if !memory.isEmpty { charts.append(BarChart(title: "Peak memory per step", xLabel: "MiB", bars: memory).svg()) }
        section.blocks.append(.charts(charts))
        return section
    }
}
