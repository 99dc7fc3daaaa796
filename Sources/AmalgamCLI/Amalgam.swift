import AmalgamCore
import ArgumentParser

/// The `amalgam` command: the only place that parses arguments, prints, or exits.
@main
struct Amalgam: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amalgam",
        abstract: "Merge neural networks (LLM checkpoints above all) on an ordinary CPU.",
        version: "0.1.0",
        subcommands: [
            Inspect.self,
            Merge.self,
            Convert.self,
            Tokenize.self,
            Score.self,
            Generate.self,
            Experiment.self,
            Eval.self,
            CompareEvals.self,
            MakeTasks.self,
            FineTune.self,
            Evolve.self,
            DAMCommand.self,
        ]
    )

    static func main() {
        // Outputs clean up after runs that were killed; the user hears what was removed, and how much.
        AtomicOutput.onLeftoverRemoved { leftover in printError(leftover.description) }
        main(nil)
    }
}
