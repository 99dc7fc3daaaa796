import AmalgamLab
import AmalgamModels
import AmalgamSearch
import AmalgamTestSupport
import Testing

/// A scorer that reads a score row from a table, indexed by the candidate's first parameter.
final class TableScorer: CandidateScorer {
    let rows: [[Float]]
    init(_ rows: [[Float]]) { self.rows = rows }
    var exampleCount: Int { rows[0].count }
    func scoreCandidate(of store: FlatGenomeStore, into scores: UnsafeMutableBufferPointer<Float>) throws(SearchError) {
        for (j, v) in rows[Int(store.candidate[0])].enumerated() { scores[j] = v }
    }
}

/// The archive and its steady-state elitist replacement.
@Suite struct M2N2SearchTests {
    func tableSearch() throws -> M2N2Search<TableScorer> {
        var configuration = M2N2Configuration()
        configuration.archiveSize = 3
        let seeds: [[Float]] = (0..<4).map { [Float($0), 1] }
        let store = try FlatGenomeStore(parameterCount: 2, slotCount: 3, seeds: seeds)
        let scorer = TableScorer([[1, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
        return try M2N2Search(configuration: configuration, store: store, scorer: scorer)
    }

    @Test func seedsFillTheZeroSlotsInOrder() throws {
        let search = try tableSearch()
        #expect(try search.insertSeed(0).slot == 0)
        #expect(try search.insertSeed(1).slot == 1)
        #expect(try search.insertSeed(2).slot == 2)
        #expect(search.store.slots.map { $0[0] } == [0, 1, 2])
    }

    @Test func replacementRemovesTheLowestFitnessAndKeepsTheSize() throws {
        let search = try tableSearch()
        for i in 0..<3 { try search.insertSeed(i) }
        // With seed 3 offered: z = [2, 1, 1, 1], fitness 1.5, 1, 0.5 (slot 2) and 1 (candidate).
        #expect(try search.insertSeed(3).slot == 2)
        #expect(search.store.slots.map { $0[0] } == [0, 1, 3])
        #expect(search.store.slots.count == 3)
        #expect(Array(search.scores.row(2)) == [0, 0, 0, 1])
        // Seed 2 again is now the weakest of the four: the archive does not change.
        #expect(try search.insertSeed(2).slot == nil)
        #expect(search.store.slots.map { $0[0] } == [0, 1, 3])
    }

    @Test func sameSeedGivesTheSameArchive() throws {
        let experiment = try DigitsExperiment(csvPath: digitsCSV)
        func archive(seed: UInt64) throws -> ([[Float]], ScoreMatrix) {
            let configuration = M2N2Configuration(variant: .m2n2, forwardPasses: 25, mutationStandardDeviation: 0.01, seed: seed)
            let store = try FlatGenomeStore(parameterCount: experiment.classifier.parameterCount, slotCount: 20,
                                            seeds: experiment.seeds(setting: .scratch, runSeed: seed))
            let search = try M2N2Search(configuration: configuration, store: store,
                                        scorer: MLPScorer(classifier: experiment.classifier, batch: experiment.train))
            try search.insertSeed(0)
            try search.insertSeed(1)
            try search.run()
            #expect(search.passes == 25)
            return (store.slots, search.scores)
        }
        let (a, sa) = try archive(seed: 5)
        let (b, sb) = try archive(seed: 5)
        let (c, _) = try archive(seed: 6)
        #expect(a == b)
        #expect(sa == sb)
        #expect(a != c)
    }
}
