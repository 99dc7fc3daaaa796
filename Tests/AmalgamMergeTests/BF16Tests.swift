import AmalgamMerge
import Testing

/// bf16 merges. Where mergekit computes in f32 for any dtype (linear, slerp) or is told to
/// (`dtype: float32, out_dtype: bfloat16`), our once-rounded result is within one bf16 step of its
/// output (see the other suites). Here mergekit computes in bf16, rounding every intermediate: we
/// measure how far our f32-then-round result lies from it, tensor by tensor.
@Suite struct BF16Tests {
    /// (case, largest relative L2 error allowed in any tensor, largest fraction of a tensor's elements
    /// allowed more than one bf16 step away). Bounds are about 1.5× what was measured.
    static let cases: [(String, Double, Double)] = [
        ("nuslerp_base_rows_bf16", 0.003, 0.05),        // measured 0.12 %, 2.7 %
        ("multislerp_base_bf16", 0.003, 0.08),          // 0.16 %, 5.1 %
        ("task_arithmetic_lambda_bf16", 0.002, 0.05),   // 0.07 %, 2.7 %
        ("breadcrumbs_ties_bf16", 0.025, 0.07),         // 1.5 %, 4.1 %: rank ties of quantised deltas
        ("model_stock_bf16", 0.01, 0.08),               // 0.5 %, 4.7 %
        ("model_stock_filter_wise_bf16", 0.01, 0.17),   // 0.6 %, 11 %: cosines of 16-element rows in bf16
        ("sce_topk_bf16", 0.025, 0.19),                 // 1.5 %, 12.5 %: variance top-k on quantised deltas
        ("nearswap_bf16", 0.005, 0.03),                 // 0.3 %, 1.6 %
        // Softmax and KL of near-identical rows in bf16 are mostly rounding noise, so mergekit's
        // outlier mask there is largely arbitrary: 9.7 %, 28 %.
        ("arcee_fusion_bf16", 0.15, 0.4),
        ("ram_bf16", 0.002, 0.04),                      // 0.05 %, 2.3 %
        ("ramplus_tl_bf16", 0.003, 0.05),               // 0.16 %, 3.1 %
        ("passthrough_bf16", 0, 0),                     // exact
    ]

    @Test(arguments: cases.map(\.0))
    func staysCloseToMergekitsBF16Arithmetic(_ name: String) throws {
        let (_, norm, fraction) = Self.cases.first { $0.0 == name }!
        let results = try Reference.run(name)
        #expect(!results.isEmpty)
        let worstNorm = results.map(\.relativeNormError).max() ?? 0
        let worstFraction = results.map { Double($0.failures) / Double($0.count) }.max() ?? 0
        #expect(worstNorm <= norm, "\(name): relative L2 error \(worstNorm)")
        #expect(worstFraction <= fraction, "\(name): \(worstFraction) of a tensor beyond one bf16 step")
    }
}
