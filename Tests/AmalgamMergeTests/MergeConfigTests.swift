import AmalgamMerge
import AmalgamTestSupport
import Foundation
import Testing

/// What users see when a config is wrong: the key, and what is accepted.
@Suite struct MergeConfigTests {
    func error(_ yaml: String) -> String {
        do {
            _ = try MergeConfig(yaml: yaml, path: "cfg.yml")
            return ""
        } catch {
            return error.description
        }
    }

    @Test func unknownTopLevelKeyListsAcceptedKeys() {
        let e = error("merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1}\nbase_modle: x\n")
        #expect(e.contains("base_modle") && e.contains("accepted here") && e.contains("base_model"))
    }

    @Test func unknownMethodListsMethods() {
        let e = error("merge_method: tie\nmodels:\n  - model: a\n")
        #expect(e.contains("'tie'") && e.contains("ties") && e.contains("dare_linear"))
    }

    @Test func undeclaredParameterIsAWarningNamingMethodAndItsParameters() throws {
        // mergekit 0.1.5 ignores it silently (fixtures/merge-leniency); we ignore it too, and say so.
        let config = try MergeConfig(yaml: "merge_method: ties\nbase_model: b\nmodels:\n  - model: a\n    parameters: {weight: 1, densty: 0.5}\n", path: "cfg.yml")
        #expect(config.warnings.count == 1)
        let w = config.warnings.first ?? ""
        #expect(w.contains("densty") && w.contains("density") && w.contains("models[0].parameters") && w.contains("ignored"))
    }

    @Test func badValues() {
        #expect(error("merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: heavy}\n").contains("weight"))
        #expect(error("merge_method: linear\ndtype: float8\nmodels:\n  - model: a\n").contains("bfloat16"))
        #expect(error("merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n        layer_range: [4, 2]\n").contains("layer_range"))
        // Found by FuzzMergeYAML in CI (2026-12-07): an end beyond Int.max trapped converting to Int.
        #expect(error("merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n        layer_range: [1, 36666666666666666666666666666]\n").contains("layer_range"))
        #expect(error("merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n        layer_range: [0, 2.5]\n").contains("whole numbers"))
        #expect(error("merge_method: linear\nmodels:\n  - model: a\nslices:\n  - sources:\n      - model: a\n        layer_range: [0, 2]\n").contains("not both"))
        #expect(error("merge_method: ties\nmodels:\n  - model: a\n    parameters: {weight: 1}\n").contains("base_model"))
        #expect(error("merge_method: linear\nmodels:\n  - model: a\n    parameters:\n      weight:\n        - filter: mlp\n          valu: 1\n").contains("valu"))
    }

    @Test func slicesOfDifferentLengthsAreRejected() {
        let e = error("""
            merge_method: slerp
            base_model: a
            parameters: {t: 0.5}
            slices:
              - sources:
                  - model: a
                    layer_range: [0, 4]
                  - model: b
                    layer_range: [0, 3]
            """)
        #expect(e.contains("same number of layers"))
    }

