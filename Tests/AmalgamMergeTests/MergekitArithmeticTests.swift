import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamTestSupport
import Foundation
import Testing

/// `--arithmetic mergekit`: the merge rounds where mergekit 0.1.5's torch arithmetic rounds, in its order
/// of operations, and must give the bytes mergekit-yaml wrote for the same config (fixtures/merge, made by
/// the real mergekit: scripts/fixtures/make_merge_fixtures.py). docs/mergekit-differences.md lists the
/// methods and why the others cannot.
@Suite struct MergekitArithmeticTests {
    /// Elements of `output` whose bits differ from mergekit's, ours rounded to the output dtype first.
    static func differing(_ output: Reference.Output, bf16: Bool) -> [Int] {
        output.ours.indices.filter { i in
            let ours = bf16 ? BFloat16.round(output.ours[i]) : output.ours[i]
            return ours.bitPattern != output.mergekit[i].bitPattern
        }
    }

    /// Whether mergekit wrote the case's tensors in bf16 (not ramplus_tl's: it returns f32 whatever the dtype).
    static func isBF16(_ name: String) -> Bool {
        guard let c = Reference.cases[name] else { return false }
        return c.dtype == "bf16" && MergeMethods.named(c.method)?.mergekitResultIsF32 != true
    }

    /// Every element of every tensor is mergekit's, bit for bit (signed zeros included).
    @Test(arguments: ["linear_bf16", "linear", "linear_filters", "task_arithmetic_bf16", "task_arithmetic_lambda_bf16",
                      "nearswap_bf16", "nearswap", "passthrough_bf16", "ram_bf16", "model_stock_bf16",
                      "model_stock_filter_wise_bf16", "slerp_bf16", "nuslerp_base_rows_bf16", "multislerp_base_bf16", "karcher_bf16",
                      "ramplus_tl_bf16", "linear_f16", "task_arithmetic_lambda_f16", "nearswap_f16", "ram_f16"])
    func givesMergekitsBytes(_ name: String) throws {
        let outputs = try Reference.outputs(name, arithmetic: .mergekit)
        #expect(!outputs.isEmpty)
        for output in outputs {
            let n = Self.differing(output, bf16: Self.isBF16(name)).count
            #expect(n == 0, "\(name) \(output.tensor): \(n) of \(output.mergekit.count) elements differ from mergekit's")
        }
    }

    /// The fixtures tell the arithmetics apart: our exact arithmetic, rounded once, does not give these
    /// bytes (so the test above could fail).
    @Test(arguments: ["linear_bf16", "task_arithmetic_bf16", "nearswap_bf16", "ram_bf16", "model_stock_bf16",
                      "nuslerp_base_rows_bf16", "multislerp_base_bf16", "karcher_bf16"])
    func exactArithmeticDoesNotGiveThem(_ name: String) throws {
        let outputs = try Reference.outputs(name, arithmetic: .exact)
        let n = outputs.reduce(0) { $0 + Self.differing($1, bf16: true).count }
        #expect(n > 0, "\(name): the exact arithmetic gives mergekit's bytes too")
    }

    /// Where an input's sparsifier cuts its task vector's magnitudes sorted ascending: TIES keeps the top
    /// `max(1, int(density·n))`, breadcrumbs ranks `[n_bot, n_bot + int(density·n))`.
    static func cuts(_ method: String, _ input: MergeInput, count n: Int) -> [Int] {
        let density = input.parameters.double("density") ?? 1
        guard density < 1 else { return [] }
        let target = Int(density * Double(n))
        if method.hasPrefix("breadcrumbs") {
            let gamma = input.parameters.double("gamma") ?? 0.01
            let bottom = max(0, n - target - Int(gamma * Double(n)))
            return [bottom, bottom + target]
        }
        return [n - max(1, target)]
    }

