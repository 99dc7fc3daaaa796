import Foundation

/// A Hugging Face model named as `org/name` or `org/name@revision` (a branch, tag or commit hash), as
/// mergekit's configs and `huggingface_hub` write it.
public struct HubReference: Sendable, Equatable, CustomStringConvertible {
    /// `org/name`.
    public let repository: String
    /// The revision as written; `main` when none is given.
    public let revision: String

    /// Parses `org/name` or `org/name@revision`; nil for anything else (a local path such as `./x`,
    /// `a/b/c`, `/abs`, a `.gguf` file name), so callers can fall back to their own message.
    public init?(_ text: String) {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return nil }
        let repo = String(parts[0])
        let names = repo.split(separator: "/", omittingEmptySubsequences: false)
        guard names.count == 2, names.allSatisfy({ Self.isRepositoryName($0) }) else { return nil }
        // A missing `dir/model.gguf` or `dir/config.yml` is a missing file, not a repository.
        let fileSuffixes = [".gguf", ".safetensors", ".yml", ".yaml", ".json", ".jsonl", ".txt", ".bin"]
        guard !fileSuffixes.contains(where: { names[1].lowercased().hasSuffix($0) }) else { return nil }
        if parts.count == 2 {
            guard !parts[1].isEmpty else { return nil }
            revision = String(parts[1])
        } else {
            revision = "main"
        }
        repository = repo
    }

    /// The hub's rule for one half of a repository id: letters, digits, `-`, `_`, `.`, at most 96
    /// characters, not starting or ending with `-` or `.`, and no `--` or `..` (which the cache's folder
    /// names and paths could not tell apart).
    private static func isRepositoryName(_ s: Substring) -> Bool {
        guard !s.isEmpty, s.count <= 96, !s.contains("--"), !s.contains("..") else { return false }
        guard s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else { return false }
        return !s.hasPrefix("-") && !s.hasPrefix(".") && !s.hasSuffix("-") && !s.hasSuffix(".")
    }

    /// Whether the revision is a full commit hash (40 hexadecimal digits), which needs no `refs/` file.
    public var isCommitHash: Bool { Self.isCommitHash(revision) }

    static func isCommitHash(_ s: String) -> Bool {
        s.utf8.count == 40 && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// Whether the revision can name a file under `refs/` without leaving it (branches such as
    /// `refs/pr/1` contain slashes; `..`, empty parts, backslashes and absolute paths are refused).
    var revisionIsSafe: Bool { HubPath.isSafeRelative(revision) }

    /// The repository's folder name in the cache: `models--org--name`.
    public var cacheFolderName: String { "models--" + repository.replacingOccurrences(of: "/", with: "--") }

    public var description: String { revision == "main" ? repository : "\(repository)@\(revision)" }
}

/// Checks for relative paths that come from outside (the hub's listing, a revision).
enum HubPath {
    /// True for `a`, `a/b.json`; false for ``, `/a`, `a/../b`, `./a`, `a//b`, `a\b`, or a control character.
    static func isSafeRelative(_ path: String) -> Bool {
        guard !path.isEmpty, !path.hasPrefix("/"), !path.contains("\\"), !path.contains("\0") else { return false }
        guard !path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else { return false }
        return path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { $0 != "" && $0 != "." && $0 != ".." }
    }
}

/// Where the cache is and how the hub is reached, from the environment variables `huggingface_hub`
/// reads (`HF_HUB_CACHE`, `HF_HOME`, `XDG_CACHE_HOME`, `HF_HUB_OFFLINE`, `HF_ENDPOINT`, `HF_TOKEN`).
public struct HubEnvironment: Sendable {
    /// The caches searched, in order; the first is where downloads go (`huggingface_hub`'s cache).
    public var caches: [String]
    /// No network: `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) is 1, ON, YES or TRUE.
    public var offline: Bool
    /// The hub's base URL, without a trailing slash.
    public var endpoint: String
    /// The access token, sent as `Authorization: Bearer …` to the endpoint's host only, never shown.
    public var token: HubToken?

