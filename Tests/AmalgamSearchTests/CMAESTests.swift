import AmalgamCore
import AmalgamLab
import AmalgamSearch
import AmalgamTestSupport
import Foundation
import Testing

/// CMA-ES against the `cma` package: the same strategy parameters, about as many evaluations, and the
/// same candidates for the same seed.
@Suite struct CMAESTests {
    static let reference = fixturesDirectory + "/cmaes/reference.json"

    @Test func strategyParametersAreThoseOfPycma() throws {
        let ref = try CMAESReference(path: Self.reference)
        #expect(ref.parameters.count >= 4)
        func close(_ a: Double, _ b: Double?, _ what: String) {
            let b = try! #require(b)
            #expect(abs(a - b) <= 1e-12 * max(1, abs(b)), "\(what): ours \(a), cma \(b)")
        }
        for p in ref.parameters {
            let n = try #require(p["dimension"]?.intValue)
            let full = CMAESParameters(dimension: n, separable: false)
            let sep = CMAESParameters(dimension: n, separable: true)
            #expect(full.populationSize == p["population_size"]?.intValue)
            #expect(full.parentCount == p["mu"]?.intValue)
            let weightValues = p["weights"]?.arrayValue ?? []
            let weights = weightValues.compactMap { $0.doubleValue }
            #expect(weights.count == full.weights.count)
            for (a, b) in zip(full.weights, weights) { close(a, b, "n=\(n) weight") }
            close(full.effectiveMass, p["mueff"]?.doubleValue, "n=\(n) mueff")
            close(full.cSigma, p["c_sigma"]?.doubleValue, "n=\(n) c_sigma")
            close(full.dSigma, p["d_sigma"]?.doubleValue, "n=\(n) d_sigma")
            close(full.cc, p["cc"]?.doubleValue, "n=\(n) cc")
            close(full.c1, p["c1"]?.doubleValue, "n=\(n) c1")
            close(full.cmu, p["cmu"]?.doubleValue, "n=\(n) cmu")
            close(sep.cc, p["cc_sep"]?.doubleValue, "n=\(n) cc_sep")
            close(sep.c1, p["c1_sep"]?.doubleValue, "n=\(n) c1_sep")
            close(sep.cmu, p["cmu_sep"]?.doubleValue, "n=\(n) cmu_sep")
            close(full.chiN, p["chi_n"]?.doubleValue, "n=\(n) chiN")
            close(full.eigenGap, p["eigen_gap"]?.doubleValue, "n=\(n) eigen gap")
        }
    }

