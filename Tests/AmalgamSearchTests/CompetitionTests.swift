import AmalgamSearch
import Testing

/// Fitness and attraction on small score matrices computed by hand.
@Suite struct CompetitionTests {
    // Three members, three examples: example 0 solved by members 0 and 1, example 1 by member 0 only,
    // example 2 by member 2 only.
    let scores = ScoreMatrix(rows: 3, columns: 3, values: [1, 1, 0,
                                                           1, 0, 0,
                                                           0, 0, 1])

    @Test func fitnessSharesEachExampleAmongItsSolvers() {
        let inverse = Competition.inverseCrowding(columnSums: scores.columnSums(), alpha: 1)
        #expect(inverse == [0.5, 1, 1])
        #expect(Competition.fitness(scores, inverseCrowding: inverse) == [1.5, 0.5, 1])
    }

    @Test func alphaZeroIsPlainAccuracyCount() {
        let inverse = Competition.inverseCrowding(columnSums: scores.columnSums(), alpha: 0)
        #expect(Competition.fitness(scores, inverseCrowding: inverse) == [2, 1, 1])
    }

    @Test func alphaTwoSquaresTheCrowding() {
        let inverse = Competition.inverseCrowding(columnSums: scores.columnSums(), alpha: 2)
        #expect(Competition.fitness(scores, inverseCrowding: inverse) == [1.25, 0.25, 1])
    }

    @Test func anExampleNobodySolvesCountsAsOne() {
        let s = ScoreMatrix(rows: 2, columns: 2, values: [0, 1, 0, 0])
        #expect(Competition.inverseCrowding(columnSums: s.columnSums(), alpha: 1) == [1, 1])
        #expect(Competition.fitness(s, inverseCrowding: [1, 1]) == [1, 0])
    }

    @Test func attractionCountsWhatTheMateSolvesAndParentDoesNot() {
        let inverse = Competition.inverseCrowding(columnSums: scores.columnSums(), alpha: 1)
        #expect(Competition.attraction(scores, to: 0, inverseCrowding: inverse) == [0, 0, 1])
        // To member 1: member 0 adds example 1 (weight 1), member 2 adds example 2 (weight 1).
        #expect(Competition.attraction(scores, to: 1, inverseCrowding: inverse) == [1, 0, 1])
        // To member 2: member 0 adds examples 0 (½) and 1 (1), member 1 adds example 0 (½).
        #expect(Competition.attraction(scores, to: 2, inverseCrowding: inverse) == [1.5, 0.5, 0])
    }

    @Test func partialScoresAreWeightedToo() {
        let s = ScoreMatrix(rows: 2, columns: 2, values: [0.5, 1, 1, 0])
        let inverse = Competition.inverseCrowding(columnSums: s.columnSums(), alpha: 1)  // z = [1.5, 1]
        let f = Competition.fitness(s, inverseCrowding: inverse)
        #expect(abs(f[0] - (0.5 / 1.5 + 1)) < 1e-12)
        #expect(abs(f[1] - 1 / 1.5) < 1e-12)
        let g = Competition.attraction(s, to: 0, inverseCrowding: inverse)
        #expect(abs(g[1] - 0.5 / 1.5) < 1e-12)
    }

    @Test func weakestIsTheFirstLowest() {
        #expect(Competition.weakest([1, 0.5, 0.5, 2]) == 1)
        #expect(Competition.weakest([0, 0, 0]) == 0)
    }
}
