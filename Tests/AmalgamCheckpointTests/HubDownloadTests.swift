import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// A hub repository served by a loopback server with the hub's endpoints: the revision API, `resolve`
/// (small files answered directly with an ETag, large ones redirected to a second "CDN" server with
/// `X-Linked-Etag` and `X-Linked-Size`), Range requests on the CDN, and optional bearer-token checks.
final class FakeHub: @unchecked Sendable {
    let repository: String
    let commit: String
    var files: [String: [UInt8]]
    /// Files the listing names but that are not served (to test which ones are fetched).
    var listedOnly: [String] = []
    /// Served through the CDN redirect, as LFS files are.
    var large: Set<String> = []
    /// Requests to the hub must carry `Authorization: Bearer <token>`.
    var requiredToken: String?
    /// The CDN breaks off the first transfer of each large file after this many bytes.
    var cutFirstTransferAfter: Int?
    private var cut: Set<String> = []
    private let lock = NSLock()
    private(set) var hub: LoopbackHTTPServer!
    private(set) var cdn: LoopbackHTTPServer!

    init(repository: String, commit: String, files: [String: [UInt8]]) throws {
        self.repository = repository
        self.commit = commit
        self.files = files
        cdn = try LoopbackHTTPServer { [unowned self] in self.serveCDN($0) }
        hub = try LoopbackHTTPServer { [unowned self] in self.serveHub($0) }
    }

    func stop() {
        hub.stop()
        cdn.stop()
    }

    static func etag(_ name: String, _ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in Array(name.utf8) + bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(format: "%016llx", h) + String(repeating: "a", count: 24)
    }

    private func serveHub(_ r: LoopbackHTTPServer.Request) -> LoopbackHTTPServer.Reply {
        if let token = requiredToken, r.headers["authorization"] != "Bearer " + token {
            return .init(status: 401, headers: [("X-Error-Message", "Invalid credentials in Authorization header: \(r.headers["authorization"] ?? "none")")])
        }
        if r.path == "/api/models/\(repository)/revision/main" || r.path == "/api/models/\(repository)/revision/\(commit)" {
            let siblings = (files.keys + listedOnly).sorted().map { "{\"rfilename\": \"\($0)\"}" }.joined(separator: ", ")
            return .init(status: 200, headers: [("Content-Type", "application/json")],
                         body: Array("{\"id\": \"\(repository)\", \"sha\": \"\(commit)\", \"siblings\": [\(siblings)]}".utf8))
        }
        let prefix = "/\(repository)/resolve/\(commit)/"
        guard r.path.hasPrefix(prefix), let name = String(r.path.dropFirst(prefix.count)).removingPercentEncoding, let bytes = files[name] else {
            return .init(status: 404, headers: [("X-Error-Code", "EntryNotFound")], body: Array("{\"error\": \"Repository not found\"}".utf8))
        }
        let etag = Self.etag(name, bytes)
        if large.contains(name) {
            return .init(status: 302, headers: [("Location", cdn.url + "/blobs/" + etag), ("X-Linked-Etag", "\"\(etag)\""),
                                                ("X-Linked-Size", "\(bytes.count)"), ("X-Repo-Commit", commit)], contentLength: 0)
        }
        return .init(status: 200, headers: [("ETag", "W/\"\(etag)\""), ("X-Repo-Commit", commit)], body: bytes)
    }

    private func serveCDN(_ r: LoopbackHTTPServer.Request) -> LoopbackHTTPServer.Reply {
        guard let (name, bytes) = files.first(where: { "/blobs/" + Self.etag($0.key, $0.value) == r.path }) else { return .init(status: 404) }
        var start = 0
        if let range = r.headers["range"], range.hasPrefix("bytes="), range.hasSuffix("-"), let from = Int(range.dropFirst(6).dropLast()) {
            start = from
        }
        guard start <= bytes.count else { return .init(status: 416) }
        var reply = LoopbackHTTPServer.Reply(status: start > 0 ? 206 : 200, body: Array(bytes[start...]))
        if start > 0 { reply.headers = [("Content-Range", "bytes \(start)-\(bytes.count - 1)/\(bytes.count)")] }
        lock.lock()
        defer { lock.unlock() }
        if let n = cutFirstTransferAfter, !cut.contains(name) {
            cut.insert(name)
            reply.cutAfter = n
        }
        return reply
    }
}

/// Downloads into the cache from a hub on 127.0.0.1, laid out as `huggingface_hub` lays it out.
struct HubDownloadTests {
    let commit = "89abcdef0123456789abcdef0123456789abcdef"

    func environment(home: String, endpoint: String, _ extra: [String: String] = [:]) -> HubEnvironment {
        HubEnvironment(variables: ["HOME": home, "HF_HUB_CACHE": home + "/hub", "HF_ENDPOINT": endpoint].merging(extra) { $1 })
    }

