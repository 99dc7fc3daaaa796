import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

let commitA = "0123456789abcdef0123456789abcdef01234567"
let commitB = "fedcba9876543210fedcba9876543210fedcba98"

/// `org/name[@revision]` found in a Hugging Face cache on disk, without any network.
struct HubCacheTests {
    /// An environment whose every default folder is inside `home` (no real cache, no real token).
    func environment(home: String, _ extra: [String: String] = [:]) -> HubEnvironment {
        HubEnvironment(variables: ["HOME": home, "HF_HUB_OFFLINE": "1"].merging(extra) { $1 })
    }

    @Test func parsesReferencesAndRefusesPaths() {
        #expect(HubReference("mistralai/Mistral-7B-v0.1") == HubReference("mistralai/Mistral-7B-v0.1@main"))
        #expect(HubReference("mistralai/Mistral-7B-v0.1")?.revision == "main")
        #expect(HubReference("org/name@v1.0")?.revision == "v1.0")
        #expect(HubReference("org/name@refs/pr/1")?.revision == "refs/pr/1")
        #expect(HubReference("org/name@\(commitA)")?.isCommitHash == true)
        #expect(HubReference("org/name")?.cacheFolderName == "models--org--name")
        for notAReference in ["name", "./org/name", "/abs/path", "a/b/c", "org/", "/name", "org/name@", "org/na--me", "org/../x",
                              "org/.hidden", "org/name@a@b", "data/model.gguf.", "org/na me", "data/model.gguf", "configs/merge.yml"] {
            #expect(HubReference(notAReference) == nil, "\(notAReference)")
        }
    }

    @Test func cacheFolderFollowsHuggingFaceHubPrecedence() {
        let all = HubEnvironment(variables: ["HOME": "/h", "HF_HUB_CACHE": "/c1", "HUGGINGFACE_HUB_CACHE": "/c2", "HF_HOME": "/hf", "XDG_CACHE_HOME": "/x"])
        #expect(all.caches == ["/c1", "/c2", "/hf/hub", "/x/huggingface/hub", "/h/.cache/huggingface/hub"])
        #expect(HubEnvironment(variables: ["HOME": "/h", "HF_HOME": "/hf"]).caches == ["/hf/hub", "/h/.cache/huggingface/hub"])
        #expect(HubEnvironment(variables: ["HOME": "/h", "XDG_CACHE_HOME": "/x"]).caches == ["/x/huggingface/hub", "/h/.cache/huggingface/hub"])
        #expect(HubEnvironment(variables: ["HOME": "/h"]).caches == ["/h/.cache/huggingface/hub"])
        #expect(HubEnvironment(variables: ["HOME": "/h", "HF_HOME": "~/hf", "HF_HUB_CACHE": "${HOME}/c"]).caches.prefix(2) == ["/h/c", "/h/hf/hub"])
        #expect(HubEnvironment(variables: ["HOME": "/h"]).endpoint == "https://huggingface.co")
        #expect(HubEnvironment(variables: ["HOME": "/h", "HF_ENDPOINT": "http://127.0.0.1:9/"]).endpoint == "http://127.0.0.1:9")
        for (value, offline) in [("1", true), ("true", true), ("YES", true), ("on", true), ("0", false), ("", false), ("no", false)] {
            #expect(HubEnvironment(variables: ["HOME": "/h", "HF_HUB_OFFLINE": value]).offline == offline, "HF_HUB_OFFLINE=\(value)")
        }
        #expect(HubEnvironment(variables: ["HOME": "/h", "TRANSFORMERS_OFFLINE": "1"]).offline)
    }

