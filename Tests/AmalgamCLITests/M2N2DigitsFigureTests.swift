import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam experiment m2n2-digits` with the figure's other methods: the JSON holds each run's curve, and
/// the same seeds give the same numbers on one thread and on two.
@Suite struct M2N2DigitsFigureTests {
    func figureRun(threads: Int, json: String) throws -> CommandRun {
        try runAmalgam(["experiment", "m2n2-digits", "--setting", "scratch", "--method", "GA no crossover",
                        "--method", "MAP-Elites", "--method", "CMA-ES", "--runs", "2", "--passes", "100",
                        "--data", digitsCSV, "--json", json],
                       environment: ["AMALGAM_THREADS": "\(threads)", "OPENBLAS_NUM_THREADS": "1"])
    }

    /// Everything of the JSON's rows but the wall times.
    func numbers(_ path: String) throws -> [String] {
        let rows = try JSONValue.parse(String(contentsOfFile: path, encoding: .utf8))["rows"]!.arrayValue!
        return rows.map { row in
            ["method", "test_accuracies", "train_accuracies", "traces"].map { row[$0]!.pythonText(sortKeys: true) }.joined(separator: " | ")
        }
    }

    @Test(.requires(amalgamProgram))
    func theFigureMethodsWriteCurvesAndGiveTheSameNumbersOnOneAndTwoThreads() throws {
        let root = temporaryFolder("figure")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let one = try figureRun(threads: 1, json: root + "/one.json")
        #expect(one.status == 0, "\(one.err)")
        let two = try figureRun(threads: 2, json: root + "/two.json")
        #expect(two.status == 0, "\(two.err)")
        let a = try numbers(root + "/one.json"), b = try numbers(root + "/two.json")
        #expect(a.count == 3 && a == b)
        let json = try JSONValue.parse(String(contentsOfFile: root + "/one.json", encoding: .utf8))
        #expect(json["command"]?.stringValue?.hasPrefix("amalgam experiment m2n2-digits --setting scratch") == true)
        for row in json["rows"]!.arrayValue! {
            let traces = row["traces"]!.arrayValue!
            #expect(traces.count == 2)
            // One point every 100 passes, ending at the budget with the row's final test accuracy.
            #expect(traces[0]["pass"]!.arrayValue!.last?.intValue == 100)
            #expect(traces[0]["test_accuracy"]!.arrayValue!.last?.doubleValue == row["test_accuracies"]!.arrayValue![0].doubleValue)
        }
        let refused = try runAmalgam(["experiment", "m2n2-digits", "--setting", "pretrained", "--method", "CMA-ES", "--runs", "1",
                                      "--passes", "20", "--data", digitsCSV])
        #expect(refused.status != 0 && refused.err.contains("runs only from scratch"), "\(refused.err)")
    }
}