    func tinyLlamaHub(_ repository: String = "org/tiny") throws -> FakeHub {
        var files = try folderContents(safetensorsFixtures + "/tiny-llama")
        files["tokenizer.json"] = Array("{\"version\": \"1.0\"}".utf8)
        files["pytorch_model.bin"] = [UInt8](repeating: 7, count: 1000)
        files["onnx/model.onnx"] = [1, 2, 3]
        files["README.md"] = Array("# tiny\n".utf8)
        let hub = try FakeHub(repository: repository, commit: commit, files: files)
        hub.large = ["model.safetensors", "pytorch_model.bin"]
        return hub
    }

    @Test func downloadsWhatAModelNeedsIntoTheCacheLayout() throws {
        let hub = try tinyLlamaHub()
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let env = environment(home: home, endpoint: hub.hub.url)
        let snapshot = try HubCache.resolve("org/tiny", environment: env)
        hub.stop()
        let storage = home + "/hub/models--org--tiny"
        #expect(snapshot == storage + "/snapshots/" + commit)
        #expect(try String(contentsOfFile: storage + "/refs/main", encoding: .utf8) == commit)
        let fm = FileManager.default
        #expect(Set(try fm.contentsOfDirectory(atPath: snapshot)) == ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"])
        for name in ["config.json", "model.safetensors"] {
            let etag = FakeHub.etag(name, hub.files[name]!)
            #expect(try fm.destinationOfSymbolicLink(atPath: snapshot + "/" + name) == "../../blobs/" + etag)
            #expect(try fileBytes(storage + "/blobs/" + etag) == hub.files[name]!)
        }
        #expect(try fm.contentsOfDirectory(atPath: storage + "/blobs").allSatisfy { !$0.hasSuffix(".incomplete") })
        // Never asked for: the pickled weights, the ONNX export, the README.
        let paths = hub.hub.requests.map(\.path)
        #expect(!paths.contains { $0.hasSuffix(".bin") || $0.contains("onnx") || $0.hasSuffix("README.md") }, "\(paths)")
        #expect(hub.cdn.requests.count == 1)
        // The snapshot opens as a model; a second resolution needs no network (both servers are down).
        #expect(try ModelFolder(path: snapshot).weights.tensorInfos.count == 21)
        #expect(try HubCache.resolve("org/tiny", environment: env) == snapshot)
    }

    @Test func aTransferBrokenOffHalfwayResumesWithARangeRequest() throws {
        let hub = try tinyLlamaHub()
        let size = hub.files["model.safetensors"]!.count
        hub.cutFirstTransferAfter = size / 2
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let progress = ProgressLog()
        let snapshot = try HubCache.resolve(HubReference("org/tiny")!, environment: environment(home: home, endpoint: hub.hub.url), progress: progress.record)
        hub.stop()
        let cdn = hub.cdn.requests
        #expect(cdn.count == 2)
        #expect(cdn[0].headers["range"] == nil)
        #expect(cdn[1].headers["range"] == "bytes=\(size / 2)-")
        #expect(try fileBytes(snapshot + "/model.safetensors") == hub.files["model.safetensors"]!)
        let last = progress.events.last!
        #expect(last.file == "model.safetensors" && last.bytesDone == size && last.allBytesDone == last.allBytesTotal)
        #expect(progress.events.map(\.fileIndex) == progress.events.map(\.fileIndex).sorted())
    }

    @Test func anIncompleteBlobLeftByAnEarlierRunIsContinued() throws {
        let hub = try tinyLlamaHub()
        let bytes = hub.files["model.safetensors"]!
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let blobs = home + "/hub/models--org--tiny/blobs"
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        let etag = FakeHub.etag("model.safetensors", bytes)
        try Data(bytes.prefix(1000)).write(to: URL(fileURLWithPath: blobs + "/" + etag + ".incomplete"))
        let snapshot = try HubCache.resolve("org/tiny", environment: environment(home: home, endpoint: hub.hub.url))
        hub.stop()
        #expect(hub.cdn.requests.map { $0.headers["range"] } == ["bytes=1000-"])
        #expect(try fileBytes(snapshot + "/model.safetensors") == bytes)
        #expect(!FileManager.default.fileExists(atPath: blobs + "/" + etag + ".incomplete"))
    }

