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

/// Download progress on standard error: a line redrawn in place on a terminal, else one line per file.
final class HubProgressLine: @unchecked Sendable {
    static let shared = HubProgressLine()
    private let lock = NSLock()
    private var lastDraw = Date.distantPast
    private var lastFile = ""
    private var started = Date()
    private var drawn = false

    func report(_ p: HubProgress) {
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        if p.file != lastFile {
            lastFile = p.file
            if p.fileIndex == 1 { started = now }
            if !standardErrorIsTerminal {
                printError("downloading \(p.reference): \(p.file) (\(formatBytes(p.bytesTotal)), file \(p.fileIndex)/\(p.fileCount))")
            }
        }
        guard standardErrorIsTerminal, now.timeIntervalSince(lastDraw) > 0.1 || p.allBytesDone == p.allBytesTotal else { return }
        lastDraw = now
        let seconds = now.timeIntervalSince(started)
        let rate = seconds > 0 ? Double(p.allBytesDone) / seconds : 0
        let line = String(format: "\r[download] %@ %d/%d %@ · %@ / %@ · %@/s   ", p.reference, p.fileIndex, p.fileCount, p.file,
                          formatBytes(p.allBytesDone), formatBytes(p.allBytesTotal), formatBytes(Int(rate)))
        FileHandle.standardError.write(Data(line.utf8))
        drawn = true
        if p.fileIndex == p.fileCount && p.bytesDone == p.bytesTotal {
            FileHandle.standardError.write(Data("\n".utf8))
            drawn = false
        }
    }

    /// Ends a drawn line.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
        drawn = false
        lastFile = ""
    }
}