    /// TIES and breadcrumbs sort each task vector's magnitudes with torch's unstable sort (x86-simd-sort on
    /// x86, whose order among equal keys is its own and differs between its AVX2 and AVX-512 code): where
    /// equal magnitudes straddle a cut, which of them mergekit keeps is not reproducible. Everywhere else
    /// (no input has a magnitude tied across a cut there) the bytes are mergekit's.
    @Test(arguments: ["ties_bf16", "breadcrumbs_ties_bf16"])
    func givesMergekitsBytesAwayFromMagnitudeTiesAtTheCuts(_ name: String) throws {
        let c = try #require(Reference.cases[name])
        let outputs = try Reference.outputs(name, arithmetic: .mergekit)
        #expect(!outputs.isEmpty)
        var determined = 0, total = 0, differingAtTies = 0
        for output in outputs {
            let base = output.inputs[output.baseIndex!].values
            var tied = [Bool](repeating: false, count: base.count)
            for (j, input) in output.inputs.enumerated() where j != output.baseIndex {
                let magnitudes = zip(input.values, base).map { abs(BFloat16.round($0 - $1)) }
                let sorted = magnitudes.sorted()
                for cut in Self.cuts(c.method, input, count: sorted.count) where cut > 0 && cut < sorted.count {
                    guard sorted[cut - 1] == sorted[cut] else { continue }
                    for i in magnitudes.indices where magnitudes[i] == sorted[cut] { tied[i] = true }
                }
            }
            let differing = Self.differing(output, bf16: true)
            let away = differing.filter { !tied[$0] }
            #expect(away.isEmpty, "\(name) \(output.tensor): \(away.count) elements away from ties differ")
            differingAtTies += differing.count - away.count
            determined += tied.filter { !$0 }.count
            total += tied.count
        }
        // Enough elements are determined for the comparison to mean something (measured: ties 1,686 and
        // breadcrumbs_ties 834 of 6,224), and the ties change few.
        #expect(determined * 10 > total, "\(name): only \(determined) of \(total) elements determined")
        #expect(differingAtTies * 50 < total, "\(name): \(differingAtTies) of \(total) elements at ties differ")
    }

    /// SCE keeps the positions of the `int(nonzero·select_topk)` largest variances (bf16) with
    /// `torch.topk`, whose choice among equal values at the cut is its own; that choice also changes each
    /// model's weight (its masked mean square), so a tie moves values anywhere in its tensor. Tensors with
    /// no variance tied across the cut are mergekit's bytes; the others differ in few elements.
    @Test func sceGivesMergekitsBytesWhereNoVarianceTiesAtTheCut() throws {
        let name = "sce_topk_bf16"
        let c = try #require(Reference.cases[name])
        let topk = try #require(c.rules.first?.global["select_topk"]?.value.doubleValue)
        let outputs = try Reference.outputs(name, arithmetic: .mergekit)
        #expect(!outputs.isEmpty)
        var untied = 0, differingWithTies = 0, total = 0
        for output in outputs {
            let base = output.inputs[output.baseIndex!].values
            let vectors = output.inputs.indices.filter { $0 != output.baseIndex }.map { j in
                zip(output.inputs[j].values, base).map { BFloat16.round($0 - $1) }
            }
            let variances = base.indices.map { i -> Float in
                let mean = vectors.reduce(0.0) { $0 + Double($1[i]) } / Double(vectors.count)
                let v = vectors.reduce(0.0) { $0 + (Double($1[i]) - mean) * (Double($1[i]) - mean) } / Double(vectors.count)
                return BFloat16.round(Float(v))
            }
            let k = Int(Double(variances.filter { $0 != 0 }.count) * topk)
            let sorted = variances.sorted(by: >)
            let differing = Self.differing(output, bf16: true).count
            total += base.count
            if k > 0, k < sorted.count, sorted[k - 1] == sorted[k] {
                differingWithTies += differing
            } else {
                untied += 1
                #expect(differing == 0, "\(name) \(output.tensor): \(differing) elements differ with no tie at the cut")
            }
        }
        #expect(untied >= 5, "\(name): only \(untied) tensors without a tie at the cut")
        #expect(differingWithTies * 50 < total, "\(name): \(differingWithTies) of \(total) elements differ")
    }

    /// The whole path (YAML → plan → streamed merge → safetensors) with `arithmetic: .mergekit` writes
    /// mergekit's bytes: the executor hands the methods the working dtype's rounding.
    @Test(arguments: ["task_arithmetic_bf16", "linear_bf16", "nearswap_bf16", "ramplus_tl_bf16", "karcher_bf16"])
    func mergeFolderHasMergekitsBytes(_ name: String) throws {
        let out = try runMerge(fixtureConfig("merge/configs/\(name).yml"), arithmetic: .mergekit)
        let card = try String(contentsOfFile: out + "/README.md", encoding: .utf8)
        #expect(card.contains("--arithmetic mergekit"), "the model card says how the merge was computed")
        let ours = try ModelFolder.openWeights(folder: out)
        let theirs = try ModelFolder.openWeights(folder: fixturesDirectory + "/merge/expected/" + name)
        #expect(Set(ours.tensorNames) == Set(theirs.tensorNames))
        for info in theirs.tensorInfos {
            let a = try ours.tensor(info.name), b = try theirs.tensor(info.name)
            #expect(a.dtype == b.dtype)
            let x = a.floats(), y = b.floats()
            let n = zip(x, y).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(x.count == y.count && n == 0, "\(name) \(info.name): \(n) elements differ")
        }
    }
}
