import AmalgamMerge
import Testing

/// dare_linear and della_linear on the fixture models, ours (our generator) beside mergekit's (PyTorch's
/// generator, `--random-seed 7`): the draws differ, the statistics that define the methods must not.
@Suite struct RandomMethodTests {
    /// Per element: the task vector δ = x − base, and whether ours and mergekit's kept it.
    struct Draws {
        var delta: [Float] = []
        var keptByUs: [Bool] = []
        var keptByMergekit: [Bool] = []
        var shapes: [[Int]] = []
    }

    static func draws(_ name: String, seed: UInt64) throws -> (Draws, [Reference.Output]) {
        var d = Draws()
        let outputs = try Reference.outputs(name, seed: seed)
        for o in outputs {
            let base = o.inputs[o.baseIndex!].values, other = o.inputs[1 - o.baseIndex!].values
            for i in base.indices {
                d.delta.append(other[i] - base[i])
                d.keptByUs.append(o.ours[i] != base[i])
                d.keptByMergekit.append(o.mergekit[i] != base[i])
            }
        }
        return (d, outputs)
    }

    /// Kept entries are the task vector times one factor per tensor, which restores its L1 norm.
    static func expectL1Rescale(_ outputs: [Reference.Output], sourceLocation: SourceLocation = #_sourceLocation) {
        for o in outputs {
            let base = o.inputs[o.baseIndex!].values, other = o.inputs[1 - o.baseIndex!].values
            for result in [o.ours, o.mergekit] {
                var before = 0.0, after = 0.0
                for i in base.indices {
                    before += Double(abs(other[i] - base[i]))
                    after += Double(abs(result[i] - base[i]))
                }
                // The merged tensor is base + δ', rounded in f32: allow that rounding.
                #expect(abs(after - before) <= 1e-3 * before, "\(o.tensor): L1 \(after) vs \(before)",
                        sourceLocation: sourceLocation)
            }
        }
    }

    @Test func dareKeepsDensityAndRestoresL1LikeMergekit() throws {
        let (d, outputs) = try Self.draws("dare_linear_seeded", seed: 7)
        let n = Double(d.delta.count), p = 0.3
        let sd = (n * p * (1 - p)).squareRoot()
        let ours = Double(d.keptByUs.filter { $0 }.count)
        let theirs = Double(d.keptByMergekit.filter { $0 }.count)
        #expect(abs(ours - n * p) < 5 * sd, "we kept \(ours) of \(n)")
        #expect(abs(theirs - n * p) < 5 * sd, "mergekit kept \(theirs) of \(n)")
        Self.expectL1Rescale(outputs)
    }

    @Test func dellaKeepsLargeMagnitudesMoreOftenLikeMergekit() throws {
        let (d, outputs) = try Self.draws("della_linear_seeded", seed: 7)
        // Keep probabilities from the ranks of each tensor (our ranking: rows along dim 1, ascending).
        var probabilities: [Double] = []
        for o in outputs {
            let base = o.inputs[o.baseIndex!].values, other = o.inputs[1 - o.baseIndex!].values
            let delta = zip(other, base).map { $0 - $1 }
            probabilities += Sparsification.dellaProbabilities(delta, shape: o.shape, density: 0.5, epsilon: 0.4)
        }
        // Low-probability and high-probability halves: observed counts against Σp within 5σ, for both
        // generators. A wrong rank axis or direction would swap or flatten them.
        for low in [true, false] {
            let group = probabilities.indices.filter { (probabilities[$0] < 0.5) == low }
            let expected = group.reduce(0.0) { $0 + probabilities[$1] }
            let sd = group.reduce(0.0) { $0 + probabilities[$1] * (1 - probabilities[$1]) }.squareRoot()
            let ours = Double(group.filter { d.keptByUs[$0] }.count)
            let theirs = Double(group.filter { d.keptByMergekit[$0] }.count)
            #expect(abs(ours - expected) < 5 * sd, "low \(low): we kept \(ours), expected \(expected)")
            #expect(abs(theirs - expected) < 5 * sd, "low \(low): mergekit kept \(theirs), expected \(expected)")
        }
        Self.expectL1Rescale(outputs)
    }

    @Test func seedDecidesTheDraws() throws {
        let a = try Reference.outputs("dare_linear_seeded", seed: 7).map(\.ours)
        let b = try Reference.outputs("dare_linear_seeded", seed: 7).map(\.ours)
        let c = try Reference.outputs("dare_linear_seeded", seed: 8).map(\.ours)
        #expect(a == b)
        #expect(a != c)
    }
}
