import AmalgamEval
import Foundation

/// The page's sections for `amalgam eval` record folders: each model's score per task with its standard
/// error, and each model's paired difference from the reference model, example by example.
enum EvalSections {
    /// Short, distinct names: each folder's last component (with its parent's where two would clash).
    static func names(_ paths: [String]) -> [String] {
        let last = paths.map { ($0 as NSString).lastPathComponent }
        return paths.indices.map { i in
            guard last.filter({ $0 == last[i] }).count > 1 else { return last[i] }
            let parent = ((paths[i] as NSString).deletingLastPathComponent as NSString).lastPathComponent
            return parent.isEmpty ? paths[i] : parent + "/" + last[i]
        }
    }

    static func sections(_ folders: [EvalRecordFolder], reference: String?) throws(ReportError) -> [ReportSection] {
        let names = names(folders.map(\.path))
        var referenceIndex = 0
        if let reference {
            let wanted = (reference as NSString).standardizingPath
            guard let i = folders.indices.first(where: { (folders[$0].path as NSString).standardizingPath == wanted || names[$0] == reference }) else {
                throw .input(path: reference, reason: "--reference must be one of the eval folders given (\(names.joined(separator: ", ")))")
            }
            referenceIndex = i
        }
        let tasks = Array(Set(folders.flatMap { $0.tasks.map(\.name) })).sorted()

        // Scores: a table of each task's headline metric, and a chart per task.
        var rows: [[String]] = []
        for (i, folder) in folders.enumerated() {
            var row = [names[i]]
            for task in tasks {
                let t = folder.tasks.first { $0.name == task }
                row.append(t?.headline.map { m in formatNumber(m.value) + (m.stderr.map { " ± " + formatNumber($0) } ?? "") + " (n = \(t!.count))" } ?? "—")
            }
            rows.append(row)
        }
        let headers = tasks.map { task -> String in
            let kind = folders.lazy.compactMap { $0.tasks.first { $0.name == task }?.kind }.first
            return task + (kind.map { " · " + PairedComparison.defaultMetric($0).name } ?? "")
        }
        var charts: [String] = []
        for task in tasks {
            var chartRows: [IntervalChart.Row] = []
            var metric = "", lower = false
            for (i, folder) in folders.enumerated() {
                guard let t = folder.tasks.first(where: { $0.name == task }), let m = t.headline else { continue }
                metric = m.name
                lower = PairedComparison.defaultMetric(t.kind).lowerIsBetter
                chartRows.append(IntervalChart.Row(label: names[i], value: m.value, halfWidth: m.stderr, colour: i))
            }
            guard !chartRows.isEmpty else { continue }
            charts.append(IntervalChart(title: "\(task): \(metric) ± 1 standard error", xLabel: metric + (lower ? " (lower is better)" : " (higher is better)"),
                                        rows: chartRows, reference: nil).svg())
        }
        var scores = ReportSection(title: "Scores on held-out tasks", source: folders.map(\.path).joined(separator: ", "), blocks: [
            .paragraph("Each model's headline metric per task, from the summaries `amalgam eval` wrote (value ± its standard error over the examples). "
                + "Models scored on the same examples are compared example by example in the next section, which tells them apart far better than these bars."),
            .table(header: ["model"] + headers, rows: rows),
        ])
        if !charts.isEmpty { scores.blocks.append(.charts(charts)) }
        guard folders.count > 1 else {
            scores.blocks.append(.note("Only one model was evaluated: there is nothing to compare it with."))
            return [scores]
        }

        // Paired differences against the reference.
        let referenceName = names[referenceIndex]
        var table: [[String]] = []
        var byTask: [String: [IntervalChart.Row]] = [:]
        var metricOf: [String: (String, Bool)] = [:]
        var notes: [String] = []
        for (i, folder) in folders.enumerated() where i != referenceIndex {
            let comparisons: [PairedComparison]
            do { comparisons = try PairedComparison.compare(folderA: folders[referenceIndex].path, folderB: folder.path) } catch {
                notes.append("\(names[i]) is not compared with \(referenceName): \(error.description)")
                continue
            }
            for cmp in comparisons {
                metricOf[cmp.task] = (cmp.metric, cmp.lowerIsBetter)
                let half = cmp.stderr.map { studentT975(degreesOfFreedom: cmp.count - 1) * $0 }
                byTask[cmp.task, default: []].append(IntervalChart.Row(label: names[i], value: cmp.difference, halfWidth: half, colour: i))
                table.append([names[i], cmp.task, cmp.metric, "\(cmp.count)", formatNumber(cmp.difference),
                              cmp.stderr.map(formatNumber) ?? "—", "\(cmp.betterB) / \(cmp.betterA) / \(cmp.ties)", verdict(cmp)])
            }
        }
        var differences = ReportSection(title: "Paired differences from \(referenceName)", source: nil, blocks: [
            .paragraph("For every task both models were scored on, the mean per-example difference model − \(referenceName) with its standard error "
                + "(whiskers: a 95 % interval, ± t standard errors with Student's t at n − 1 degrees of freedom: 2.78 at n = 5, 2.09 at n = 20, 1.96 for large n). "
                + "A whisker that crosses the dashed zero line is a difference these examples cannot tell from none, and the verdict says so."),
        ])
        for note in notes { differences.blocks.append(.note(note)) }
        if !table.isEmpty {
            differences.blocks.append(.table(header: ["model", "task", "metric", "n", "model − \(referenceName)", "± stderr",
                                                      "model better / \(referenceName) better / equal", "verdict"], rows: table))
            differences.blocks.append(.charts(byTask.keys.sorted().map { task in
                let (metric, lower) = metricOf[task]!
                return IntervalChart(title: "\(task): \(metric), model − \(referenceName)",
                                     xLabel: "difference in \(metric) (\(lower ? "below zero: better than" : "above zero: better than") \(referenceName))",
                                     rows: byTask[task]!, reference: 0).svg()
            }))
        }
        return [scores, differences]
    }

    /// Whether a paired difference is distinguishable from none (beyond two standard errors), in words.
    static func verdict(_ c: PairedComparison) -> String {
        guard let se = c.stderr, se > 0 else { return c.difference == 0 ? "identical on every example" : "one example: no error estimate" }
        let z = c.difference / se, t = studentT975(degreesOfFreedom: c.count - 1)
        guard abs(z) >= t else { return String(format: "no real difference (|Δ| = %.1f SE; 95 %% needs %.2f)", abs(z), t) }
        let better = (c.difference < 0) == c.lowerIsBetter
        return String(format: "%@ (%.1f SE)", better ? "better" : "worse", abs(z))
    }
}

/// The 97.5 % quantile of Student's t with `degreesOfFreedom` (two-sided 95 %), from the table; 1.96 beyond 30.
func studentT975(degreesOfFreedom: Int) -> Double {
    let table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
                 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
    guard degreesOfFreedom >= 1 else { return .infinity }
    return degreesOfFreedom <= table.count ? table[degreesOfFreedom - 1] : 1.96
}
