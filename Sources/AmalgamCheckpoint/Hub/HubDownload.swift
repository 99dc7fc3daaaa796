import AmalgamCore
import Foundation

/// Downloads what Amalgam needs of one hub repository into the cache, laid out as `huggingface_hub`
/// lays it out: `blobs/<etag>` (written as `blobs/<etag>.incomplete`, resumed with an HTTP Range request,
/// renamed when its size is right), `snapshots/<commit>/<file>` as relative symlinks to the blobs, and
/// `refs/<revision>` holding the commit.
///
/// Files fetched: the top-level `*.json`, `tokenizer.model`, `*.jinja`, `merges.txt` and `vocab.txt`,
/// and the safetensors weights (the shards `model.safetensors.index.json` lists, else `model.safetensors`,
/// else every top-level `*.safetensors`). Never `*.bin`, `*.pt`, `*.h5`, `*.msgpack`, ONNX or subfolders.
struct HubDownload {
    let reference: HubReference
    let cache: String
    let environment: HubEnvironment
    let progress: (@Sendable (HubProgress) -> Void)?
    var http = HubHTTP()
    /// Attempts per file after a transfer breaks off (each resumes where the last stopped).
    var attempts = 5

    init(reference: HubReference, cache: String, environment: HubEnvironment, progress: (@Sendable (HubProgress) -> Void)?) {
        self.reference = reference
        self.cache = cache
        self.environment = environment
        self.progress = progress
    }

    private var name: String { reference.description }
    private var storage: String { cache + "/" + reference.cacheFolderName }

    /// Where a file is and what it is, from the hub's answer to a HEAD request.
    private struct Remote {
        let file: String
        let etag: String
        let size: Int
        let location: URL
    }

    /// Downloads the missing files and returns the snapshot folder.
    func run() throws(HubError) -> String {
        let (commit, files) = try listing()
        let snapshot = storage + "/snapshots/" + commit
        let weightSuffixes = [".bin", ".pt", ".pth", ".h5", ".msgpack", ".onnx", ".ckpt", ".gguf"]
        let topLevel = files.filter { !$0.contains("/") }
        var wanted = topLevel.filter {
            $0.hasSuffix(".json") || $0.hasSuffix(".jinja") || ["tokenizer.model", "merges.txt", "vocab.txt"].contains($0)
        }
        let index = "model.safetensors.index.json"
        var weights: [String]
        if topLevel.contains(index) {
            // The index decides which shards belong to the model (a repository may also hold, say, a
            // `consolidated.safetensors` in another layout, which would double the download).
            try fetch([try metadata(index, commit: commit)], into: snapshot, commit: commit)
            guard let shards = HubCache.shardNames(indexAt: snapshot + "/" + index), !shards.isEmpty else {
                throw .badResponse(reference: name, url: (try? resolveURL(index, commit: commit))?.absoluteString ?? index, reason: "\(index) has no weight_map")
            }
            for shard in shards where !HubPath.isSafeRelative(shard) { throw .unsafeFileName(reference: name, file: shard) }
            weights = shards
        } else if topLevel.contains("model.safetensors") {
            weights = ["model.safetensors"]
        } else {
            weights = topLevel.filter { $0.hasSuffix(".safetensors") }
        }
        if weights.isEmpty {
            let others = files.filter { f in weightSuffixes.contains { f.lowercased().hasSuffix($0) } }
            throw others.isEmpty ? .noWeights(reference: name) : .noSafetensors(reference: name, files: others)
        }
        wanted = wanted.filter { $0 != index } + weights
        let fm = FileManager.default
        let missing = wanted.filter { !fm.fileExists(atPath: snapshot + "/" + $0) }
        var remotes: [Remote] = []
        for file in missing { remotes.append(try metadata(file, commit: commit)) }
        try fetch(remotes, into: snapshot, commit: commit)
        if reference.revision != commit { try writeRef(commit) }
        if let lacking = HubCache.missingFiles(in: snapshot).first {
            throw .badResponse(reference: name, url: environment.endpoint, reason: "after the download, snapshots/\(commit) still lacks \(lacking)")
        }
        return snapshot
    }

