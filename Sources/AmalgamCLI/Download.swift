import AmalgamCheckpoint
import ArgumentParser
import Foundation

/// `amalgam download org/name[@revision]`: put a Hugging Face model into the Hugging Face cache.
struct Download: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a Hugging Face model into the Hugging Face cache (or find it there) and print its folder.",
        discussion: """
            Fetches config, tokenizer and generation files and the safetensors weights, laid out as huggingface_hub \
            lays them out (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub), resuming an interrupted \
            download. HF_TOKEN is sent to HF_ENDPOINT (default https://huggingface.co) for private or gated models. \
            With HF_HUB_OFFLINE=1 the cache alone is searched. Every command taking a MODEL, and every model in a \
            merge config, accepts org/name[@revision] the same way; see docs/huggingface-cache.md.

            Example:
              amalgam download HuggingFaceTB/SmolLM2-135M-Instruct
              amalgam download mistralai/Mistral-7B-v0.1@main
            """
    )

    @Argument(help: "A Hugging Face model: org/name, or org/name@revision (a branch, tag or commit hash).")
    var reference: String

    @Flag(help: "No progress line.")
    var quiet = false

    func validate() throws {
        guard HubReference(reference) != nil else {
            throw ValidationError("'\(reference)' is not a Hugging Face reference: give org/name or org/name@revision")
        }
    }

    func run() throws {
        let start = Date()
        var progress: (@Sendable (HubProgress) -> Void)? = nil
        if !quiet { progress = { HubProgressLine.shared.report($0) } }
        let folder = try HubCache.resolve(HubReference(reference)!, progress: progress)
        HubProgressLine.shared.finish()
        printError(String(format: "%@ ready in %.1f s", reference, Date().timeIntervalSince(start)))
        printLine(folder)
    }
}

/// The folder for a MODEL argument: a local path as given, `org/name[@revision]` from the Hugging Face
/// cache (downloaded when missing, with a progress line).
func resolveModelArgument(_ argument: String) throws -> String {
    let folder = try HubCache.resolve(argument)
    HubProgressLine.shared.finish()
    return folder
}

/// Shows downloads started inside the library (the models of a merge config) on standard error.
func reportHubDownloads() {
    HubCache.setProgressObserver { HubProgressLine.shared.report($0) }
}

/// Download progress on standard error, through the one progress renderer: per model, the bytes of all its
/// files so far, the file being fetched and the rate.
final class HubProgressLine: @unchecked Sendable {
    static let shared = HubProgressLine()
    private let lock = NSLock()
    private var line: ProgressDisplay?
    private var reference = ""
    private var started = Date()

    func report(_ p: HubProgress) {
        lock.lock()
        defer { lock.unlock() }
        if line == nil || p.reference != reference {
            line?.finish()
            line = ProgressDisplay(label: "download", bytes: true)
            reference = p.reference
            started = Date()
        }
        let seconds = Date().timeIntervalSince(started)
        let rate = seconds > 0 ? Double(p.allBytesDone) / seconds : 0
        line?.update(done: p.allBytesDone, total: p.allBytesTotal,
                     detail: "\(p.reference) file \(p.fileIndex)/\(p.fileCount) \(p.file) · \(formatBytes(Int(rate)))/s")
    }

    /// Ends a drawn line.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        line?.finish()
        line = nil
        reference = ""
    }
}
