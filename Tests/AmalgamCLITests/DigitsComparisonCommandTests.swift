import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam experiment digits-comparison --json` as a user runs it (tiny budget).
@Suite(.requires(amalgamProgram))
struct DigitsComparisonCommandTests {
    @Test func digitsComparisonWritesAJSONWithEachMethodsAccuraciesUnderItsName() throws {
        let folder = temporaryFolder("digits-comparison")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let json = folder + "/comparison.json"
        let run = try runAmalgam(["experiment", "digits-comparison", "--runs", "2", "--base-steps", "3", "--specialist-steps", "5",
                             "--budget", "10", "--batch-size", "32", "--cmaes-method", "ties", "--data", digitsCSV, "--json", json])
        #expect(run.status == 0, "\(run.err)")
        let doc = try JSONValue.parse(String(decoding: try Data(contentsOf: URL(fileURLWithPath: json)), as: UTF8.self))
        #expect(doc["equal_budget"]?.intValue == 10)
        let methods = try #require(doc["methods"])
        for name in ["base", "specialist 0-4", "specialist 5-9", "average", "TIES (tuned)", "M2N2", "CMA-ES ties", "DAM",
                     "DAM (released settings)"] {
            let m = try #require(methods[name], "\(name) missing")
            for key in ["test_union", "test_digits_0_4", "test_digits_5_9", "train_union", "forward_passes", "backward_passes",
                        "cpu_seconds"] {
                #expect(m[key]?["runs"]?.arrayValue?.count == 2, "\(name).\(key)")
                #expect(m[key]?["mean"]?.doubleValue != nil, "\(name).\(key)")
            }
        }
    }
}
