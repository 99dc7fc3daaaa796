import AmalgamCore
import AmalgamLab
import AmalgamSearch
import ArgumentParser
import Foundation

/// `amalgam experiment cmaes-functions`: our CMA-ES beside pycma on the classic test functions.
struct CMAESFunctions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cmaes-functions",
        abstract: "CMA-ES on sphere, ellipsoid, Rosenbrock and Rastrigin: evaluations to reach the target beside the `cma` package's."
    )

    @Option(help: "The reference written by scripts/fixtures/cmaes_reference.py.")
    var reference = "fixtures/cmaes/reference.json"

    @Option(help: "Full, separable or automatic covariance for our runs.")
    var covariance = "automatic"

    @Option(help: "Also write the table and every run as JSON to this file.")
    var json: String?

    func validate() throws {
        guard CovarianceModel(rawValue: covariance) != nil else {
            throw ValidationError("--covariance must be automatic, full or separable, not `\(covariance)`")
        }
    }

    func run() throws {
        let ref = try CMAESReference(path: reference)
        let model = CovarianceModel(rawValue: covariance)!
        print("CMA-ES: evaluations to reach f ≤ target (median over successful runs, seeds \(ref.seeds.first!)…\(ref.seeds.last!)),")
        print("ours beside pycma \(ref.cmaVersion) on the same starts, σ₀, populations and targets\n")
        print("function     n    λ   target   ours: median  success   cma: median  success   ratio")
        var rows: [JSONValue] = []
        let start = Date()
        for c in ref.cases {
            let ours = try ref.seeds.map { s throws(SearchError) in try c.run(seed: s, covariance: model) }
            let oursMedian = median(ours.filter(\.success).map { Double($0.evaluations) })
            let refMedian = median(c.reference.filter(\.success).map { Double($0.evaluations) })
            let lambda = c.populationSize ?? (4 + Int(3 * log(Double(c.dimension))))
            let ratio = oursMedian.flatMap { o in refMedian.map { o / $0 } }
            func cell(_ m: Double?) -> String { m.map { String(format: "%12.0f", $0) } ?? String(repeating: " ", count: 11) + "-" }
            print(c.function.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)
                  + String(format: " %3d %4d  %7.0e", c.dimension, lambda, c.target)
                  + "  " + cell(oursMedian) + String(format: "   %2d/%-2d  ", ours.filter(\.success).count, ours.count)
                  + " " + cell(refMedian) + String(format: "   %2d/%-2d  ", c.reference.filter(\.success).count, c.reference.count)
                  + (ratio.map { String(format: "%6.2f", $0) } ?? "     -"))
            rows.append(.object(JSONObject([
                ("function", .string(c.function.rawValue)), ("dimension", .int(c.dimension)), ("population_size", .int(lambda)),
                ("target", .double(c.target)),
                ("ours_median_evaluations", oursMedian.map { .double($0) } ?? .null),
                ("ours_successes", .int(ours.filter(\.success).count)),
                ("cma_median_evaluations", refMedian.map { .double($0) } ?? .null),
                ("cma_successes", .int(c.reference.filter(\.success).count)),
                ("runs", .int(ours.count)), ("ratio", ratio.map { .double($0) } ?? .null),
                ("ours_evaluations", .array(ours.map { .int($0.evaluations) })),
                ("ours_success", .array(ours.map { .bool($0.success) })),
            ])))
        }
        print(String(format: "\nour runs took %.1f s", Date().timeIntervalSince(start)))
        if let json {
            let doc = JSONValue.object(JSONObject([
                ("experiment", .string("cmaes-functions")), ("cma_version", .string(ref.cmaVersion)),
                ("covariance", .string(model.rawValue)), ("rows", .array(rows)),
            ]))
            try writeFileAtomically(doc.pythonText(sortKeys: false) + "\n", to: json)
        }
    }
}
