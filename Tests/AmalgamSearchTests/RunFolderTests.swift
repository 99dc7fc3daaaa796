import AmalgamCore
import AmalgamLab
import AmalgamSearch
import AmalgamTestSupport
import Foundation
import Testing

/// The run folder: genome files, orphans, and an M2N2 run committed step by step.
@Suite struct RunFolderTests {
    @Test func genomesAreWrittenMappedAndOrphansDiscarded() throws {
        let root = temporaryFolder("runfolder")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = root + "/run"
        let folder = try RunFolder.create(path: path, kind: "test", durability: .machine) { f throws(SearchError) in
            try f.setMeta("answer", "42")
        }
        #expect(try folder.meta("answer") == "42")
        #expect(!FileManager.default.fileExists(atPath: root + "/.run.partial-\(getpid())"))
        let values: [Float] = [1, -2.5, 3e-8, .infinity]
        try values.withUnsafeBufferPointer { (p: UnsafeBufferPointer<Float>) throws(SearchError) in
            try folder.writeGenome("a", p)
            try folder.writeGenome("b", p)
        }
        let mapped = try folder.mapGenome("a", count: 4)
        #expect(Array(mapped.bytes(offset: 0, count: 16).bindMemory(to: Float.self)) == values)
        #expect(throws: SearchError.self) { try folder.mapGenome("a", count: 5) }
        // A killed step leaves a temporary file and an unreferenced genome: both go; "a" stays.
        _ = FileManager.default.createFile(atPath: path + "/genomes/.c.partial", contents: Data([1, 2]))
        try folder.removeUnreferencedGenomes(keeping: ["a"])
        #expect(folder.genomeNames() == ["a"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: path + "/genomes") == ["a.f32"])
        // A referenced genome that is gone is damage, not something to skip.
        #expect(throws: SearchError.self) { try folder.removeUnreferencedGenomes(keeping: ["a", "gone"]) }
        // The folder exists now: creating it again is refused, opening it as another kind too.
        #expect(throws: SearchError.self) { try RunFolder.create(path: path, kind: "test", durability: .process) { _ throws(SearchError) in } }
        #expect(throws: SearchError.self) { try RunFolder.open(path: path, kind: "m2n2", durability: .process) }
        #expect(throws: SearchError.self) { try RunFolder.open(path: root + "/nothing", kind: "test", durability: .process) }
    }

    @Test func aResumedRunEndsExactlyLikeAnUninterruptedOne() throws {
        let root = temporaryFolder("m2n2run")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let experiment = try DigitsExperiment(csvPath: digitsCSV)
        func search(_ passes: Int) throws -> M2N2Search<MLPScorer> {
            let configuration = M2N2Configuration(variant: .m2n2, forwardPasses: passes, mutationStandardDeviation: 0.01, seed: 3)
            let store = try FlatGenomeStore(parameterCount: experiment.classifier.parameterCount, slotCount: 20,
                                            seeds: experiment.seeds(setting: .scratch, runSeed: 3))
            return try M2N2Search(configuration: configuration, store: store,
                                  scorer: MLPScorer(classifier: experiment.classifier, batch: experiment.train))
        }
        // Uninterrupted, durable.
        let whole = try M2N2Run(creating: root + "/whole", search: try search(60), experiment: "test", durability: .process)
        try whole.run()
        // Interrupted after 25 commits (a seed insertion counts as one), with debris of the 26th step's genome.
        let first = try M2N2Run(creating: root + "/parts", search: try search(60), experiment: "test", durability: .process)
        for _ in 0..<25 { try first.advance() }
        _ = FileManager.default.createFile(atPath: root + "/parts/genomes/p00000023.f32", contents: Data([0]))
        _ = FileManager.default.createFile(atPath: root + "/parts/genomes/.p00000023.partial", contents: Data([0]))
        let resumed = try M2N2Run(resuming: root + "/parts", search: try search(60), durability: .process)
        #expect(resumed.passesAtOpen == 23 && resumed.seedsInserted == 2)
        try resumed.run()
        #expect(resumed.search.store.slots == whole.search.store.slots)
        #expect(resumed.search.scores == whole.search.scores)
        #expect(try runFolderSnapshot(root + "/parts") == runFolderSnapshot(root + "/whole"))
        // Disk holds exactly the archive's genomes; the lineage has one row per seed and per child.
        let referenced = Set(resumed.archiveGenomes.compactMap { $0 })
        #expect(Set(resumed.folder.genomeNames()) == referenced)
        #expect(referenced.count <= 20)
        let count = try resumed.folder.database.statement("SELECT count(*), sum(entered) FROM lineage")
        #expect(try count.step())
        #expect(count.int(0) == 62)
        #expect(count.int(1) >= 2)
        // A different configuration cannot resume this folder.
        #expect(throws: SearchError.self) { try M2N2Run(resuming: root + "/parts", search: try search(61), durability: .process) }
    }
}
