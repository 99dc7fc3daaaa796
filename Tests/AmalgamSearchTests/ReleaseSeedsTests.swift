import AmalgamCheckpoint
import AmalgamCore
import AmalgamLab
import AmalgamModels
import AmalgamSearch
import AmalgamTestSupport
import Testing

/// The pre-trained seeds of the released experiment: the release's own starting vectors (jax PRNGKey(42)),
/// trained by our Adam, against jax/optax's training and brute-force slerp (scripts/fixtures/make_m2n2_release_seeds.py).
@Suite struct ReleaseSeedsTests {
    static let fixture = try! SafetensorsFile(path: releaseSeedsPath)

    static func number(_ key: String) -> Double {
        Double(fixture.metadata.first { $0.key == key }!.value)!
    }

    static func experiment() throws -> DigitsExperiment {
        var experiment = try DigitsExperiment(csvPath: digitsCSV)
        try experiment.loadReleaseInitial(path: releaseSeedsPath)
        return experiment
    }

    @Test func ourAdamFromTheReleaseStartMatchesJax() throws {
        let experiment = try Self.experiment()
        let ours = experiment.pretrainedSeeds()
        let jax = try Self.fixture.tensor("trained").floats()
        let n = experiment.classifier.parameterCount
        for k in 0..<2 {
            let reference = Array(jax[k * n ..< (k + 1) * n])
            let far = zip(ours[k], reference).filter { abs($0 - $1) > 1e-4 }.count
            #expect(far <= n / 1000, "seed \(k): \(far) of \(n) parameters differ from jax's by more than 1e-4")
            for (name, batch) in [("train", experiment.train), ("test", experiment.test)] {
                let a = experiment.classifier.accuracy(parameters: ours[k], batch: batch)
                let b = Self.number("seed\(k)_\(name)")
                #expect(abs(a - b) * Double(batch.count) <= 1.01, "seed \(k) \(name) accuracy \(a), jax \(b)")
            }
        }
    }

    @Test func bruteForceSlerpMatchesTheReleasesProcedure() throws {
        let experiment = try Self.experiment()
        let result = try experiment.bruteForceSlerp(seeds: experiment.pretrainedSeeds(), steps: 101)
        #expect(abs(result.trainAccuracy - Self.number("test_brute_force_train")) * 1437 <= 2.01,
                "best train accuracy \(result.trainAccuracy), jax \(Self.number("test_brute_force_train"))")
        #expect(abs(result.testAccuracy - Self.number("test_brute_force_test")) * 360 <= 3.01,
                "test accuracy \(result.testAccuracy), jax \(Self.number("test_brute_force_test"))")
    }

    @Test func aMissingOrWrongFileSaysWhatToDo() throws {
        var experiment = try DigitsExperiment(csvPath: digitsCSV)
        #expect(throws: SearchError.self) { try experiment.loadReleaseInitial(path: digitsCSV) }
        do {
            try experiment.loadReleaseInitial(path: fixturesDirectory + "/m2n2/missing.safetensors")
            Issue.record("a missing file must throw")
        } catch {
            #expect(error.description.contains("make_m2n2_release_seeds.py"))
        }
    }
}
