import AmalgamCore
import ArgumentParser

/// The `amalgam` command: the only place that parses arguments, prints, or exits.
@main
struct Amalgam: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amalgam",
        abstract: "Merge neural networks (LLM checkpoints above all) on an ordinary CPU.",
        version: "\(version) (commit \(BuildInfo.commit))",
        subcommands: [
            Inspect.self,
            Merge.self,
            ExtractLoRA.self,
            MoE.self,
            TokenSurgeonCommand.self,
            Convert.self,
            Tokenize.self,
            Score.self,
            Generate.self,
            Experiment.self,
            Eval.self,
            CompareEvals.self,
            Report.self,
            MakeTasks.self,
            FineTune.self,
            Evolve.self,
            Worker.self,
            DAMCommand.self,
            Download.self,
        ]
    )

    /// The release version; the Python wheel (`scripts/wheel.sh`) takes its version from here.
    static let version = "0.1.0"

    /// Parses and runs the subcommand. The library reports two things the user must hear about while it works:
    /// the downloads of Hugging Face models, and the leftovers of killed runs that outputs clean up.
    static func main() {
        reportHubDownloads()
        AtomicOutput.onLeftoverRemoved { leftover in printError(leftover.description) }
        main(nil)
    }
}
