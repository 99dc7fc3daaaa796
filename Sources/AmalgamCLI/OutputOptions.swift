import AmalgamCheckpoint
import AmalgamCore
import ArgumentParser

/// How a command writes a model folder (`merge`, `moe`, `tokensurgeon`): its shard size, whether it may
/// replace a folder that exists, and what the finished folder survives.
struct ModelOutputOptions: ParsableArguments {
    @Option(help: "Largest shard, in bytes or as 5GB, 500MB, 2GiB.")
    var outShardSize = "5GB"

    @Flag(help: "Replace the output if it exists.")
    var overwrite = false

    @Option(help: "What the finished output survives: machine (default: also power loss; the weights are flushed to disk before the folder takes its name) or process (a kill or crash of the program; the command does not wait for the disk). A GGUF output is always flushed.")
    var sync = "machine"

    func validate() throws {
        guard Durability(rawValue: sync) != nil else { throw ValidationError("--sync must be machine or process, not `\(sync)`") }
    }

    /// `--sync` as the writers take it.
    var durability: Durability { Durability(rawValue: sync) ?? .machine }

    /// `--out-shard-size` in bytes.
    func shardSize() throws -> Int { try parseShardSize(outShardSize) }
}
