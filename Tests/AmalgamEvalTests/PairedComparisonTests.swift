import AmalgamEval
import AmalgamTestSupport
import Foundation
import Testing

@Suite struct PairedComparisonTests {
    /// Writes `TASK.summary.json` and `TASK.jsonl` records as `amalgam eval` does.
    func write(_ folder: String, task: String, kind: String, records: [(String, String, Double)]) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "{\"task\": \"\(task)\", \"kind\": \"\(kind)\", \"n\": \(records.count)}\n".write(toFile: folder + "/\(task).summary.json", atomically: true, encoding: .utf8)
        try records.map { "{\"id\":\"\($0.0)\",\"\($0.1)\":\($0.2)}\n" }.joined().write(toFile: folder + "/\(task).jsonl", atomically: true, encoding: .utf8)
    }

    @Test func pairsRecordsByIDWithEachKindsDefaultMetric() throws {
        let root = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try write(root + "/a", task: "lm", kind: "language_modeling", records: [("p1", "bits_per_byte", 1.0), ("p2", "bits_per_byte", 2.0), ("p3", "bits_per_byte", 3.0)])
        // B's records in another order: pairs are made by id, not by line
        try write(root + "/b", task: "lm", kind: "language_modeling", records: [("p3", "bits_per_byte", 3.3), ("p1", "bits_per_byte", 0.9), ("p2", "bits_per_byte", 2.0)])
        try write(root + "/a", task: "mc", kind: "multiple_choice", records: [("q1", "acc", 1), ("q2", "acc", 0), ("q3", "acc", 1), ("q4", "acc", 1)])
        try write(root + "/b", task: "mc", kind: "multiple_choice", records: [("q1", "acc", 1), ("q2", "acc", 1), ("q3", "acc", 1), ("q4", "acc", 0)])
        let c = try PairedComparison.compare(folderA: root + "/a", folderB: root + "/b")
        #expect(c.map(\.task) == ["lm", "mc"])
        let lm = c[0]
        #expect(lm.metric == "bits_per_byte" && lm.lowerIsBetter && lm.count == 3)
        #expect(abs(lm.meanA - 2.0) < 1e-12 && abs(lm.meanB - 6.2 / 3) < 1e-12)
        // differences −0.1, 0, +0.3: mean 0.0667, sample sd 0.2082, stderr 0.1202
        #expect(abs(lm.difference - 0.2 / 3) < 1e-12)
        #expect(abs(lm.stderr! - 0.120185) < 1e-6)
        #expect(lm.betterB == 1 && lm.betterA == 1 && lm.ties == 1)
        let mc = c[1]
        #expect(mc.metric == "acc" && !mc.lowerIsBetter && mc.count == 4)
        #expect(mc.difference == 0 && mc.betterB == 1 && mc.betterA == 1 && mc.ties == 2)
    }

    @Test func differentExamplesAreAnErrorNamingTheMissingID() throws {
        let root = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try write(root + "/a", task: "lm", kind: "language_modeling", records: [("p1", "bits_per_byte", 1.0), ("p2", "bits_per_byte", 2.0)])
        try write(root + "/b", task: "lm", kind: "language_modeling", records: [("p1", "bits_per_byte", 1.0), ("p9", "bits_per_byte", 2.0)])
        #expect(throws: EvalError.self) { try PairedComparison.compare(folderA: root + "/a", folderB: root + "/b") }
        do {
            _ = try PairedComparison.compare(folderA: root + "/a", folderB: root + "/b")
        } catch {
            #expect(error.description.contains("'p2'") && error.description.contains("--limit"))
        }
        // a metric the records do not hold is named
        do {
            _ = try PairedComparison.compare(folderA: root + "/a", folderB: root + "/a", metric: "acc_norm")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("acc_norm"))
        }
    }
}
