import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// A file name read from a file (a shard index's `weight_map`, the hub's file list or its shard index)
/// never reaches outside the folder it belongs to (issue #24 part 1). The hub's listing is covered by
/// `HubDownloadTests.aListingNamingAFileOutsideTheSnapshotIsRefused`, `..` in a local index by
/// `BadInputTests.shardNamesMustStayInTheFolder`.
struct PathEscapeTests {
    let fm = FileManager.default
    let commit = "89abcdef0123456789abcdef0123456789abcdef"

    @Test func aLocalShardIndexNamingAnAbsoluteOrClimbingPathIsRefused() throws {
        for evil in ["/etc/passwd", "sub/../../tiny-llama/model.safetensors", "..", "./../x.safetensors", ""] {
            let dir = temporaryFolder()
            try fm.removeItem(atPath: dir)
            try fm.copyItem(atPath: safetensorsFixtures + "/tiny-llama-sharded", toPath: dir)
            defer { try? fm.removeItem(atPath: dir) }
            let indexPath = dir + "/model.safetensors.index.json"
            var index = try JSONValue.parse(try fileBytes(indexPath)).objectValue!
            var map = index["weight_map"]!.objectValue!
            map["lm_head.weight"] = .string(evil)
            index["weight_map"] = .object(map)
            try writeFileAtomically(JSONValue.object(index).pythonText(), to: indexPath)
            #expect(throws: CheckpointError.invalidConfig(path: indexPath, key: "weight_map.lm_head.weight",
                                                          reason: "must be the name of a file in the folder"), "\(evil)") {
                _ = try ModelFolder(path: dir)
            }
        }
    }

    @Test func aHubShardIndexNamingAFileOutsideTheSnapshotIsRefused() throws {
        for evil in ["../evil.safetensors", "/tmp/evil.safetensors", "a/../../evil.safetensors"] {
            let index = "{\"metadata\": {}, \"weight_map\": {\"model.embed_tokens.weight\": \"\(evil)\"}}"
            let hub = try FakeHub(repository: "org/tiny", commit: commit,
                                  files: ["config.json": Array("{}".utf8), "model.safetensors.index.json": Array(index.utf8)])
            let home = temporaryFolder()
            defer { try? fm.removeItem(atPath: home) }
            let environment = HubEnvironment(variables: ["HOME": home, "HF_HUB_CACHE": home + "/hub", "HF_ENDPOINT": hub.hub.url])
            do {
                _ = try HubCache.resolve("org/tiny", environment: environment)
                Issue.record("expected a refusal of \(evil)")
            } catch {
                #expect(error.cause == .unsafeFileName(reference: "org/tiny", file: evil))
                #expect(error.description.contains("outside the snapshot folder"))
            }
            hub.stop()
            // Only the listing and the index were fetched; nothing was written beside the cache.
            #expect(!hub.hub.requests.contains { $0.path.contains("evil") })
            #expect(try fm.contentsOfDirectory(atPath: home) == ["hub"])
            #expect(!fm.fileExists(atPath: home + "/hub/models--org--tiny/evil.safetensors"))
        }
    }

    @Test func aCachedRefHoldingAPathInsteadOfACommitIsRefused() throws {
        let home = temporaryFolder()
        defer { try? fm.removeItem(atPath: home) }
        let cache = home + "/hub"
        // A complete model two levels up, which `refs/main` tries to point at.
        try makeCachedRepository(cache: cache, repository: "org/tiny", commit: commit, files: try folderContents(safetensorsFixtures + "/tiny-llama"))
        try "../../models--org--tiny/snapshots/\(commit)".write(toFile: cache + "/models--org--tiny/refs/main", atomically: true, encoding: .utf8)
        let environment = HubEnvironment(variables: ["HOME": home, "HF_HUB_CACHE": cache, "HF_HUB_OFFLINE": "1"])
        do {
            let folder = try HubCache.resolve("org/tiny", environment: environment)
            Issue.record("resolved to \(folder)")
        } catch {
            #expect(error.description.contains("refs/main holds '../../models--org--tiny/snapshots/"), "\(error.description)")
            #expect(error.description.contains("not a commit hash"), "\(error.description)")
        }
    }
}
