import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamTestSupport
import Foundation
import Testing

/// A mergekit config naming Hugging Face models (`org/name`, `org/name@tag`, `{path:, revision:}`)
/// merges from the Hugging Face cache, offline, with mergekit's numbers.
@Suite(.serialized) struct HubMergeTests {
    @Test func aConfigNamingHubModelsMergesFromTheCache() throws {
        let cache = temporaryFolder("hubmerge")
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let commit = "0123456789abcdef0123456789abcdef01234567"
        let tag = "fedcba9876543210fedcba9876543210fedcba98"
        for (name, c, refs) in [("ft1", commit, ["main"]), ("ft2", tag, ["v1"]), ("ft3", commit, [String]())] {
            try makeCachedRepository(cache: cache, repository: "test-org/\(name)-f32", commit: c,
                                     files: folderContents(fixturesDirectory + "/merge/models/\(name)-f32"), refs: refs)
        }
        // fixtures/merge/configs/linear.yml with hub names in place of the folders.
        let yaml = """
            merge_method: linear
            models:
            - model: test-org/ft1-f32
              parameters: {weight: 0.5}
            - model: test-org/ft2-f32@v1
              parameters: {weight: 0.3}
            - model: {model: {path: test-org/ft3-f32, revision: \(commit)}}
              parameters: {weight: 0.2}
            dtype: float32
            """
        let saved = ["HF_HUB_CACHE", "HF_HUB_OFFLINE"].map { ($0, ProcessInfo.processInfo.environment[$0]) }
        setenv("HF_HUB_CACHE", cache, 1)
        setenv("HF_HUB_OFFLINE", "1", 1)
        defer { for (name, value) in saved { if let value { setenv(name, value, 1) } else { unsetenv(name) } } }

        let config = try MergeConfig(yaml: yaml, path: cache + "/linear.yml")
        #expect(config.referencedModels == ["test-org/ft1-f32", "test-org/ft2-f32@v1", "test-org/ft3-f32@\(commit)"])
        let plan = try MergePlan(config: config)
        #expect(plan.models.map(\.path) == [
            cache + "/models--test-org--ft1-f32/snapshots/" + commit,
            cache + "/models--test-org--ft2-f32/snapshots/" + tag,
            cache + "/models--test-org--ft3-f32/snapshots/" + commit,
        ])
        let out = try runMerge(config)
        try expectSameTensors(out, fixturesDirectory + "/merge/expected/linear")

        // Not in the cache: the error names the cache folder searched.
        let missing = try MergeConfig(yaml: yaml.replacingOccurrences(of: "test-org/ft1-f32", with: "test-org/absent"), path: cache + "/m.yml")
        do {
            _ = try MergePlan(config: missing)
            Issue.record("expected an error")
        } catch {
            let message = String(describing: error)
            #expect(message.contains(cache + "/models--test-org--absent (no such folder)"), "\(message)")
        }
    }

    @Test func aHubModelWithAHubAdapterMergesFromTheCache() throws {
        let cache = temporaryFolder("hublora")
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let commit = "0123456789abcdef0123456789abcdef01234567"
        try makeCachedRepository(cache: cache, repository: "test-org/base-f32", commit: commit,
                                 files: folderContents(fixturesDirectory + "/merge/models/base-f32"))
        try makeCachedRepository(cache: cache, repository: "test-org/adapter", commit: commit,
                                 files: folderContents(fixturesDirectory + "/lora/adapters/save"))
        let saved = ["HF_HUB_CACHE", "HF_HUB_OFFLINE"].map { ($0, ProcessInfo.processInfo.environment[$0]) }
        setenv("HF_HUB_CACHE", cache, 1)
        setenv("HF_HUB_OFFLINE", "1", 1)
        defer { for (name, value) in saved { if let value { setenv(name, value, 1) } else { unsetenv(name) } } }
        let config = try MergeConfig(yaml: "merge_method: passthrough\ndtype: float32\nmodels:\n- model: test-org/base-f32+test-org/adapter\n",
                                     path: cache + "/lora.yml")
        try expectSameTensors(try runMerge(config), fixturesDirectory + "/lora/expected/passthrough-save")
    }
}