    @Test func tokenComesFromTheEnvironmentOrTheLoginFileAndIsNeverShown() throws {
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        #expect(HubEnvironment(variables: ["HOME": home]).token == nil)
        try FileManager.default.createDirectory(atPath: home + "/.cache/huggingface", withIntermediateDirectories: true)
        try "hf_fromfile\n".write(toFile: home + "/.cache/huggingface/token", atomically: true, encoding: .utf8)
        let fromFile = HubEnvironment(variables: ["HOME": home]).token
        #expect(fromFile == HubToken("hf_fromfile"))
        let fromEnv = HubEnvironment(variables: ["HOME": home, "HF_TOKEN": "hf_fromenv", "HUGGING_FACE_HUB_TOKEN": "hf_legacy"]).token
        #expect(fromEnv == HubToken("hf_fromenv"))
        #expect(HubEnvironment(variables: ["HOME": home, "HUGGING_FACE_HUB_TOKEN": "hf_legacy"]).token == HubToken("hf_legacy"))
        let shown = "\(fromEnv!) \(String(describing: fromEnv)) \(String(reflecting: fromEnv!)) \(HubEnvironment(variables: ["HOME": home, "HF_TOKEN": "hf_fromenv"]))"
        #expect(!shown.contains("hf_fromenv"), "\(shown)")
    }

    @Test func resolvesMainATagACommitAndAShortCommitThroughSymlinkedBlobs() throws {
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let cache = home + "/.cache/huggingface/hub"
        let files = try folderContents(safetensorsFixtures + "/tiny-llama")
        let snapshotA = try makeCachedRepository(cache: cache, repository: "org/tiny", commit: commitA, files: files, refs: ["main", "v1"])
        let snapshotB = try makeCachedRepository(cache: cache, repository: "org/tiny", commit: commitB, files: files, refs: ["refs/pr/2"])
        let env = environment(home: home)
        #expect(try HubCache.resolve("org/tiny", environment: env) == snapshotA)
        #expect(try HubCache.resolve("org/tiny@v1", environment: env) == snapshotA)
        #expect(try HubCache.resolve("org/tiny@refs/pr/2", environment: env) == snapshotB)
        #expect(try HubCache.resolve("org/tiny@\(commitB)", environment: env) == snapshotB)
        #expect(try HubCache.resolve("org/tiny@fedcba9", environment: env) == snapshotB)
        // The snapshot opens as a model folder: its files are symlinks into blobs/.
        let attributes = try FileManager.default.attributesOfItem(atPath: snapshotA + "/model.safetensors")
        #expect(attributes[FileAttributeKey.type] as? FileAttributeType == FileAttributeType.typeSymbolicLink)
        let model = try ModelFolder(path: try HubCache.resolve("org/tiny", environment: env))
        #expect(model.weights.tensorInfos.count == 21)
    }

    @Test func hfHubCacheComesFirstAndTheOtherCachesAreStillSearched() throws {
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let files = try folderContents(safetensorsFixtures + "/tiny-llama")
        let inHubCache = try makeCachedRepository(cache: home + "/hubcache", repository: "org/both", commit: commitA, files: files)
        let inHFHome = try makeCachedRepository(cache: home + "/hfhome/hub", repository: "org/both", commit: commitB, files: files)
        try makeCachedRepository(cache: home + "/hfhome/hub", repository: "org/only-home", commit: commitB, files: files)
        let env = environment(home: home, ["HF_HUB_CACHE": home + "/hubcache", "HF_HOME": home + "/hfhome"])
        #expect(try HubCache.resolve("org/both", environment: env) == inHubCache)
        #expect(try HubCache.resolve("org/only-home", environment: env) == home + "/hfhome/hub/models--org--only-home/snapshots/" + commitB)
        #expect(try HubCache.resolve("org/both", environment: environment(home: home, ["HF_HOME": home + "/hfhome"])) == inHFHome)
    }