    /// On sphere, ellipsoid and Rosenbrock in 10 dimensions every seed reaches 1e-8, with a median number
    /// of evaluations within a factor 1.5 of pycma's on the same starts.
    @Test(arguments: [TestFunction.sphere, .ellipsoid, .rosenbrock])
    func needsAboutAsManyEvaluationsAsPycma(_ function: TestFunction) throws {
        let ref = try CMAESReference(path: Self.reference)
        let c = try #require(ref.cases.first { $0.function == function && $0.dimension == 10 })
        let ours = try ref.seeds.map { try c.run(seed: $0) }
        let missed = ours.filter { !$0.success }.map { $0.seed }
        #expect(missed.isEmpty, "\(function): seeds \(missed) missed the target")
        let oursMedian = try #require(median(ours.map { Double($0.evaluations) }))
        let refEvaluations = c.reference.filter { $0.success }.map { Double($0.evaluations) }
        let refMedian = try #require(median(refEvaluations))
        #expect(oursMedian / refMedian < 1.5 && refMedian / oursMedian < 1.5,
                "\(function) n=10: ours \(oursMedian), cma \(refMedian) evaluations")
    }

    @Test func rastriginWithALargePopulationOftenFindsTheGlobalMinimum() throws {
        let ref = try CMAESReference(path: Self.reference)
        let c = try #require(ref.cases.first { $0.function == .rastrigin && $0.dimension == 5 })
        let ours = try ref.seeds.map { try c.run(seed: $0) }
        let successes = ours.filter { $0.success }.count
        #expect(successes >= 3, "only \(successes) of \(ours.count) runs reached 1e-8")
    }

    @Test func separableCovarianceSolvesTheAxisParallelEllipsoid() throws {
        var options = CMAESOptions(seed: 3)
        options.covariance = .separable
        options.targetValue = 1e-8
        options.maxEvaluations = 20_000
        var es = try CMAES(x0: [Double](repeating: 1, count: 30), sigma0: 1, options: options)
        #expect(es.parameters.separable)
        while !es.isStopped { let xs = es.ask(); try es.tell(xs.map { TestFunction.ellipsoid($0) }) }
        #expect(es.state.stop == .targetValue)
        // A full covariance in 30-D needs several times more evaluations on this function.
        #expect(es.state.evaluations < 15_000)
    }

    @Test func automaticCovarianceIsFullUpToTheLimit() throws {
        let small = try CMAES(x0: [Double](repeating: 0, count: CMAESOptions.fullCovarianceLimit), sigma0: 1)
        let large = try CMAES(x0: [Double](repeating: 0, count: CMAESOptions.fullCovarianceLimit + 1), sigma0: 1)
        #expect(!small.parameters.separable)
        #expect(large.parameters.separable)
    }

    @Test func sameSeedSameCandidatesAndASavedStateResumesExactly() throws {
        func run(seed: UInt64, generations: Int, resumeAt: Int? = nil) throws -> CMAES {
            var options = CMAESOptions(seed: seed)
            options.populationSize = 9
            var es = try CMAES(x0: [0.5, -1, 2, 0.1, 3], sigma0: 0.7, options: options)
            for g in 0..<generations {
                if g == resumeAt {
                    let saved = try JSONEncoder().encode(es)
                    es = try JSONDecoder().decode(CMAES.self, from: saved)
                }
                let xs = es.ask()
                try es.tell(xs.map { TestFunction.rosenbrock($0) })
            }
            return es
        }
        let a = try run(seed: 7, generations: 40)
        let b = try run(seed: 7, generations: 40, resumeAt: 17)
        let c = try run(seed: 8, generations: 40)
        #expect(a.state == b.state)
        #expect(a.state.mean != c.state.mean)
        #expect(a.state.evaluations == 360)
    }

    @Test func boundsKeepEveryCandidateFeasibleAndFindAMinimumOnTheBound() throws {
        var options = CMAESOptions(seed: 1)
        options.lowerBounds = [0]
        options.upperBounds = [1]
        options.maxEvaluations = 3_000
        // The unconstrained minimum (−0.5, 2, 0.3) lies outside [0, 1]³ in two coordinates; the
        // constrained one is (0, 1, 0.3).
        let f: ([Double]) -> Double = { x in
            (x[0] + 0.5) * (x[0] + 0.5) + (x[1] - 2) * (x[1] - 2) + (x[2] - 0.3) * (x[2] - 0.3)
        }
        var es = try CMAES(x0: [0.5, 0.5, 0.5], sigma0: 0.3, options: options)
        while !es.isStopped {
            let xs = es.ask()
            #expect(xs.allSatisfy { $0.allSatisfy { (0...1).contains($0) } })
            try es.tell(xs.map(f))
        }
        let best = es.state.bestPoint
        #expect(abs(best[0]) < 1e-3 && abs(best[1] - 1) < 1e-3 && abs(best[2] - 0.3) < 1e-3, "best \(best)")
    }

    @Test func boundTransformIsTheIdentityInsideAndInvertsOnTheQuadraticZone() throws {
        let t = try BoundTransform(lower: [0, -2], upper: [1, 10])
        #expect(t.transform([0.5, 3]) == [0.5, 3])
        for x in stride(from: -3.0, through: 4.0, by: 0.37) {
            let y = t.transform([x, 3 * x])
            #expect((0...1).contains(y[0]) && (-2...10).contains(y[1]))
            let back = t.transform(t.inverse(y))
            #expect(abs(back[0] - y[0]) < 1e-12 && abs(back[1] - y[1]) < 1e-12)
        }
        #expect(throws: SearchError.self) { try BoundTransform(lower: [1], upper: [0]) }
    }
}
