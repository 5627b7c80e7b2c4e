import AlertdSupport
import Testing

/// The two one-shot primitives: waiters suspend without a thread and all see the one outcome.
@Suite struct OneTimeTests {
    @Test func theFirstValueSetIsTheOneEveryWaiterGets() async {
        let result = OneTimeResult<Int>()
        async let first = result.value
        async let second = result.value
        try? await Task.sleep(for: .milliseconds(20))
        #expect(result.set(1))
        #expect(!result.set(2))
        #expect(await first == 1)
        #expect(await second == 1)
        // Asked after it was set: at once.
        #expect(await result.value == 1)
    }

    @Test func manySettersRaceAndExactlyOneWins() async {
        let result = OneTimeResult<Int>()
        let wins = await withTaskGroup(of: Bool.self) { group in
            for n in 0..<64 { group.addTask { result.set(n) } }
            var wins = 0
            for await won in group where won { wins += 1 }
            return wins
        }
        #expect(wins == 1)
        let value = await result.value
        #expect((0..<64).contains(value))
    }

    @Test func anEventReleasesEveryWaiterAndLaterWaitsReturnAtOnce() async {
        let event = OneTimeEvent()
        #expect(!event.hasHappened)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { await event.wait() } }
            try? await Task.sleep(for: .milliseconds(20))
            event.signal()
        }
        #expect(event.hasHappened)
        await event.wait()
    }
}
