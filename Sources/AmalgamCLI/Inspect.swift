import AmalgamCheckpoint
import AmalgamCore
import ArgumentParser
import Foundation

/// `amalgam inspect PATH`: what a checkpoint holds.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a checkpoint's architecture, size and tensors (a model folder, a .safetensors or a .gguf file)."
    )

    @Argument(help: "A model folder, a .safetensors file or a .gguf file.")
    var path: String

    @Flag(help: "Print JSON for scripts instead of a table.")
    var json = false

    @Flag(help: "Omit the per-tensor list.")
    var summary = false

    func run() throws {
        let report = try CheckpointReport(path: try resolveModelArgument(path))
        if json {
            print(report.json(includeTensors: !summary).pythonText(sortKeys: false))
        } else {
            print(report.text(includeTensors: !summary), terminator: "")
        }
    }
}
