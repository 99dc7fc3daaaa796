import AmalgamSearch
import Foundation

/// Everything a run folder commits, as text: archive (genome, scores, file bytes), state and lineage.
public func runFolderSnapshot(_ path: String) throws -> String {
    let folder = try RunFolder.open(path: path, kind: "m2n2", durability: .process, claim: false)
    var out = ""
    let archive = try folder.database.statement("SELECT slot, genome, scores FROM archive ORDER BY slot")
    while try archive.step() {
        let name = archive.text(1)
        let bytes = try name.map { try Data(contentsOf: URL(fileURLWithPath: folder.genomePath($0))) } ?? Data()
        out += "slot \(archive.int(0)) \(name ?? "zero") scores \(archive.blob(2).hashValue) genome \(Array(bytes).hashValue) \(bytes.count)\n"
    }
    let state = try folder.database.statement(
        "SELECT passes, seeds_inserted, rng0, rng1, rng2, rng3, attraction_fallbacks FROM state")
    while try state.step() { out += "state " + (0..<7).map { String(state.int(Int32($0))) }.joined(separator: " ") + "\n" }
    let lineage = try folder.database.statement("""
        SELECT step, pass, seed, parent1, parent2, parent1_genome, parent2_genome, split_point, ratio, omega, mutation_seed,
            mean_score, fitness, entered, slot, genome FROM lineage ORDER BY step
        """)
    while try lineage.step() { out += (0..<16).map { lineage.text(Int32($0)) ?? "-" }.joined(separator: " ") + "\n" }
    return out
}
