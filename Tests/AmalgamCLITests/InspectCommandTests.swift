import AmalgamCheckpoint
import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// `amalgam inspect` as a user runs it, on folders and files the reference libraries wrote.
@Suite(.requires(amalgamProgram))
struct InspectCommandTests {
    @Test func inspectJSONOfAShardedFolderGivesItsArchitectureSizesAndEveryTensor() throws {
        let folder = safetensorsFixtures + "/tiny-llama-sharded"
        let run = try runAmalgam(["inspect", folder, "--json"])
        #expect(run.status == 0, "\(run.err)")
        let report = try JSONValue.parse(run.out)
        #expect(report["format"]?.stringValue == "folder")
        #expect(report["architecture"]?.stringValue == "LlamaForCausalLM")
        #expect(report["layers"]?.intValue == 2)
        #expect(report["parameters"]?.intValue == referenceValues["tiny-llama"]!["num_parameters"]!.intValue!)
        #expect(report["total_bytes"]?.intValue == 53568)
        let single = try SafetensorsFile(path: safetensorsFixtures + "/tiny-llama/model.safetensors")
        let tensors = report["tensors"]!.arrayValue!
        #expect(Set(tensors.map { $0["name"]!.stringValue! }) == Set(single.tensorNames))
        for t in tensors {
            let info = single.info(t["name"]!.stringValue!)!
            #expect(t["dtype"]?.stringValue == info.dtype.rawValue && t["shape"]!.arrayValue!.map { $0.intValue! } == info.shape)
        }
    }

    @Test func inspectOfAFilePrintsItsFormatParametersMetadataAndTensors() throws {
        let run = try runAmalgam(["inspect", safetensorsFixtures + "/all_dtypes.safetensors"])
        #expect(run.status == 0, "\(run.err)")
        #expect(run.out.contains("format:       safetensors"))
        #expect(run.out.contains("parameters:   137 (137)"))
        #expect(run.out.contains("metadata.format: pt"))
        for name in try SafetensorsFile(path: safetensorsFixtures + "/all_dtypes.safetensors").tensorNames {
            #expect(run.out.contains("    \(name) "), "\(name)")
        }
        let summary = try runAmalgam(["inspect", safetensorsFixtures + "/numpy_meta.safetensors", "--summary"])
        #expect(!summary.out.contains("tensors ("))
        #expect(summary.out.split(separator: "\n").count == 6)  // the metadata note's line break stays escaped
    }

    @Test func inspectOfADamagedFileFailsNamingItAndPrintsNothing() throws {
        let path = safetensorsFixtures + "/values.json"
        let run = try runAmalgam(["inspect", path])
        #expect(run.status != 0)
        #expect(run.err.contains(path))
        #expect(run.out.isEmpty)
    }
}
