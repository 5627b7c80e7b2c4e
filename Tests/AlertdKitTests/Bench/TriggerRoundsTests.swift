@testable import AlertdBench
import Testing

/// The trigger phase's figures from its rounds: rates are medians of rounds, ratios medians of
/// the ratios within each cycle (docs/benchmarks.md#what-each-figure-is).
@Suite struct TriggerRoundsTests {
    @Test func aRatioIsTheMedianOfEachCyclesRatioNotTheRatioOfTheMedians() {
        let rounds = Benchmark.TriggerRounds(rates: [.repeats: [40, 95, 60], .constantInsert: [50, 100, 80]])
        #expect(rounds.ratios(.repeats, to: .constantInsert) == [0.8, 0.95, 0.75])
        #expect(rounds.medianRatio(.repeats, to: .constantInsert) == 0.8)
        // The quotient of the median rates would say 60 / 80.
        #expect(rounds.medianRate(.repeats) == 60)
        #expect(rounds.medianRate(.constantInsert) == 80)
    }

    @Test func mediansOfEvenCountsAverageTheMiddleTwoAndNothingIsZero() {
        #expect(Benchmark.TriggerRounds.median([4, 1, 3, 2]) == 2.5)
        #expect(Benchmark.TriggerRounds.median([]) == 0)
        let rounds = Benchmark.TriggerRounds(rates: [.repeats: [10, 20], .constantInsert: [0, 40]])
        // A round that measured nothing has no ratio; a variant never run has no rate.
        #expect(rounds.ratios(.repeats, to: .constantInsert) == [0.5])
        #expect(rounds.medianRate(.successes) == 0)
        #expect(rounds.medianRatio(.successes, to: .without) == 0)
    }
}
