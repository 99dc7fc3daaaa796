import AmalgamMerge
import Testing

/// linear, passthrough, nearswap and vocabulary truncation against mergekit 0.1.5's own outputs.
@Suite struct LinearTests {
    @Test(arguments: ["linear", "linear_bf16", "linear_filters", "passthrough", "nearswap", "linear_vocab_truncate"])
    func matchesMergekit(_ name: String) throws {
        try Reference.expectMatches(name)
    }

    @Test func weightsThatSumToZeroCannotBeNormalised() throws {
        let method = try #require(MergeMethods.named("linear"))
        #expect(throws: MergeError.self) {
            try method.merge([input("a", [1, 2], ["weight": .number(1)]), input("b", [3, 4], ["weight": .number(-1)])],
                             context: context())
        }
        let (values, _) = try method.merge(
            [input("a", [1, 2], ["weight": .number(1)]), input("b", [3, 4], ["weight": .number(-1)])],
            context: context(["normalize": .bool(false)]))
        #expect(values == [-2, -2])
    }

    @Test func missingWeightNamesTheModel() throws {
        let method = try #require(MergeMethods.named("linear"))
        do {
            _ = try method.merge([input("org/model-a", [1, 2])], context: context())
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("org/model-a") && error.description.contains("weight"))
        }
    }

    @Test func shapeMismatchNamesModelsAndShapes() throws {
        let method = try #require(MergeMethods.named("linear"))
        do {
            _ = try method.merge([input("a", [1, 2, 3, 4], shape: [2, 2], ["weight": .number(1)]),
                                  input("b", [1, 2, 3, 4, 5, 6], shape: [3, 2], ["weight": .number(1)])],
                                 context: context())
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("a [2, 2]") && error.description.contains("b [3, 2]"))
        }
        // The same vocabulary mismatch on an embedding is cut to the common rows.
        let (values, shape) = try method.merge(
            [input("a", [1, 2, 3, 4], shape: [2, 2], ["weight": .number(1)]),
             input("b", [3, 4, 5, 6, 7, 8], shape: [3, 2], ["weight": .number(1)])],
            context: context(tensor: "model.embed_tokens.weight", embedding: true))
        #expect(shape == [2, 2] && values == [2, 3, 4, 5])
    }

    @Test func passthroughTakesOneModel() throws {
        let method = try #require(MergeMethods.named("passthrough"))
        #expect(throws: MergeError.self) { try method.merge([input("a", [1]), input("b", [2])], context: context()) }
    }

    @Test func registryListsAllTwentyMethods() {
        #expect(MergeMethods.names.count == 20)
        #expect(Set(MergeMethods.names).count == 20)
        #expect(MergeMethods.named("dare_ties")?.isRandom == true)
        #expect(MergeMethods.named("ties")?.isRandom == false)
        #expect(MergeMethods.named("nonsense") == nil)
    }
}
