import AlertdSupport
import Testing

@Suite struct BackoffTests {
    /// SplitMix64, seeded, so that a run can be repeated.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test func doublesFromTheInitialDelayUpToTheMaximum() {
        let backoff = Backoff(initial: .seconds(1), maximum: .seconds(10), jitter: 0)
        var generator = SystemRandomNumberGenerator()
        let delays = (1...6).map { backoff.delay(attempt: $0, using: &generator) }
        #expect(delays == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(10), .seconds(10)])
    }

    @Test func jitterStaysWithinItsFraction() {
        let backoff = Backoff(initial: .seconds(8), maximum: .seconds(8), jitter: 0.25)
        var generator = SeededGenerator(state: 42)
        let delays = (0..<500).map { _ in backoff.delay(attempt: 1, using: &generator) }
        #expect(delays.allSatisfy { $0 >= .seconds(6) && $0 <= .seconds(8) })
        // Spread over the range, not stuck at one end.
        #expect(delays.contains { $0 < .milliseconds(6_500) })
        #expect(delays.contains { $0 > .milliseconds(7_500) })
    }

    @Test func hugeAttemptNumbersStayAtTheMaximum() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(30), jitter: 0)
        var generator = SystemRandomNumberGenerator()
        #expect(backoff.delay(attempt: 10_000, using: &generator) == .seconds(30))
        #expect(backoff.delay(attempt: 0, using: &generator) == .milliseconds(100))
    }
}
