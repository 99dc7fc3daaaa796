import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamTestSupport
import Foundation
import Testing

/// Keys mergekit does not use, checked against what the real mergekit 0.1.5 does with them
/// (`scripts/fixtures/check_mergekit_leniency.py` → fixtures/merge-leniency/cases.json).
@Suite struct MergeLeniencyTests {
    struct Case {
        let name: String
        let yaml: String
        /// The same config without the keys mergekit ignores.
        let plain: String
        let accepted: Bool
        let sameAsPlain: Bool?
    }

    static func cases() throws -> [Case] {
        let file = try MappedFile(path: fixturesDirectory + "/merge-leniency/cases.json")
        let json = try JSONValue.parse(file.bytes(offset: 0, count: file.count))
        return (json["cases"]?.arrayValue ?? []).map { c in
            Case(name: c["name"]!.stringValue!,
                 yaml: c["yaml"]!.stringValue!.replacingOccurrences(of: "fixtures/", with: fixturesDirectory + "/"),
                 plain: c["plain"]!.stringValue!.replacingOccurrences(of: "fixtures/", with: fixturesDirectory + "/"),
                 accepted: c["accepted"]?.boolValue ?? false, sameAsPlain: c["same_as_plain"]?.boolValue)
        }
    }

    @Test func fixtureCoversEvolveConfigsAndEveryScope() throws {
        let names = Set(try Self.cases().map(\.name))
        #expect(names.isSuperset(of: ["slerp_evolve", "linear_evolve", "undeclared_top_parameter", "undeclared_model_parameter",
                                      "undeclared_slice_parameter", "undeclared_source_parameter", "unknown_top_level_key"]))
    }

    /// A parameter the method does not declare: mergekit merges as if it were absent, without a word;
    /// we do the same and warn. mergekit-evolve writes `int8_mask`/`normalize` for slerp and linear.
    @Test(arguments: ["slerp_evolve", "linear_evolve", "undeclared_top_parameter", "undeclared_model_parameter",
                      "undeclared_slice_parameter", "undeclared_source_parameter"])
    func undeclaredParameterIsIgnoredWithAWarning(_ name: String) throws {
        let c = try #require(try Self.cases().first { $0.name == name })
        #expect(c.accepted, "mergekit 0.1.5 accepted it")
        #expect(c.sameAsPlain == true, "mergekit's output equals the one without the parameter")
        let config = try MergeConfig(yaml: c.yaml, path: name + ".yml")
        #expect(!config.warnings.isEmpty)
        #expect(config.warnings.allSatisfy { $0.contains("has no parameter") && $0.contains(config.mergeMethod) })
        #expect(c.plain != c.yaml)
        let plain = try MergeConfig(yaml: c.plain, path: name + "-plain.yml")
        #expect(plain.warnings.isEmpty, "\(plain.warnings)")
        let ours = try runMerge(config)
        let reference = try runMerge(plain)
        let a = try Data(contentsOf: URL(fileURLWithPath: ours + "/model.safetensors"))
        let b = try Data(contentsOf: URL(fileURLWithPath: reference + "/model.safetensors"))
        #expect(a == b, "ignoring the parameter must give the plain config's bytes")
    }

    /// An unknown structural key (not a parameter): mergekit's pydantic models ignore it silently; we
    /// keep it an error naming the key (a misspelt `merge_method` or `base_model` would otherwise change
    /// the merge without a word). A deliberate difference, listed in the README.
    @Test(arguments: ["unknown_top_level_key", "unknown_model_key", "unknown_slice_key", "unknown_source_key"])
    func unknownStructuralKeyStaysAnError(_ name: String) throws {
        let c = try #require(try Self.cases().first { $0.name == name })
        #expect(c.accepted, "the fixture records that mergekit 0.1.5 ignores it")
        do {
            _ = try MergeConfig(yaml: c.yaml, path: name + ".yml")
            Issue.record("\(name) was accepted")
        } catch {
            #expect(error.description.contains("unknown key") && error.description.contains("accepted here"))
        }
    }
}