    /// The environment of this process.
    public static var current: HubEnvironment { HubEnvironment(variables: ProcessInfo.processInfo.environment) }

    /// Reads the variables as `huggingface_hub` does. The cache is `HF_HUB_CACHE`, else the legacy
    /// `HUGGINGFACE_HUB_CACHE`, else `HF_HOME/hub`, else `XDG_CACHE_HOME/huggingface/hub`, else
    /// `~/.cache/huggingface/hub`. Unlike `huggingface_hub`, the other places in that list are searched
    /// too (after the first) when they exist, so a model downloaded under another setting is still found.
    public init(variables env: [String: String]) {
        func value(_ name: String) -> String? { env[name].flatMap { $0.isEmpty ? nil : Self.expand($0, env) } }
        let home = env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        let xdg = value("XDG_CACHE_HOME") ?? home + "/.cache"
        let hfHome = value("HF_HOME") ?? xdg + "/huggingface"
        var caches: [String] = []
        for candidate in [value("HF_HUB_CACHE"), value("HUGGINGFACE_HUB_CACHE"), hfHome + "/hub",
                          xdg + "/huggingface/hub", home + "/.cache/huggingface/hub"] {
            guard let c = candidate.map(Self.normalize), !caches.contains(c) else { continue }
            caches.append(c)
        }
        self.caches = caches
        let truthy: Set<String> = ["1", "ON", "YES", "TRUE"]
        offline = [env["HF_HUB_OFFLINE"], env["TRANSFORMERS_OFFLINE"]].contains { $0.map { truthy.contains($0.uppercased()) } ?? false }
        var endpoint = value("HF_ENDPOINT") ?? "https://huggingface.co"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        self.endpoint = endpoint
        // `HF_TOKEN`, then the legacy `HUGGING_FACE_HUB_TOKEN`, then the file `hf auth login` writes.
        let tokenPath = value("HF_TOKEN_PATH") ?? hfHome + "/token"
        let fromFile = (try? String(contentsOfFile: tokenPath, encoding: .utf8))
        token = [env["HF_TOKEN"], env["HUGGING_FACE_HUB_TOKEN"], fromFile].lazy.compactMap { HubToken($0) }.first
    }

    /// `~` and `$VAR` / `${VAR}` expanded, as `os.path.expanduser(os.path.expandvars(…))` does.
    private static func expand(_ s: String, _ env: [String: String]) -> String {
        var out = ""
        var rest = Substring(s)
        while let dollar = rest.firstIndex(of: "$") {
            out += rest[..<dollar]
            var after = rest[rest.index(after: dollar)...]
            let braced = after.first == "{"
            if braced { after = after.dropFirst() }
            let name = after.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            if !name.isEmpty, let v = env[String(name)], !braced || after.dropFirst(name.count).first == "}" {
                out += v
                rest = after.dropFirst(name.count + (braced ? 1 : 0))
            } else {
                out += "$"
                rest = rest[rest.index(after: dollar)...]
            }
        }
        out += rest
        if out == "~" || out.hasPrefix("~/") { out = (env["HOME"] ?? NSHomeDirectory()) + out.dropFirst() }
        return out
    }

    private static func normalize(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return URL(fileURLWithPath: absolute).standardizedFileURL.path
    }
}

/// An access token. Its description is redacted, so it cannot reach a message, a log or a report by
/// accident; only the HTTP layer reads `secret`.
public struct HubToken: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    let secret: String

    /// A token from text (whitespace and line breaks removed); nil when empty.
    public init?(_ text: String?) {
        guard let cleaned = text?.filter({ !$0.isWhitespace }), !cleaned.isEmpty else { return nil }
        secret = cleaned
    }

    public var description: String { "<HF_TOKEN redacted>" }
    public var debugDescription: String { description }
}
