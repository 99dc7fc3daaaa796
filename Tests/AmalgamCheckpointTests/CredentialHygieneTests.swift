import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// Credentials (`HF_TOKEN`, a password written into a URL) are never shown in a message or a progress
/// report, nor written into the cache (issue #24 part 1).
struct CredentialHygieneTests {
    let commit = "89abcdef0123456789abcdef0123456789abcdef"

    func environment(home: String, endpoint: String, _ extra: [String: String] = [:]) -> HubEnvironment {
        HubEnvironment(variables: ["HOME": home, "HF_HUB_CACHE": home + "/hub", "HF_ENDPOINT": endpoint].merging(extra) { $1 })
    }

    /// Every regular file under `folder` (symlinks not followed) whose bytes contain `secret`.
    func filesContaining(_ secret: String, under folder: String) throws -> [String] {
        let fm = FileManager.default
        var found: [String] = []
        var all: [String] = []
        for case let relative as String in fm.enumerator(atPath: folder)! {
            let path = folder + "/" + relative
            let kind = try fm.attributesOfItem(atPath: path)[.type] as? FileAttributeType
            guard kind == .typeRegular else { continue }
            all.append(path)
            let bytes = try fileBytes(path)
            if String(decoding: bytes, as: UTF8.self).contains(secret) { found.append(path) }
        }
        #expect(all.count >= 3, "the download wrote files to look into")
        return found
    }

    @Test func aDownloadWithHFTokenWritesTheTokenNowhereAndReportsItNowhere() throws {
        var files = try folderContents(safetensorsFixtures + "/tiny-llama")
        files["tokenizer.json"] = Array("{\"version\": \"1.0\"}".utf8)
        let hub = try FakeHub(repository: "org/tiny", commit: commit, files: files)
        hub.large = ["model.safetensors"]
        hub.requiredToken = "hf_SeCrEt123"
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        final class Reports: @unchecked Sendable { let lock = Lock(); var lines: [String] = [] }
        let reports = Reports()
        let snapshot = try HubCache.resolve("org/tiny", environment: environment(home: home, endpoint: hub.hub.url, ["HF_TOKEN": "hf_SeCrEt123"]),
                                            progress: { p in reports.lock.withLock { reports.lines.append("\(p) \(p.reference) \(p.file)") } })
        hub.stop()
        #expect(FileManager.default.fileExists(atPath: snapshot + "/model.safetensors"))
        #expect(hub.hub.requests.allSatisfy { $0.headers["authorization"] == "Bearer hf_SeCrEt123" }, "the token was used")
        #expect(try filesContaining("hf_SeCrEt123", under: home) == [])
        let shown = reports.lock.withLock { reports.lines }
        #expect(!shown.isEmpty && !shown.contains { $0.contains("hf_SeCrEt123") })
        // The environment itself never shows it either.
        let env = environment(home: home, endpoint: hub.hub.url, ["HF_TOKEN": "hf_SeCrEt123"])
        #expect(!"\(env)".contains("hf_SeCrEt123") && !"\(String(describing: env.token))".contains("hf_SeCrEt123"))
    }

    @Test func aPasswordInHFEndpointIsNotShownInErrors() throws {
        let hub = try FakeHub(repository: "org/tiny", commit: commit, files: ["config.json": Array("{}".utf8)])
        defer { hub.stop() }
        let home = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let endpoint = hub.hub.url.replacingOccurrences(of: "http://", with: "http://alice:pa55w0rd@")
        do {
            _ = try HubCache.resolve("org/nothing", environment: environment(home: home, endpoint: endpoint))
            Issue.record("expected an error for a repository the hub does not have")
        } catch {
            #expect(!error.description.contains("pa55w0rd") && !error.description.contains("alice"), "\(error.description)")
            #expect(error.description.contains("http://***@127.0.0.1"), "\(error.description)")
        }
    }

    @Test func credentialsInAnyURLOfAMessageAreRedacted() {
        #expect(HubError.withoutURLCredentials("get https://u:p@host.example/a?x=y@z failed") == "get https://***@host.example/a?x=y@z failed")
        #expect(HubError.withoutURLCredentials("(http://tok@h:1/x) and 'https://a:b@c'") == "(http://***@h:1/x) and 'https://***@c'")
        #expect(HubError.withoutURLCredentials("no credentials: https://host/a@b, mail@host") == "no credentials: https://host/a@b, mail@host")
        let error = HubError.network(reference: "org/x", url: "https://bob:hunter2@hub.example/api/models/org/x", reason: "refused by https://bob:hunter2@hub.example")
        #expect(!error.description.contains("hunter2") && !error.description.contains("bob"), "\(error.description)")
    }
}
