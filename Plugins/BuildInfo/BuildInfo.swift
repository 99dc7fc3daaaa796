import Foundation
import PackagePlugin

/// Writes the commit the `amalgam` command is built from into a generated `BuildInfo.swift`, so that
/// `amalgam --version` names it. The command runs again when HEAD moves (a commit, checkout or reset), not on
/// every build; outside a git checkout the commit is "unknown".
@main
struct BuildInfo: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let output = context.pluginWorkDirectoryURL.appending(path: "BuildInfo.swift")
        // A worktree's `.git` is a file naming its git folder, where its own HEAD and reflog live.
        var gitFolder = root.appending(path: ".git")
        if let link = try? String(contentsOf: gitFolder, encoding: .utf8), link.hasPrefix("gitdir:") {
            let path = link.dropFirst("gitdir:".count).trimmingCharacters(in: .whitespacesAndNewlines)
            gitFolder = path.hasPrefix("/") ? URL(filePath: path) : root.appending(path: path)
        }
        let inputs = ["HEAD", "logs/HEAD"].map { gitFolder.appending(path: $0) }
            .filter { FileManager.default.fileExists(atPath: $0.path()) }
        let script = """
            commit=$(git -C "$1" rev-parse HEAD 2>/dev/null || echo unknown)
            printf '/// Made by the BuildInfo plugin when the package is built.\\nenum BuildInfo {\\n    static let commit = "%s"\\n}\\n' "$commit" > "$2"
            """
        return [
            .buildCommand(
                displayName: "Build info (git commit)",
                executable: URL(filePath: "/bin/sh"),
                arguments: ["-c", script, "sh", root.path(), output.path()],
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }
}
