import AmalgamCore
import AmalgamEval
import AmalgamSearch
import Foundation

/// Why a report cannot be made: an input that is none of the things a report reads, or one that cannot be
/// read, named with what to do; or the page that cannot be written.
public enum ReportError: Error, CustomStringConvertible, Equatable {
    case input(path: String, reason: String)
    case output(path: String, reason: String)

    public var description: String {
        switch self {
        case let .input(path, reason): return "\(path): \(reason)"
        case let .output(path, reason): return "\(path): cannot write the report (\(reason))"
        }
    }
}

/// One HTML page (inline SVG, nothing fetched) from run folders (`evolve` M2N2 and CMA-ES, `dam`,
/// `finetune --run-dir`), `amalgam eval` record folders and step-timing tables: per-task scores with
/// their standard errors, paired differences against a reference model, the history of each run and the
/// time and peak memory of each step.
public struct RunReport {
    /// What the page holds, in order.
    public private(set) var sections: [ReportSection] = []
    /// The page's title.
    public var title: String

    /// Reads every input. A folder with `run.sqlite` is a run (a folder of such folders, an experiment's
    /// `--run-dir`, is each of its runs); a folder with `TASK.summary.json` files is an
    /// eval record folder; a `.tsv` file is a step-timing table (`step`, `seconds`, `peak_rss_kib` columns).
    /// `reference` (one of the eval folders; default the first) is the model the others are compared with.
    public init(inputs: [String], reference: String? = nil, title: String = "Amalgam report") throws(ReportError) {
        self.title = title
        var evals: [EvalRecordFolder] = [], runs: [ReportSection] = [], timings: [ReportSection] = []
        for path in inputs {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw .input(path: path, reason: "does not exist")
            }
            if isDirectory.boolValue && RunFolder.exists(at: path) {
                runs.append(try RunSections.section(runFolder: path))
            } else if isDirectory.boolValue && EvalRecordFolder.holdsRecords(path) {
                do { evals.append(try EvalRecordFolder(path: path)) } catch { throw .input(path: path, reason: error.description) }
            } else if isDirectory.boolValue && !Self.runFolders(in: path).isEmpty {
                // An experiment's --run-dir: one run folder per run inside.
                for run in Self.runFolders(in: path) { runs.append(try RunSections.section(runFolder: run)) }
            } else if !isDirectory.boolValue && path.hasSuffix(".tsv") {
                timings.append(try TimingSection.section(path))
            } else {
                throw .input(path: path, reason: "is neither a run folder (no run.sqlite), an `amalgam eval` output folder (no TASK.summary.json) "
                    + "nor a step-timing table (.tsv); give run folders of finetune, dam or evolve, eval --out folders, or a timing table")
            }
        }
        if !evals.isEmpty { sections += try EvalSections.sections(evals, reference: reference) }
        sections += runs
        sections += timings
        guard !sections.isEmpty else { throw .input(path: inputs.first ?? ".", reason: "nothing to report") }
    }

    /// The run folders directly inside `path` (an experiment's `--run-dir` holds one per run), by name.
    static func runFolders(in path: String) -> [String] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
        return names.map { (path as NSString).appendingPathComponent($0) }.filter { RunFolder.exists(at: $0) }
    }

    /// The number of plots (`<svg class="plot">`) the page draws.
    public var plotCount: Int {
        sections.flatMap(\.blocks).map { $0.html.components(separatedBy: "<svg class=\"plot\"").count - 1 }.reduce(0, +)
    }

    /// The whole page: well-formed XHTML-compatible HTML with its style inline.
    public func html(generated: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        var out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>"
        out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>"
        out += "<title>\(escaped(title))</title><style>\(Self.style)</style></head><body>"
        out += "<h1>\(escaped(title))</h1><p class=\"meta\">Made by amalgam report on \(escaped(formatter.string(from: generated))). "
        out += "Sections: " + sections.enumerated().map { "<a href=\"#s\($0.offset)\">\(escaped($0.element.title))</a>" }.joined(separator: " · ") + "</p>"
        for (i, section) in sections.enumerated() {
            out += "<section id=\"s\(i)\"><h2>\(escaped(section.title))</h2>"
            if let source = section.source { out += "<p class=\"source\">\(escaped(source))</p>" }
            for block in section.blocks { out += block.html }
            out += "</section>"
        }
        return out + "</body></html>\n"
    }

    /// Writes the page to `path` under a temporary name, renamed when complete.
    public func write(to path: String, generated: Date = Date()) throws(ReportError) {
        do { try writeFileAtomically(html(generated: generated), to: path) } catch { throw .output(path: path, reason: error.description) }
    }

    static let style = """
        body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1400px;padding:0 16px;color:#222;background:#fff}
        h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:4px}
        h3{font-size:15px;margin:16px 0 4px}p{margin:6px 0;max-width:1000px;line-height:1.4}
        .meta,.source{color:#666;font-size:13px}.note{background:#fff8e1;border-left:3px solid #e69f00;padding:6px 10px}
        .charts{display:flex;flex-wrap:wrap;gap:12px 18px}
        table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
        th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
        svg.plot{background:#fff;border:1px solid #e4e4e4;font-size:11px}
        .chart-title{font-size:13px;font-weight:600;fill:#222}.tick,.legend,.row-label{fill:#333}
        .axis-label{fill:#555;font-size:12px}.grid{stroke:#eee}.tickmark{stroke:#888}
        .frame{fill:none;stroke:#aaa}.reference{stroke:#444;stroke-dasharray:4 3}
        """
}

/// A part of the page: a heading, where it came from, and its blocks.
public struct ReportSection: Sendable {
    public var title: String
    public var source: String?
    public var blocks: [ReportBlock]
}

/// A paragraph, a note, a table or a row of charts, as HTML.
public struct ReportBlock: Sendable {
    public var html: String

    static func paragraph(_ text: String) -> ReportBlock { ReportBlock(html: "<p>\(escaped(text))</p>") }
    static func note(_ text: String) -> ReportBlock { ReportBlock(html: "<p class=\"note\">\(escaped(text))</p>") }
    static func heading(_ text: String) -> ReportBlock { ReportBlock(html: "<h3>\(escaped(text))</h3>") }
    static func charts(_ svgs: [String]) -> ReportBlock { ReportBlock(html: "<div class=\"charts\">" + svgs.joined() + "</div>") }
    static func table(header: [String], rows: [[String]]) -> ReportBlock {
        var out = "<table><thead><tr>" + header.map { "<th>\(escaped($0))</th>" }.joined() + "</tr></thead><tbody>"
        for row in rows { out += "<tr>" + row.map { "<td>\(escaped($0))</td>" }.joined() + "</tr>" }
        return ReportBlock(html: out + "</tbody></table>")
    }
}
