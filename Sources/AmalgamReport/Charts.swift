import Foundation

// Charts drawn as inline SVG: a line chart, a dot-and-whisker chart (values with error bars, or paired
// differences around zero), horizontal bars and a heat map. Each is one `<svg class="plot">` whose marks
// carry a class (`series`, `interval`, `bar`, `cell`) so a check can tell an empty plot from a drawn one.
// The markup is well-formed XML (no named entities) and refers to nothing outside the page.

/// The colours of successive series (colour-blind-safe order).
let palette = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7f7f7f", "#000000"]

/// `text` with the five XML special characters escaped.
func escaped(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for c in text {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(c)
        }
    }
    return out
}

/// A number for an axis label or a table: three significant digits, no exponent for ordinary sizes.
func formatNumber(_ x: Double) -> String {
    guard x.isFinite else { return x.isNaN ? "n/a" : (x > 0 ? "∞" : "−∞") }
    if x == 0 { return "0" }
    let a = abs(x)
    if a >= 1e5 || a < 1e-3 { return String(format: "%.2e", x) }
    if a >= 100 { return String(format: "%.0f", x) }
    var text = String(format: "%.3g", x)
    if text.contains("e") { text = String(format: "%.4f", x) }
    return text
}

/// A coordinate with two decimals (enough for a 700-pixel chart, short in the file).
private func c(_ x: Double) -> String { String(format: "%.2f", x) }

/// Round tick values covering `lo...hi` (about five).
func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
    guard hi > lo, (hi - lo).isFinite else { return [lo] }
    let raw = (hi - lo) / Double(count)
    let magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    var out: [Double] = []
    var t = ceil(lo / step - 1e-9) * step
    while t <= hi + step * 1e-9 {
        out.append(abs(t) < step * 1e-9 ? 0 : t)
        t += step
    }
    return out
}

/// The extent of `values`, widened when flat and padded by 5 %.
func extent(_ values: [Double], including extra: [Double] = []) -> (Double, Double) {
    let all = (values + extra).filter(\.isFinite)
    guard var lo = all.min(), var hi = all.max() else { return (0, 1) }
    if hi - lo < 1e-12 * max(1, abs(hi)) {
        let pad = abs(hi) > 0 ? abs(hi) * 0.05 : 0.5
        return (lo - pad, hi + pad)
    }
    let pad = (hi - lo) * 0.05
    lo -= pad
    hi += pad
    return (lo, hi)
}

/// Lines over a shared x axis.
struct LineChart {
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
    }
    var title: String
    var xLabel: String
    var yLabel: String
    var series: [Series]
    /// A y range to show whatever the data (e.g. 0…1 for fractions).
    var fixedY: (Double, Double)?

    /// Series with at least one finite point.
    var drawable: [Series] {
        series.map { s in Series(name: s.name, points: s.points.filter { $0.x.isFinite && $0.y.isFinite }) }.filter { !$0.points.isEmpty }
    }

    func svg() -> String {
        let lines = drawable
        let width = 660.0, height = 280.0, left = 64.0, right = 170.0, top = 30.0, bottom = 44.0
        let plotW = width - left - right, plotH = height - top - bottom
        let (x0, x1) = extent(lines.flatMap { $0.points.map(\.x) })
        let (y0, y1) = fixedY ?? extent(lines.flatMap { $0.points.map(\.y) })
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * plotH }
        var out = "<svg class=\"plot\" role=\"img\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">"
        out += "<title>\(escaped(title))</title>"
        out += "<text class=\"chart-title\" x=\"\(c(left))\" y=\"18\">\(escaped(title))</text>"
        out += axes(left: left, top: top, plotW: plotW, plotH: plotH, xTicks: ticks(x0, x1).map { ($0, px($0)) },
                    yTicks: ticks(y0, y1).map { ($0, py($0)) }, xLabel: xLabel, yLabel: yLabel, height: height)
        for (i, s) in lines.enumerated() {
            let colour = palette[i % palette.count]
            let d = s.points.enumerated().map { (k, p) in (k == 0 ? "M" : "L") + c(px(p.x)) + " " + c(py(p.y)) }.joined(separator: " ")
            out += "<path class=\"series\" data-name=\"\(escaped(s.name))\" d=\"\(d)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.8\"/>"
            if s.points.count <= 40 {
                for p in s.points {
                    out += "<circle class=\"point\" cx=\"\(c(px(p.x)))\" cy=\"\(c(py(p.y)))\" r=\"2.6\" fill=\"\(colour)\"><title>\(escaped(s.name)): \(formatNumber(p.y)) at \(formatNumber(p.x))</title></circle>"
                }
            }
            let ly = top + 8 + Double(i) * 18
            out += "<line x1=\"\(c(left + plotW + 14))\" y1=\"\(c(ly))\" x2=\"\(c(left + plotW + 34))\" y2=\"\(c(ly))\" stroke=\"\(colour)\" stroke-width=\"2.5\"/>"
            out += "<text class=\"legend\" x=\"\(c(left + plotW + 40))\" y=\"\(c(ly + 4))\">\(escaped(s.name))</text>"
        }
        return out + "</svg>"
    }
}