    @Test func theTokenGoesToTheHubOnlyAndIsNeverInAMessage() throws {
        let hub = try tinyLlamaHub()
        hub.requiredToken = "hf_SeCrEt123"
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let snapshot = try HubCache.resolve("org/tiny", environment: environment(home: home, endpoint: hub.hub.url, ["HF_TOKEN": "hf_SeCrEt123"]))
        #expect(FileManager.default.fileExists(atPath: snapshot + "/model.safetensors"))
        #expect(hub.hub.requests.allSatisfy { $0.headers["authorization"] == "Bearer hf_SeCrEt123" })
        // The CDN is another host (here another port): it gets no token.
        #expect(!hub.cdn.requests.isEmpty && hub.cdn.requests.allSatisfy { $0.headers["authorization"] == nil })

        // A wrong token, which the server echoes in its message: refused, and not repeated to the user.
        let other = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: other) }
        do {
            _ = try HubCache.resolve("org/tiny", environment: environment(home: other, endpoint: hub.hub.url, ["HF_TOKEN": "hf_WrOnG456"]))
            Issue.record("expected a 401")
        } catch {
            guard case let .http(_, _, status, _) = error.cause else { Issue.record("\(error)"); return }
            #expect(status == 401)
            #expect(!error.description.contains("hf_WrOnG456") && error.description.contains("HF_TOKEN"), "\(error.description)")
        }
        // No token at all.
        do {
            _ = try HubCache.resolve("org/tiny", environment: environment(home: other, endpoint: hub.hub.url))
            Issue.record("expected a 401")
        } catch {
            #expect(error.description.contains("HTTP 401") && error.description.contains("private or gated"), "\(error.description)")
        }
        hub.stop()
    }

    @Test func anUnknownRepositoryIsAClear404() throws {
        let hub = try tinyLlamaHub()
        defer { hub.stop() }
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        do {
            _ = try HubCache.resolve("org/nothing", environment: environment(home: home, endpoint: hub.hub.url))
            Issue.record("expected a 404")
        } catch {
            guard case let .http(reference, url, status, message) = error.cause else { Issue.record("\(error)"); return }
            #expect(reference == "org/nothing" && status == 404 && message == "Repository not found")
            #expect(url == hub.hub.url + "/api/models/org/nothing/revision/main")
            #expect(error.description.contains("check the spelling"))
            // The message also names the cache folder searched before the download.
            #expect(error.description.contains(home + "/hub/models--org--nothing (no such folder)"), "\(error.description)")
        }
        #expect(!FileManager.default.fileExists(atPath: home + "/hub/models--org--nothing"))
    }

    @Test func aListingNamingAFileOutsideTheSnapshotIsRefused() throws {
        for evil in ["../evil.json", "/etc/evil.json", "a/../../evil.json"] {
            let hub = try tinyLlamaHub()
            hub.listedOnly = [evil]
            let home = temporaryFolder()
            defer { try? FileManager.default.removeItem(atPath: home) }
            do {
                _ = try HubCache.resolve("org/tiny", environment: environment(home: home, endpoint: hub.hub.url))
                Issue.record("expected a refusal")
            } catch {
                #expect(error.cause == .unsafeFileName(reference: "org/tiny", file: evil))
            }
            hub.stop()
            #expect(hub.hub.requests.count == 1, "only the listing was fetched")
            #expect(!FileManager.default.fileExists(atPath: home + "/hub/models--org--tiny/snapshots"))
        }
    }

    @Test func aRepositoryWithoutSafetensorsIsAClearError() throws {
        let hub = try FakeHub(repository: "org/old", commit: commit,
                              files: ["config.json": Array("{}".utf8), "pytorch_model.bin": [1, 2, 3], "tf_model.h5": [4]])
        defer { hub.stop() }
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        do {
            _ = try HubCache.resolve("org/old", environment: environment(home: home, endpoint: hub.hub.url))
            Issue.record("expected an error")
        } catch {
            #expect(error.cause == .noSafetensors(reference: "org/old", files: ["pytorch_model.bin", "tf_model.h5"]))
            #expect(error.description.contains("safe_serialization=True"))
        }
    }

    @Test func onlyTheShardsTheIndexListsAreFetched() throws {
        var files = try folderContents(safetensorsFixtures + "/tiny-llama-sharded")
        let shards = files.keys.filter { $0.hasPrefix("model-") }.sorted()
        files["consolidated.safetensors"] = [UInt8](repeating: 0, count: 5000)
        let hub = try FakeHub(repository: "org/sharded", commit: commit, files: files)
        hub.large = Set(shards + ["consolidated.safetensors"])
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let snapshot = try HubCache.resolve("org/sharded@\(commit)", environment: environment(home: home, endpoint: hub.hub.url))
        hub.stop()
        #expect(hub.cdn.requests.count == shards.count)
        #expect(!FileManager.default.fileExists(atPath: snapshot + "/consolidated.safetensors"))
        #expect(try ModelFolder(path: snapshot).weights.tensorInfos.count == 21)
        // A commit hash needs no refs/ file.
        #expect(!FileManager.default.fileExists(atPath: home + "/hub/models--org--sharded/refs"))
    }

    @Test func offlineNothingIsRequested() throws {
        let hub = try tinyLlamaHub()
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        #expect(throws: HubError.self) {
            try HubCache.resolve("org/tiny", environment: environment(home: home, endpoint: hub.hub.url, ["HF_HUB_OFFLINE": "1"]))
        }
        hub.stop()
        #expect(hub.hub.requests.isEmpty && hub.cdn.requests.isEmpty)
    }
}

/// Progress reports, kept in order.
final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [HubProgress] = []
    var events: [HubProgress] { lock.lock(); defer { lock.unlock() }; return list }
    func record(_ p: HubProgress) { lock.lock(); list.append(p); lock.unlock() }
}