    @Test func aMissingModelNamesEveryCacheSearchedAndWhatWasThere() throws {
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        var files = try folderContents(safetensorsFixtures + "/tiny-llama")
        try makeCachedRepository(cache: home + "/hfhome/hub", repository: "org/model", commit: commitA, files: files, refs: ["v1"])
        files["model.safetensors"] = nil
        try makeCachedRepository(cache: home + "/hfhome/hub", repository: "org/config-only", commit: commitA, files: files)
        let env = environment(home: home, ["HF_HUB_CACHE": home + "/hubcache", "HF_HOME": home + "/hfhome"])
        do {
            _ = try HubCache.resolve("org/model", environment: env)
            Issue.record("expected an error")
        } catch {
            guard case let .notCached(reference, searched, offline) = error else { Issue.record("\(error)"); return }
            #expect(reference == "org/model" && offline)
            #expect(searched.map(\.folder) == [home + "/hubcache/models--org--model", home + "/hfhome/hub/models--org--model",
                                               home + "/.cache/huggingface/hub/models--org--model"])
            #expect(searched[0].finding == "no such folder")
            #expect(searched[1].finding == "no refs/main; cached revisions: v1")
            for s in searched { #expect(error.description.contains(s.folder)) }
            #expect(error.description.contains("HF_HUB_OFFLINE") && error.description.contains("amalgam download org/model"))
        }
        // A snapshot whose weights never arrived does not count; nor does a symlink whose blob is gone.
        #expect(throws: HubError.self) { try HubCache.resolve("org/config-only", environment: env) }
        let lookup = HubCache.find(HubReference("org/config-only")!, in: env.caches)
        #expect(lookup.snapshot == nil && lookup.searched[1].finding == "snapshots/\(commitA) lacks its weights (*.safetensors)")
        let blobs = home + "/hfhome/hub/models--org--model/blobs"
        for blob in try FileManager.default.contentsOfDirectory(atPath: blobs) { try FileManager.default.removeItem(atPath: blobs + "/" + blob) }
        let broken = HubCache.find(HubReference("org/model@v1")!, in: env.caches)
        #expect(broken.snapshot == nil && broken.searched[1].finding == "snapshots/\(commitA) lacks config.json")
    }

    @Test func aShardedSnapshotNeedsEveryShardItsIndexLists() throws {
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        var files = try folderContents(safetensorsFixtures + "/tiny-llama-sharded")
        let shard = files.keys.filter { $0.hasPrefix("model-") }.sorted().last!
        try makeCachedRepository(cache: home + "/hub", repository: "org/sharded", commit: commitA, files: files)
        files[shard] = nil
        try makeCachedRepository(cache: home + "/hub", repository: "org/half", commit: commitA, files: files)
        let env = environment(home: home, ["HF_HUB_CACHE": home + "/hub"])
        #expect(try ModelFolder(path: try HubCache.resolve("org/sharded", environment: env)).weights.tensorInfos.count == 21)
        #expect(HubCache.find(HubReference("org/half")!, in: env.caches).searched[0].finding == "snapshots/\(commitA) lacks \(shard)")
    }

    @Test func anExistingLocalFolderWinsOverTheHub() throws {
        // A folder `org/name` relative to the working directory is taken as it is, as mergekit does.
        let org = "amalgam-hubtest-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: org + "/model", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: org) }
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        try makeCachedRepository(cache: home + "/hub", repository: org + "/model", commit: commitA, files: try folderContents(safetensorsFixtures + "/tiny-llama"))
        #expect(try HubCache.resolve(org + "/model", environment: environment(home: home, ["HF_HUB_CACHE": home + "/hub"])) == org + "/model")
        // Not a reference and not on disk: returned unchanged for the caller's own message.
        #expect(try HubCache.resolve("./no/such/folder", environment: environment(home: home)) == "./no/such/folder")
    }

    @Test func aRevisionThatWouldLeaveRefsIsRefused() throws {
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        #expect(throws: HubError.unsafeRevision(reference: "org/name@../../x", revision: "../../x")) {
            try HubCache.resolve("org/name@../../x", environment: environment(home: home))
        }
    }
}