/// Axis lines, ticks, grid and labels shared by the x–y charts.
private func axes(left: Double, top: Double, plotW: Double, plotH: Double, xTicks: [(Double, Double)], yTicks: [(Double, Double)],
                  xLabel: String, yLabel: String, height: Double) -> String {
    var out = "<g class=\"axes\">"
    for (value, y) in yTicks {
        out += "<line class=\"grid\" x1=\"\(c(left))\" y1=\"\(c(y))\" x2=\"\(c(left + plotW))\" y2=\"\(c(y))\"/>"
        out += "<text class=\"tick\" x=\"\(c(left - 6))\" y=\"\(c(y + 4))\" text-anchor=\"end\">\(formatNumber(value))</text>"
    }
    for (value, x) in xTicks {
        out += "<line class=\"tickmark\" x1=\"\(c(x))\" y1=\"\(c(top + plotH))\" x2=\"\(c(x))\" y2=\"\(c(top + plotH + 5))\"/>"
        out += "<text class=\"tick\" x=\"\(c(x))\" y=\"\(c(top + plotH + 18))\" text-anchor=\"middle\">\(formatNumber(value))</text>"
    }
    out += "<rect class=\"frame\" x=\"\(c(left))\" y=\"\(c(top))\" width=\"\(c(plotW))\" height=\"\(c(plotH))\"/>"
    out += "<text class=\"axis-label\" x=\"\(c(left + plotW / 2))\" y=\"\(c(height - 6))\" text-anchor=\"middle\">\(escaped(xLabel))</text>"
    out += "<text class=\"axis-label\" transform=\"translate(14 \(c(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(escaped(yLabel))</text>"
    return out + "</g>"
}

/// Rows of a value with an interval (a score ± its standard error, or a paired difference ± 1.96 standard
/// errors): a dot and a whisker per row, and a reference line (zero for differences).
struct IntervalChart {
    struct Row {
        var label: String
        var value: Double
        /// Half-width of the whisker (nil: none).
        var halfWidth: Double?
        /// Colour index (the model's, so a model keeps its colour across charts).
        var colour: Int
    }
    var title: String
    var xLabel: String
    var rows: [Row]
    /// A vertical reference line (0 for differences).
    var reference: Double?

