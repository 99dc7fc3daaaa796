import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamModels
import AmalgamSearch
import Foundation

/// The classic test functions CMA-ES is measured on (minimum 0; at 0 except Rosenbrock, at 1).
public enum TestFunction: String, Sendable, CaseIterable, Codable {
    case sphere
    /// Σ 10^(6 i/(n−1)) x_i²: condition number 10⁶.
    case ellipsoid
    /// Σ 100 (x_{i+1} − x_i²)² + (1 − x_i)².
    case rosenbrock
    /// 10 n + Σ x_i² − 10 cos(2π x_i): multimodal, needs a large population.
    case rastrigin

    /// The function's value at `x`.
    public func callAsFunction(_ x: [Double]) -> Double {
        let n = x.count
        switch self {
        case .sphere: return x.reduce(0) { $0 + $1 * $1 }
        case .ellipsoid:
            return x.indices.reduce(0) { $0 + pow(1e6, n > 1 ? Double($1) / Double(n - 1) : 0) * x[$1] * x[$1] }
        case .rosenbrock:
            return (0..<max(n - 1, 0)).reduce(0) { s, i in
                let a = x[i + 1] - x[i] * x[i], b = 1 - x[i]
                return s + 100 * a * a + b * b
            }
        case .rastrigin: return 10 * Double(n) + x.reduce(0) { $0 + $1 * $1 - 10 * cos(2 * Double.pi * $1) }
        }
    }
}

/// One benchmark case: a function, a start, σ₀, population, target and budget, with pycma's runs on it.
public struct FunctionCase: Sendable {
    public var function: TestFunction
    public var dimension: Int
    public var x0: [Double]
    public var sigma0: Double
    /// nil: the default 4 + ⌊3 ln n⌋.
    public var populationSize: Int?
    public var target: Double
    public var maxEvaluations: Int
    /// pycma's result per seed, from the fixture.
    public var reference: [FunctionRun]
}

/// One run on a case: evaluations used (whole generations, as pycma counts them) and whether the target was reached.
public struct FunctionRun: Sendable, Equatable {
    public var seed: UInt64
    public var evaluations: Int
    public var best: Double
    public var success: Bool
}

/// `cma`'s numbers from `fixtures/cmaes/reference.json` (written by `scripts/fixtures/cmaes_reference.py`).
public struct CMAESReference: Sendable {
    /// The pycma version that produced them.
    public var cmaVersion: String
    /// The seeds each case was run with.
    public var seeds: [UInt64]
    public var cases: [FunctionCase]
    /// pycma's strategy parameters for the default population, per dimension (the JSON objects as written).
    public var parameters: [JSONValue]

    /// Reads the fixture at `path`.
    public init(path: String) throws(SearchError) {
        let root: JSONValue
        do {
            root = try JSONValue.parse(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
        } catch {
            throw .badData(path: path, reason: "cannot read the CMA-ES reference (\(error)); regenerate it with scripts/fixtures/cmaes_reference.py")
        }
        func bad(_ key: String) -> SearchError { .badData(path: path, reason: "missing or malformed `\(key)`; regenerate it with scripts/fixtures/cmaes_reference.py") }
        guard let version = root["cma_version"]?.stringValue, let seeds = root["seeds"]?.arrayValue,
              let cases = root["cases"]?.arrayValue, let parameters = root["parameters"]?.arrayValue else { throw bad("cma_version/seeds/cases/parameters") }
        cmaVersion = version
        self.seeds = seeds.compactMap { $0.intValue.map(UInt64.init) }
        self.parameters = parameters
        self.cases = []
        for (i, c) in cases.enumerated() {
            guard let name = c["function"]?.stringValue, let function = TestFunction(rawValue: name),
                  let n = c["dimension"]?.intValue, let x0 = c["x0"]?.arrayValue?.compactMap(\.doubleValue), x0.count == n,
                  let sigma0 = c["sigma0"]?.doubleValue, let target = c["target"]?.doubleValue,
                  let budget = c["max_evaluations"]?.intValue, let runs = c["runs"]?.arrayValue else { throw bad("cases[\(i)]") }
            var reference: [FunctionRun] = []
            for r in runs {
                guard let seed = r["seed"]?.intValue, let evaluations = r["evaluations"]?.intValue,
                      let best = r["best"]?.doubleValue, let success = r["success"]?.boolValue else { throw bad("cases[\(i)].runs") }
                reference.append(FunctionRun(seed: UInt64(seed), evaluations: evaluations, best: best, success: success))
            }
            self.cases.append(FunctionCase(function: function, dimension: n, x0: x0, sigma0: sigma0,
                                           populationSize: c["population_size"]?.intValue, target: target,
                                           maxEvaluations: budget, reference: reference))
        }
    }
}

extension FunctionCase {
    /// Our CMA-ES on this case with `seed`, until the target or the budget (or another stop) is reached.
    public func run(seed: UInt64, covariance: CovarianceModel = .automatic) throws(SearchError) -> FunctionRun {
        var options = CMAESOptions(seed: seed)
        options.populationSize = populationSize
        options.targetValue = target
        options.maxEvaluations = maxEvaluations
        options.covariance = covariance
        var es = try CMAES(x0: x0, sigma0: sigma0, options: options)
        while !es.isStopped {
            let candidates = es.ask()
            try es.tell(candidates.map { function($0) })
        }
        return FunctionRun(seed: seed, evaluations: es.state.evaluations, best: es.state.bestValue,
                           success: es.state.bestValue <= target)
    }
}

/// Median of the values (the mean of the two middle ones for an even count); nil when empty.
public func median(_ values: [Double]) -> Double? {
    guard !values.isEmpty else { return nil }
    let s = values.sorted(), m = s.count / 2
    return s.count % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2
}
