import AmalgamMerge
import Testing

/// slerp, nuslerp, multislerp and karcher against mergekit 0.1.5's own outputs.
@Suite struct SlerpTests {
    @Test(arguments: ["slerp", "slerp_bf16", "slerp_gradient", "nuslerp", "nuslerp_base_rows", "nuslerp_base_columns",
                      "multislerp", "multislerp_base", "karcher", "karcher_bf16_f32math"])
    func matchesMergekit(_ name: String) throws {
        try Reference.expectMatches(name)
    }

    /// With `dtype: bfloat16` mergekit keeps the unit vectors and the running mean in bf16 through
    /// the iterations; rounding the unit vectors costs about as much as the models differ, so its
    /// result is within 5 % (L2; measured ≤ 2.9 %) of our f32 one, not within one step per element.
    /// `karcher_bf16_f32math` (bf16 models, f32 arithmetic) matches within one step everywhere.
    @Test func karcherInBF16ArithmeticStaysCloseToMergekit() throws {
        try Reference.expectClose("karcher_bf16", relativeNorm: 0.05)
    }

    @Test func slerpNeedsABase() throws {
        let method = try #require(MergeMethods.named("slerp"))
        #expect(throws: MergeError.self) {
            try method.merge([input("a", [1, 0]), input("b", [0, 1])], context: context(["t": .number(0.5)]))
        }
    }

    @Test func aTensorOnlyOneModelHasPassesThrough() throws {
        for name in ["slerp", "nuslerp", "arcee_fusion"] {
            let method = try #require(MergeMethods.named(name))
            #expect(method.missingTensorPolicy == .passthroughSingleton)
            #expect(try method.merge([input("a", [1, 2])], context: context(["t": .number(0.5)])).values == [1, 2])
        }
        #expect(MergeMethods.named("nearswap")?.missingTensorPolicy == .passthroughBaseSingleton)
        #expect(MergeMethods.named("model_stock")?.missingTensorPolicy == .baseOrSkip(minimumInputs: 3))
        #expect(MergeMethods.named("ties")?.missingTensorPolicy == .error)
    }

    @Test func slerpOfOrthogonalUnitVectorsStaysOnTheCircle() throws {
        let method = try #require(MergeMethods.named("slerp"))
        let (v, _) = try method.merge([input("a", [1, 0]), input("b", [0, 1])], context: context(base: 0, ["t": .number(0.5)]))
        #expect(abs(v[0] - Float(0.5).squareRoot()) < 1e-6 && abs(v[1] - Float(0.5).squareRoot()) < 1e-6)
    }

    @Test func nuslerpTakesExactlyTwoNonBaseModels() throws {
        let method = try #require(MergeMethods.named("nuslerp"))
        let three = [input("a", [1, 0], ["weight": .number(1)]), input("b", [0, 1], ["weight": .number(1)]),
                     input("c", [1, 1], ["weight": .number(1)])]
        #expect(throws: MergeError.self) { try method.merge(three, context: context()) }
        // With the third as base, it is fine.
        _ = try method.merge(three, context: context(base: 2))
    }
}