    /// The shapes of the configs in mergekit's examples folder: gradients, filter lists (also spelled
    /// `pattern`), empty `parameters:`, scientific notation as strings, slices, modules.
    @Test func mergekitExampleShapesParse() throws {
        let configs = [
            """
            slices:
              - sources:
                  - model: org/a-13b
                    layer_range: [0, 40]
                  - model: org/b-13b
                    layer_range: [0, 40]
            merge_method: slerp
            base_model: org/a-13b
            parameters:
              t:
                - filter: self_attn
                  value: [0, 0.5, 0.3, 0.7, 1]
                - pattern: mlp
                  value: [1, 0.5, 0.7, 0.3, 0]
                - value: 0.5 # fallback
            dtype: float16
            """,
            """
            models:
              - model: org/a
                parameters:
                  density: [1, 0.7, 0.1]
                  weight: 1.0
              - model: org/b
                parameters:
                  density: 0.33
                  weight:
                    - filter: mlp
                      value: 0.5
                    - value: 0
            merge_method: dare_ties
            base_model: org/base
            parameters:
              normalize: true
              int8_mask: true
              lambda: 1e-0
            dtype: bfloat16
            """,
            """
            models:
              - model: org/a
              - model: org/b
            merge_method: linear
            parameters:
            dtype: float16
            """,
            """
            modules:
              text_decoder:
                models:
                  - model: org/a
                    parameters: {weight: 0.5}
                  - model: org/b
                    parameters: {weight: 0.5}
            merge_method: linear
            dtype: bfloat16
            """,
            """
            slices:
              - sources:
                - model: org/a
                  layer_range: [0, 24]
              - sources:
                - model: org/b
                  layer_range: [20, 40]
            merge_method: passthrough
            dtype: float16
            """,
        ]
        let parsed = try configs.map { try MergeConfig(yaml: $0) }
        func close(_ value: ParameterValue?, _ expected: Double) -> Bool { abs((value?.doubleValue ?? .nan) - expected) <= 1e-12 }
        let attention = "model.layers.7.self_attn.q_proj.weight", mlp = "model.layers.7.mlp.up_proj.weight", norm = "model.norm.weight"

        // A gradient under `filter:`, one under `pattern:` (mergekit's other spelling), and a fallback.
        let slerp = parsed[0]
        #expect(slerp.mergeMethod == "slerp" && slerp.baseModel == "org/a-13b" && slerp.dtype == .f16)
        #expect(slerp.slices?.count == 1 && slerp.slices?[0].sources.map(\.model) == ["org/a-13b", "org/b-13b"])
        #expect(slerp.slices?[0].sources.map(\.layerRange) == [0..<40, 0..<40])
        let t = try #require(slerp.parameters?["t"])
        guard case let .conditional(entries) = t else { Issue.record("t: \(t)"); return }
        #expect(entries.map(\.filter) == ["self_attn", "mlp", nil], "`pattern: mlp` is read as the filter mlp")
        #expect(close(t.resolve(tensorName: attention, t: 0.75, kind: .number), 0.7))
        #expect(close(t.resolve(tensorName: mlp, t: 0.75, kind: .number), 0.3))
        #expect(close(t.resolve(tensorName: mlp, t: 0.125, kind: .number), 0.75))  // between 1 and 0.5
        #expect(close(t.resolve(tensorName: norm, t: 0.75, kind: .number), 0.5))

        // Per-model gradients and filters, booleans, and `1e-0` read as the number 1.
        let dare = parsed[1]
        #expect(dare.mergeMethod == "dare_ties" && dare.baseModel == "org/base" && dare.dtype == .bf16)
        #expect(dare.models?.map(\.model) == ["org/a", "org/b"])
        let density = try #require(dare.models?[0].parameters?["density"])
        #expect(close(density.resolve(tensorName: mlp, t: 0.25, kind: .number), 0.85))
        #expect(dare.models?[1].parameters?["density"]?.resolve(tensorName: mlp, t: 0.9, kind: .number) == .number(0.33))
        let weight = try #require(dare.models?[1].parameters?["weight"])
        #expect(close(weight.resolve(tensorName: mlp, t: 0, kind: .number), 0.5))
        #expect(close(weight.resolve(tensorName: attention, t: 0, kind: .number), 0))
        #expect(dare.parameters?["normalize"]?.resolve(tensorName: mlp, t: 0, kind: .bool) == .bool(true))
        #expect(dare.parameters?["int8_mask"]?.resolve(tensorName: mlp, t: 0, kind: .bool) == .bool(true))
        #expect(dare.parameters?["lambda"]?.resolve(tensorName: mlp, t: 0, kind: .number) == .number(1))

        // An empty `parameters:` is no parameters.
        #expect(parsed[2].mergeMethod == "linear" && parsed[2].models?.count == 2 && parsed[2].dtype == .f16)
        #expect(parsed[2].parameters?.isEmpty ?? true)

        // `modules:` with its one text module reads as `models`.
        #expect(parsed[3].mergeMethod == "linear" && parsed[3].dtype == .bf16 && parsed[3].models?.map(\.model) == ["org/a", "org/b"])
        #expect(parsed[3].models?.map { $0.parameters?["weight"]?.resolve(tensorName: mlp, t: 0, kind: .number) } == [.number(0.5), .number(0.5)])

        // Slices stacked by passthrough.
        #expect(parsed[4].mergeMethod == "passthrough" && parsed[4].slices?.count == 2)
        #expect(parsed[4].slices?.map { $0.sources.map(\.model) } == [["org/a"], ["org/b"]])
        #expect(parsed[4].slices?.map { $0.sources.map(\.layerRange) } == [[0..<24], [20..<40]])
    }

    @Test func gradientsAndFiltersResolveAsMergekit() throws {
        let setting = ParameterSetting.conditional([
            .init(filter: "self_attn", value: .list([.number(0), .number(0.5), .number(1)])),
            .init(filter: nil, value: .scalar(.number(0.25))),
        ])
        #expect(setting.resolve(tensorName: "model.layers.3.self_attn.q_proj.weight", t: 0.25, kind: .number) == (ParameterValue.number(0.25)))
        #expect(setting.resolve(tensorName: "model.layers.3.self_attn.q_proj.weight", t: 0.75, kind: .number) == (ParameterValue.number(0.75)))
        #expect(setting.resolve(tensorName: "model.layers.3.mlp.up_proj.weight", t: 0.75, kind: .number) == (ParameterValue.number(0.25)))
        // A non-numeric list is a step lookup.
        let steps = ParameterSetting.list([.bool(true), .bool(false)])
        #expect(steps.resolve(tensorName: "x", t: 0.9, kind: .bool) == (ParameterValue.bool(true)))
        #expect(steps.resolve(tensorName: "x", t: 1.0, kind: .bool) == (ParameterValue.bool(false)))
    }

    @Test func multiStageFileRunsStagesInOrder() throws {
        let dir = temporaryFolder("mega")
        let path = dir + "/mega.yml"
        try """
            name: first
            out_path: \(dir)/first
            models:
              - model: \(fixturesDirectory)/merge-pipeline/models/ft1
                parameters: {weight: 0.5}
              - model: \(fixturesDirectory)/merge-pipeline/models/ft2
                parameters: {weight: 0.5}
            merge_method: linear
            ---
            out_path: \(dir)/second
            models:
              - model: first
                parameters: {weight: 1.0}
              - model: \(fixturesDirectory)/merge-pipeline/models/base
                parameters: {weight: 1.0}
            merge_method: linear
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let stages = try MergeConfig.stages(contentsOf: path)
        #expect(stages.count == 2)
        #expect(stages[1].models?.first?.model == dir + "/first")
        for s in stages { try runMerge(s, into: s.outPath!) }
        #expect(FileManager.default.fileExists(atPath: dir + "/second/model.safetensors"))
    }
}
