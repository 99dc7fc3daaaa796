import AmalgamCore
import Foundation

/// Progress of a download into the cache, for a progress line.
public struct HubProgress: Sendable {
    /// The reference being fetched.
    public let reference: String
    /// The file being downloaded (a path inside the repository).
    public let file: String
    /// 1-based position of `file` among the files to download, and their number.
    public let fileIndex: Int
    public let fileCount: Int
    /// Bytes of `file` on disk so far (including what an earlier, interrupted run left) and in all.
    public let bytesDone: Int
    public let bytesTotal: Int
    /// Bytes of all files done so far and in all.
    public let allBytesDone: Int
    public let allBytesTotal: Int
}

/// Turns model arguments into folders: a local path stays as it is; `org/name[@revision]` becomes the
/// snapshot folder of the Hugging Face cache (`…/hub/models--org--name/snapshots/<commit>`), found
/// offline first and downloaded as `huggingface_hub` lays it out when missing and the network is allowed.
public enum HubCache {
    private static let observerLock = Lock()
    nonisolated(unsafe) private static var observer: (@Sendable (HubProgress) -> Void)?

    /// Sets where downloads started without an explicit `progress` report (the command line's progress
    /// line). Pass nil to stop reporting.
    public static func setProgressObserver(_ observer: (@Sendable (HubProgress) -> Void)?) {
        observerLock.withLock { Self.observer = observer }
    }

    /// The folder for a model argument. An existing file or folder is returned unchanged (a local folder
    /// named `org/name` wins over the hub, as in mergekit). `org/name[@revision]` is looked up in the
    /// caches, then downloaded unless offline. Anything else is returned unchanged, for the caller to
    /// report as a missing file.
    public static func resolve(_ argument: String, environment: HubEnvironment = .current,
                               progress: (@Sendable (HubProgress) -> Void)? = nil) throws(HubError) -> String {
        if FileManager.default.fileExists(atPath: argument) { return argument }
        guard let reference = HubReference(argument) else { return argument }
        return try resolve(reference, environment: environment, progress: progress)
    }

    /// The snapshot folder of `reference`, from the cache or downloaded.
    public static func resolve(_ reference: HubReference, environment: HubEnvironment = .current,
                               progress: (@Sendable (HubProgress) -> Void)? = nil) throws(HubError) -> String {
        guard reference.revisionIsSafe else { throw .unsafeRevision(reference: reference.description, revision: reference.revision) }
        let lookup = find(reference, in: environment.caches)
        if let snapshot = lookup.snapshot { return snapshot }
        guard !environment.offline, let cache = environment.caches.first else {
            throw .notCached(reference: reference.description, searched: lookup.searched, offline: environment.offline)
        }
        let report = progress ?? observerLock.withLock { observer }
        do {
            return try HubDownload(reference: reference, cache: cache, environment: environment, progress: report).run()
        } catch {
            throw .downloadFailed(reference: reference.description, searched: lookup.searched, cause: error)
        }
    }

    /// What an offline search found: the first complete snapshot, and what each cache held.
    public struct Lookup: Sendable {
        public let snapshot: String?
        public let searched: [HubError.SearchedCache]
    }

    /// Searches `caches` in order for a complete snapshot of `reference`, without any network.
    public static func find(_ reference: HubReference, in caches: [String]) -> Lookup {
        var searched: [HubError.SearchedCache] = []
        for cache in caches {
            let folder = cache + "/" + reference.cacheFolderName
            switch snapshot(of: reference, in: folder) {
            case let .success(path): return Lookup(snapshot: path, searched: searched)
            case let .failure(finding): searched.append(.init(folder: folder, finding: finding.text))
            }
        }
        return Lookup(snapshot: nil, searched: searched)
    }

    struct Finding: Error { let text: String }

    /// The snapshot folder of `reference` in one repository folder, if its weights are all there.
    static func snapshot(of reference: HubReference, in folder: String) -> Result<String, Finding> {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            return .failure(Finding(text: "no such folder"))
        }
        let commit: String
        if reference.isCommitHash {
            commit = reference.revision
        } else if let text = try? String(contentsOfFile: folder + "/refs/" + reference.revision, encoding: .utf8) {
            commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard HubReference.isCommitHash(commit) else {
                return .failure(Finding(text: "refs/\(reference.revision) holds '\(commit.prefix(50))', not a commit hash"))
            }
        } else if let short = uniqueSnapshot(prefixed: reference.revision, in: folder + "/snapshots") {
            // A shortened commit hash (7+ digits), matched against the snapshots present.
            commit = short
        } else {
            let known = ((try? fm.contentsOfDirectory(atPath: folder + "/refs")) ?? []).sorted()
            return .failure(Finding(text: "no refs/\(reference.revision)" + (known.isEmpty ? "" : "; cached revisions: \(known.joined(separator: ", "))")))
        }
        let path = folder + "/snapshots/" + commit
        guard fm.fileExists(atPath: path) else { return .failure(Finding(text: "revision \(reference.revision) is commit \(commit), which has no snapshots/\(commit)")) }
        if let missing = missingFiles(in: path).first {
            return .failure(Finding(text: "snapshots/\(commit) lacks \(missing)"))
        }
        return .success(path)
    }

    private static func uniqueSnapshot(prefixed prefix: String, in snapshots: String) -> String? {
        guard prefix.count >= 7, prefix.count < 40, prefix.allSatisfy(\.isHexDigit) else { return nil }
        let matches = ((try? FileManager.default.contentsOfDirectory(atPath: snapshots)) ?? []).filter { $0.hasPrefix(prefix.lowercased()) }
        return matches.count == 1 ? matches[0] : nil
    }

    /// What a snapshot folder lacks to be opened as a model: `config.json` and its safetensors weights
    /// (every shard its index lists, or at least one `*.safetensors`), each a file or a symlink to a blob
    /// that exists. Empty when complete.
    static func missingFiles(in snapshot: String) -> [String] {
        let fm = FileManager.default
        func present(_ name: String) -> Bool { fm.fileExists(atPath: snapshot + "/" + name) }  // follows symlinks
        var missing: [String] = []
        // A PEFT LoRA adapter (`model+org/adapter`) has adapter_config.json in place of config.json.
        if !present("config.json") && !present("adapter_config.json") { missing.append("config.json") }
        let index = "model.safetensors.index.json"
        if present(index) {
            for shard in shardNames(indexAt: snapshot + "/" + index) ?? [] where !present(shard) { missing.append(shard) }
        } else {
            let names = (try? fm.contentsOfDirectory(atPath: snapshot)) ?? []
            let weights = names.filter { $0.hasSuffix(".safetensors") }
            if weights.isEmpty { missing.append("its weights (*.safetensors)") }
            for w in weights.sorted() where !present(w) { missing.append(w + " (its blob)") }
        }
        return missing
    }

    /// The shard files a `model.safetensors.index.json` names, sorted; nil if it cannot be read.
    static func shardNames(indexAt path: String) -> [String]? {
        guard let bytes = FileManager.default.contents(atPath: path),
              let json = try? JSONValue.parse(String(decoding: bytes, as: UTF8.self)),
              let map = json["weight_map"]?.objectValue else { return nil }
        return Set(map.compactMap { $0.value.stringValue }).sorted()
    }
}