    func svg() -> String {
        let rowH = 24.0, left = 190.0, right = 30.0, top = 30.0, bottom = 44.0, width = 660.0
        let height = top + bottom + rowH * Double(max(rows.count, 1))
        let plotW = width - left - right, plotH = height - top - bottom
        let finite = rows.filter { $0.value.isFinite }
        let (x0, x1) = extent(finite.flatMap { r in [r.value - (r.halfWidth ?? 0), r.value + (r.halfWidth ?? 0)] },
                              including: reference.map { [$0] } ?? [])
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotW }
        var out = "<svg class=\"plot\" role=\"img\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">"
        out += "<title>\(escaped(title))</title><text class=\"chart-title\" x=\"8\" y=\"18\">\(escaped(title))</text>"
        out += axes(left: left, top: top, plotW: plotW, plotH: plotH, xTicks: ticks(x0, x1).map { ($0, px($0)) }, yTicks: [],
                    xLabel: xLabel, yLabel: "", height: height)
        if let reference {
            out += "<line class=\"reference\" x1=\"\(c(px(reference)))\" y1=\"\(c(top))\" x2=\"\(c(px(reference)))\" y2=\"\(c(top + plotH))\"/>"
        }
        for (i, r) in rows.enumerated() {
            let y = top + rowH * (Double(i) + 0.5)
            out += "<text class=\"row-label\" x=\"\(c(left - 8))\" y=\"\(c(y + 4))\" text-anchor=\"end\">\(escaped(r.label))</text>"
            guard r.value.isFinite else { continue }
            let colour = palette[r.colour % palette.count]
            let tip = "\(r.label): \(formatNumber(r.value))" + (r.halfWidth.map { " ± \(formatNumber($0))" } ?? "")
            out += "<g class=\"interval\" data-name=\"\(escaped(r.label))\"><title>\(escaped(tip))</title>"
            if let h = r.halfWidth, h.isFinite, h > 0 {
                out += "<line x1=\"\(c(px(r.value - h)))\" y1=\"\(c(y))\" x2=\"\(c(px(r.value + h)))\" y2=\"\(c(y))\" stroke=\"\(colour)\" stroke-width=\"2\"/>"
                for end in [r.value - h, r.value + h] {
                    out += "<line x1=\"\(c(px(end)))\" y1=\"\(c(y - 5))\" x2=\"\(c(px(end)))\" y2=\"\(c(y + 5))\" stroke=\"\(colour)\" stroke-width=\"2\"/>"
                }
            }
            out += "<circle cx=\"\(c(px(r.value)))\" cy=\"\(c(y))\" r=\"4.5\" fill=\"\(colour)\"/></g>"
        }
        return out + "</svg>"
    }
}

/// Horizontal bars from zero (seconds, megabytes per step).
struct BarChart {
    var title: String
    var xLabel: String
    var bars: [(label: String, value: Double)]

    func svg() -> String {
        // The label column as wide as the longest label (about 6.2 px a character at 11 px), within 120…380 px.
        let longest = Double(bars.map(\.label.count).max() ?? 10)
        let rowH = 22.0, left = min(max(120, 6.2 * longest + 16), 380), right = 70.0, top = 30.0, bottom = 44.0, width = left + 430 + right
        let height = top + bottom + rowH * Double(max(bars.count, 1))
        let plotW = width - left - right, plotH = height - top - bottom
        let hi = max(bars.map(\.value).filter(\.isFinite).max() ?? 1, 1e-9) * 1.05
        func px(_ x: Double) -> Double { left + x / hi * plotW }
        var out = "<svg class=\"plot\" role=\"img\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">"
        out += "<title>\(escaped(title))</title><text class=\"chart-title\" x=\"8\" y=\"18\">\(escaped(title))</text>"
        out += axes(left: left, top: top, plotW: plotW, plotH: plotH, xTicks: ticks(0, hi).map { ($0, px($0)) }, yTicks: [],
                    xLabel: xLabel, yLabel: "", height: height)
        for (i, b) in bars.enumerated() {
            let y = top + rowH * Double(i)
            out += "<text class=\"row-label\" x=\"\(c(left - 8))\" y=\"\(c(y + rowH / 2 + 4))\" text-anchor=\"end\">\(escaped(b.label))</text>"
            guard b.value.isFinite, b.value > 0 else { continue }
            out += "<rect class=\"bar\" x=\"\(c(left))\" y=\"\(c(y + 4))\" width=\"\(c(max(px(b.value) - left, 1)))\" height=\"\(c(rowH - 8))\" fill=\"\(palette[0])\"><title>\(escaped(b.label)): \(formatNumber(b.value))</title></rect>"
            out += "<text class=\"tick\" x=\"\(c(px(b.value) + 4))\" y=\"\(c(y + rowH / 2 + 4))\">\(formatNumber(b.value))</text>"
        }
        return out + "</svg>"
    }
}

