import AmalgamCore

/// Everything that can go wrong finding or fetching a Hugging Face model (`org/name[@revision]`). Messages
/// name the reference, the cache folders or the URL, and say what to do. They never contain the token.
public enum HubError: Error, CustomStringConvertible, Equatable {
    /// Not in any cache searched, and not downloaded (offline, or nothing to download from).
    case notCached(reference: String, searched: [SearchedCache], offline: Bool)
    /// The hub answered with an error status.
    case http(reference: String, url: String, status: Int, message: String?)
    /// The hub could not be reached or the transfer broke off for good.
    case network(reference: String, url: String, reason: String)
    /// The hub's answer lacks what the cache layout needs (commit hash, ETag, size) or is malformed.
    case badResponse(reference: String, url: String, reason: String)
    /// A file name in the hub's listing would land outside the snapshot folder.
    case unsafeFileName(reference: String, file: String)
    /// A revision that cannot name a file under `refs/` (`..`, an absolute path).
    case unsafeRevision(reference: String, revision: String)
    /// The repository holds weights only in formats Amalgam does not read.
    case noSafetensors(reference: String, files: [String])
    /// The repository holds no weights at all.
    case noWeights(reference: String)
    /// A downloaded file's size differs from the size the hub announced.
    case sizeMismatch(reference: String, file: String, expected: Int, actual: Int)
    /// Writing into the cache failed.
    case cache(path: String, reason: String)
    /// Not in any cache searched, and the download failed (`cause`).
    indirect case downloadFailed(reference: String, searched: [SearchedCache], cause: HubError)

    /// The error behind a failed download; the error itself otherwise.
    public var cause: HubError {
        if case let .downloadFailed(_, _, cause) = self { return cause }
        return self
    }

    /// One cache folder looked at, and what was (not) there.
    public struct SearchedCache: Sendable, Equatable, CustomStringConvertible {
        /// The repository's folder in that cache (`…/hub/models--org--name`).
        public let folder: String
        /// Why it did not serve the reference.
        public let finding: String
        public var description: String { "\(folder) (\(finding))" }
    }

    /// The message, with any user name and password written into a URL (`https://user:secret@host/…`,
    /// e.g. in HF_ENDPOINT or a redirect) replaced by `***`.
    public var description: String { HubError.withoutURLCredentials(text) }

    /// `text` with the user-information part of every `scheme://user:password@host` in it replaced by `***`.
    public static func withoutURLCredentials(_ text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while let scheme = rest.range(of: "://") {
            out += rest[..<scheme.upperBound]
            let after = rest[scheme.upperBound...]
            let end = after.firstIndex { "/?#) '\"\n\t".contains($0) } ?? after.endIndex
            if let at = after[..<end].lastIndex(of: "@") {
                out += "***"
                rest = after[at...]
            } else {
                rest = after
            }
        }
        return out + rest
    }

    private var text: String {
        switch self {
        case let .notCached(reference, searched, offline):
            let list = searched.map { "  " + $0.description }.joined(separator: "\n")
            let why = offline ? "HF_HUB_OFFLINE is set, so nothing was downloaded" : "it was not downloaded"
            return "\(reference): not found in the Hugging Face cache (\(why)). Searched:\n\(list)\n"
                + "Fetch it with `amalgam download \(reference)` (or `hf download \(reference.replacingOccurrences(of: "@", with: " --revision "))`), "
                + "or give a local folder instead"
        case let .http(reference, url, status, message):
            let detail = message.map { " (\($0))" } ?? ""
            let advice: String
            switch status {
            case 401, 403:
                advice = "the repository is private or gated, or does not exist: set HF_TOKEN to a token that may read it (and accept the model's licence on its page)"
            case 404:
                advice = "no such repository, revision or file; check the spelling of the name and the revision"
            case 429:
                advice = "too many requests; wait and run again (downloads resume)"
            default:
                advice = "the hub failed; run again later (downloads resume where they stopped)"
            }
            return "\(reference): \(url) answered HTTP \(status)\(detail): \(advice)"
        case let .network(reference, url, reason):
            return "\(reference): cannot download \(url): \(reason). Check the network (HF_ENDPOINT, proxies) and run again; the download resumes where it stopped. Set HF_HUB_OFFLINE=1 to use the cache only"
        case let .badResponse(reference, url, reason):
            return "\(reference): unexpected answer from \(url): \(reason); is HF_ENDPOINT a Hugging Face hub?"
        case let .unsafeFileName(reference, file):
            return "\(reference): the hub's file list names '\(file)', which would be written outside the snapshot folder; refusing to download this repository"
        case let .unsafeRevision(reference, revision):
            return "\(reference): revision '\(revision)' is not a branch, tag or commit hash (it contains '..', a backslash or starts with '/')"
        case let .noSafetensors(reference, files):
            return "\(reference): the repository has weights only as \(files.prefix(4).joined(separator: ", "))\(files.count > 4 ? ", …" : ""); Amalgam reads safetensors. Convert them with transformers (model.save_pretrained(dir, safe_serialization=True)) and give that folder"
        case let .noWeights(reference):
            return "\(reference): the repository has no weight files (no *.safetensors); is it a model repository?"
        case let .sizeMismatch(reference, file, expected, actual):
            return "\(reference): '\(file)' arrived with \(actual) bytes but the hub announced \(expected); run again to download it afresh"
        case let .downloadFailed(reference, searched, cause):
            let list = searched.map { "  " + $0.description }.joined(separator: "\n")
            return "\(cause.description)\n\(reference) is not in the Hugging Face cache either. Searched:\n\(list)"
        case let .cache(path, reason):
            return "\(path): cannot write to the Hugging Face cache (\(reason)); check its permissions and free space, or set HF_HUB_CACHE to another folder"
        }
    }
}