    // MARK: The hub's API

    private func headers(for url: URL) -> [String: String] {
        // `identity`: sizes are compared with Content-Length, which a compressed body would change.
        var h = ["User-Agent": "amalgam/0.1; hf_hub-compatible", "Accept-Encoding": "identity"]
        // The token goes to the hub itself only, never to a CDN or another host a redirect names.
        if let token = environment.token, let endpoint = URL(string: environment.endpoint),
           url.scheme == endpoint.scheme, url.host == endpoint.host, url.port == endpoint.port {
            h["Authorization"] = "Bearer " + token.secret
        }
        return h
    }

    private func url(_ path: String) throws(HubError) -> URL {
        guard let u = URL(string: environment.endpoint + path) else {
            throw .badResponse(reference: name, url: environment.endpoint, reason: "HF_ENDPOINT does not make a valid URL")
        }
        return u
    }

    private static let revisionCharacters = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))

    private func resolveURL(_ file: String, commit: String) throws(HubError) -> URL {
        let path = file.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? file
        return try url("/\(reference.repository)/resolve/\(commit)/\(path)")
    }

    /// The commit a revision names and the repository's file list (`/api/models/{repo}/revision/{rev}`).
    private func listing() throws(HubError) -> (commit: String, files: [String]) {
        let revision = reference.revision.addingPercentEncoding(withAllowedCharacters: Self.revisionCharacters) ?? reference.revision
        let api = try url("/api/models/\(reference.repository)/revision/\(revision)")
        let response = try exchange("GET", api)
        guard response.status == 200 else { throw httpError(response, api) }
        guard let json = try? JSONValue.parse(response.body) else {
            throw .badResponse(reference: name, url: api.absoluteString, reason: "the answer is not JSON")
        }
        guard let sha = json["sha"]?.stringValue, HubReference.isCommitHash(sha) else {
            throw .badResponse(reference: name, url: api.absoluteString, reason: "no 40-digit commit hash in 'sha'")
        }
        guard let siblings = json["siblings"]?.arrayValue else {
            throw .badResponse(reference: name, url: api.absoluteString, reason: "no 'siblings' file list")
        }
        var files: [String] = []
        for s in siblings {
            guard let f = s["rfilename"]?.stringValue else {
                throw .badResponse(reference: name, url: api.absoluteString, reason: "a 'siblings' entry has no 'rfilename'")
            }
            guard HubPath.isSafeRelative(f) else { throw .unsafeFileName(reference: name, file: f) }
            files.append(f)
        }
        return (sha, files)
    }

    /// Where a file is downloaded from, its ETag (the blob's name) and size: a HEAD request on
    /// `/{repo}/resolve/{commit}/{file}`, following the hub's own (relative) redirects. A redirect to
    /// another host (the CDN holding large files) is where the bytes come from.
    private func metadata(_ file: String, commit: String) throws(HubError) -> Remote {
        var target = try resolveURL(file, commit: commit)
        for _ in 0..<6 {
            let response = try exchange("HEAD", target)
            if (300..<400).contains(response.status), let location = response[header: "Location"],
               let next = URL(string: location, relativeTo: target)?.absoluteURL {
                // A relative redirect is the hub's own (a renamed repository); an absolute one points
                // to where the bytes are, and its headers already describe the file.
                if location.hasPrefix("/") { target = next; continue }
                return try remote(file, response, location: next, url: target)
            }
            guard response.status == 200 else { throw httpError(response, target) }
            return try remote(file, response, location: target, url: target)
        }
        throw .badResponse(reference: name, url: target.absoluteString, reason: "too many redirects")
    }

    private func remote(_ file: String, _ response: HubHTTP.Response, location: URL, url: URL) throws(HubError) -> Remote {
        guard let raw = response[header: "X-Linked-Etag"] ?? response[header: "ETag"] else {
            throw .badResponse(reference: name, url: url.absoluteString, reason: "no ETag header, so the file has no name in the cache")
        }
        var etag = Substring(raw)
        if etag.hasPrefix("W/") { etag = etag.dropFirst(2) }
        etag = etag.drop { $0 == "\"" }
        while etag.last == "\"" { etag = etag.dropLast() }
        guard !etag.isEmpty, etag.count <= 128, etag.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw .badResponse(reference: name, url: url.absoluteString, reason: "ETag '\(raw.prefix(80))' cannot name a file")
        }
        guard let size = (response[header: "X-Linked-Size"] ?? response[header: "Content-Length"]).flatMap({ Int($0) }), size >= 0 else {
            throw .badResponse(reference: name, url: url.absoluteString, reason: "no file size (X-Linked-Size or Content-Length)")
        }
        return Remote(file: file, etag: String(etag), size: size, location: location)
    }

    private func exchange(_ method: String, _ url: URL) throws(HubError) -> HubHTTP.Response {
        switch http.send(method, url, headers: headers(for: url)) {
        case let .success(r): return r
        case let .failure(.sink(e)): throw e
        case let .failure(.network(reason)): throw .network(reference: name, url: url.absoluteString, reason: redact(reason))
        }
    }

    private func httpError(_ response: HubHTTP.Response, _ url: URL) -> HubError {
        var message = response[header: "X-Error-Message"]
        if message == nil, let json = try? JSONValue.parse(response.body), let e = json["error"]?.stringValue { message = e }
        return .http(reference: name, url: url.absoluteString, status: response.status, message: message.map { redact(String($0.prefix(300))) })
    }

    /// Removes the token from text that came from elsewhere (a server's message may echo a header).
    private func redact(_ text: String) -> String {
        guard let token = environment.token else { return text }
        return text.replacingOccurrences(of: token.secret, with: token.description)
    }

    // MARK: Files into the cache

    private func fetch(_ remotes: [Remote], into snapshot: String, commit: String) throws(HubError) {
        let total = remotes.reduce(0) { $0 + $1.size }
        var before = 0
        for (i, remote) in remotes.enumerated() {
            let blob = storage + "/blobs/" + remote.etag
            let earlier = before
            try download(remote, to: blob) { done in
                progress?(HubProgress(reference: name, file: remote.file, fileIndex: i + 1, fileCount: remotes.count,
                                      bytesDone: done, bytesTotal: remote.size, allBytesDone: earlier + done, allBytesTotal: total))
            }
            try link(snapshot + "/" + remote.file, to: blob)
            before += remote.size
        }
    }

    /// Brings `blobs/<etag>` into being: resumes `blobs/<etag>.incomplete` with a Range request, retries
    /// a broken transfer, checks the size and renames. Another process downloading the same blob waits
    /// on a lock in `.locks/`, as with `huggingface_hub`.
    private func download(_ remote: Remote, to blob: String, report: @escaping (Int) -> Void) throws(HubError) {
        if let size = fileSize(blob), size == remote.size { return }
        try makeDirectory(storage + "/blobs")
        let lockFolder = cache + "/.locks/" + reference.cacheFolderName
        try makeDirectory(lockFolder)
        let lockFD = open(lockFolder + "/" + remote.etag + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockFD >= 0 else { throw .cache(path: lockFolder, reason: String(cString: strerror(errno))) }
        defer { close(lockFD) }
        _ = flock(lockFD, LOCK_EX)
        if let size = fileSize(blob), size == remote.size { return }  // another process finished it

        let partial = blob + ".incomplete"
        let fd = open(partial, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .cache(path: partial, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var have = Int(lseek(fd, 0, SEEK_END))
        if have > remote.size { have = try truncate(fd, partial) }
        report(have)
        var lastFailure: HubError?
        var attempt = 0
        while have < remote.size || remote.size == 0 {
            attempt += 1
            let before = have
            do throws(HubError) {
                try transfer(remote, fd: fd, path: partial, have: &have, report: report)
                lastFailure = nil
                break
            } catch {
                lastFailure = error
                guard case .network = error else { throw error }
                // A broken transfer is retried while it still makes progress, and at most `attempts` times.
                if attempt >= attempts || (have == before && attempt > 1) { throw error }
            }
        }
        if let lastFailure { throw lastFailure }
        let actual = Int(lseek(fd, 0, SEEK_END))
        guard actual == remote.size else {
            _ = try truncate(fd, partial)
            throw .sizeMismatch(reference: name, file: remote.file, expected: remote.size, actual: actual)
        }
        guard fsync(fd) == 0, rename(partial, blob) == 0 else { throw .cache(path: blob, reason: String(cString: strerror(errno))) }
    }

    /// One GET of the rest of a blob, appended to `fd`; follows redirects (without the token to other hosts).
    private func transfer(_ remote: Remote, fd: Int32, path: String, have: inout Int, report: @escaping (Int) -> Void) throws(HubError) {
        var target = remote.location
        for _ in 0..<6 {
            var headers = headers(for: target)
            if have > 0 { headers["Range"] = "bytes=\(have)-" }
            let offset = have
            let written = Counter(offset)
            let result = http.send("GET", target, headers: headers, start: { (r: HubHTTP.Response) throws(HubError) in
                guard (200..<300).contains(r.status) else { return }
                // A server that ignores the Range sends the whole file: start the blob again.
                if r.status == 200 && offset > 0 {
                    _ = try self.truncate(fd, path)
                    written.value = 0
                }
            }, sink: { (bytes: UnsafeRawBufferPointer) throws(HubError) in
                guard written.value + bytes.count <= remote.size else {
                    throw .sizeMismatch(reference: self.name, file: remote.file, expected: remote.size, actual: written.value + bytes.count)
                }
                var done = 0
                while done < bytes.count {
                    let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
                    guard n > 0 else { throw .cache(path: path, reason: String(cString: strerror(errno))) }
                    done += n
                }
                written.value += bytes.count
                report(written.value)
            })
            have = written.value
            switch result {
            case let .failure(.sink(e)): throw e
            case let .failure(.network(reason)): throw .network(reference: name, url: target.absoluteString, reason: redact(reason))
            case let .success(r):
                if (300..<400).contains(r.status), let location = r[header: "Location"], let next = URL(string: location, relativeTo: target)?.absoluteURL {
                    target = next
                    continue
                }
                if r.status == 416 && have == remote.size { return }
                guard (200..<300).contains(r.status) else { throw httpError(r, target) }
                return
            }
        }
        throw .badResponse(reference: name, url: target.absoluteString, reason: "too many redirects")
    }

    private final class Counter: @unchecked Sendable {
        var value: Int
        init(_ value: Int) { self.value = value }
    }

    private func truncate(_ fd: Int32, _ path: String) throws(HubError) -> Int {
        guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else { throw .cache(path: path, reason: String(cString: strerror(errno))) }
        return 0
    }

    /// `snapshots/<commit>/<file>` → `../../blobs/<etag>` (relative, so the cache can move), made under a
    /// temporary name and renamed into place.
    private func link(_ pointer: String, to blob: String) throws(HubError) {
        let folder = (pointer as NSString).deletingLastPathComponent
        try makeDirectory(folder)
        let depth = pointer.dropFirst(storage.count + 1).split(separator: "/").count - 1
        let target = String(repeating: "../", count: depth) + "blobs/" + (blob as NSString).lastPathComponent
        let temporary = pointer + ".link-\(getpid())"
        unlink(temporary)
        guard symlink(target, temporary) == 0, rename(temporary, pointer) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw .cache(path: pointer, reason: reason)
        }
    }

    private func writeRef(_ commit: String) throws(HubError) {
        let path = storage + "/refs/" + reference.revision
        if (try? String(contentsOfFile: path, encoding: .utf8)) == commit { return }
        try makeDirectory((path as NSString).deletingLastPathComponent)
        do { try writeFileAtomically(commit, to: path) } catch { throw .cache(path: path, reason: error.description) }
    }

    private func makeDirectory(_ path: String) throws(HubError) {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw .cache(path: path, reason: error.localizedDescription)
        }
    }

    private func fileSize(_ path: String) -> Int? {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : nil
    }
}