/// A grid of values coloured on a diverging scale around `centre` (blue below, red above).
struct HeatMap {
    var title: String
    var rows: [String]
    var columns: [String]
    /// `values[row][column]`, nil where there is none.
    var values: [[Double?]]
    var centre: Double

    func svg() -> String {
        let cell = max(10.0, min(22.0, 560.0 / Double(max(columns.count, 1)))), rowH = 18.0
        let left = 170.0, top = 30.0, legendH = 46.0
        let width = max(420.0, left + cell * Double(columns.count) + 20)
        let height = top + rowH * Double(rows.count) + 22 + legendH
        let all = values.flatMap { $0.compactMap { $0 } }.filter(\.isFinite)
        let spread = max(all.map { abs($0 - centre) }.max() ?? 0, 1e-12)
        func colour(_ v: Double) -> String {
            let t = max(-1, min(1, (v - centre) / spread))
            // white at the centre, to #b2182b above and #2166ac below
            let (r, g, b) = t >= 0 ? (255 - t * (255 - 178), 255 - t * (255 - 24), 255 - t * (255 - 43))
                                   : (255 + t * (255 - 33), 255 + t * (255 - 102), 255 + t * (255 - 172))
            return String(format: "#%02x%02x%02x", Int(r.rounded()), Int(g.rounded()), Int(b.rounded()))
        }
        var out = "<svg class=\"plot\" role=\"img\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">"
        out += "<title>\(escaped(title))</title><text class=\"chart-title\" x=\"8\" y=\"18\">\(escaped(title))</text>"
        for (i, row) in rows.enumerated() {
            let y = top + rowH * Double(i)
            out += "<text class=\"row-label\" x=\"\(c(left - 6))\" y=\"\(c(y + rowH / 2 + 4))\" text-anchor=\"end\">\(escaped(row))</text>"
            for (j, value) in values[i].enumerated() {
                guard let value, value.isFinite else { continue }
                out += "<rect class=\"cell\" x=\"\(c(left + cell * Double(j)))\" y=\"\(c(y))\" width=\"\(c(cell - 1))\" height=\"\(c(rowH - 1))\" fill=\"\(colour(value))\"><title>\(escaped(row)), \(escaped(columns[j])): \(formatNumber(value))</title></rect>"
            }
        }
        let labelY = top + rowH * Double(rows.count) + 14
        let every = max(1, Int((22.0 / cell).rounded(.up)))
        for (j, name) in columns.enumerated() where j % every == 0 || j == columns.count - 1 {
            out += "<text class=\"tick\" x=\"\(c(left + cell * (Double(j) + 0.5)))\" y=\"\(c(labelY))\" text-anchor=\"middle\">\(escaped(name))</text>"
        }
        // the scale: five swatches from centre − spread to centre + spread
        let legendY = labelY + 16
        out += "<text class=\"tick\" x=\"\(c(left - 6))\" y=\"\(c(legendY + 12))\" text-anchor=\"end\">scale</text>"
        for k in 0..<5 {
            let v = centre + spread * (Double(k) / 2 - 1)
            let x = left + Double(k) * 62
            out += "<rect x=\"\(c(x))\" y=\"\(c(legendY))\" width=\"18\" height=\"14\" fill=\"\(colour(v))\" stroke=\"#999\" stroke-width=\"0.5\"/>"
            let offset = v - centre
            let label = k == 2 ? formatNumber(centre) : (offset > 0 ? "+" : "−") + formatNumber(abs(offset))
            out += "<text class=\"tick\" x=\"\(c(x + 22))\" y=\"\(c(legendY + 11))\">\(escaped(label))</text>"
        }
        return out + "</svg>"
    }
}
