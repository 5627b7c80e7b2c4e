import AlertdSupport
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

@Suite struct PostgresListenerTests {
    /// Waits for the next event that `matches`, failing after `timeout`.
    static func next(
        _ iterator: inout PostgresListenerEvents.AsyncIterator,
        within timeout: Duration = .seconds(15),
        where matches: (PostgresListenerEvent) -> Bool
    ) async throws -> PostgresListenerEvent {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let event = await iterator.next() else { throw TestSetupError("the listener stopped") }
            if matches(event) { return event }
        }
        throw TestSetupError("no matching event within \(timeout)")
    }

    /// The listener's backend: in these tests the only other connection to the database.
    static let listenerBackends = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"

    @Test func deliversNotificationsOnItsChannels() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            let listener = PostgresListener(connectionString: database.connectionString, channels: ["alertd", "other channel"], logger: TestPostgres.logger)
            try await database.withConnection { sender in
                try await listener.run { events in
                    var iterator = events.makeAsyncIterator()
                    #expect(await iterator.next() == .listening(reconnected: false))
                    try await sender.query("SELECT pg_notify('alertd', 'one')")
                    try await sender.query("SELECT pg_notify('not listened', 'x')")
                    try await sender.query("SELECT pg_notify('other channel', 'two ü')")
                    let first = try await Self.next(&iterator) { _ in true }
                    let second = try await Self.next(&iterator) { _ in true }
                    guard case .notification(let one) = first, case .notification(let two) = second else {
                        Issue.record("expected two notifications, got \(first) and \(second)")
                        return
                    }
                    #expect(one.channel == "alertd" && one.payload == "one")
                    #expect(two.channel == "other channel" && two.payload == "two ü")
                    #expect(one.senderPID == sender.backendPID)
                }
            }
        }
    }

    @Test func reconnectsAfterItsConnectionIsKilled() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            let listener = PostgresListener(
                connectionString: database.connectionString,
                channels: ["alertd"],
                reconnectBackoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(200)),
                logger: TestPostgres.logger
            )
            try await database.withConnection { other in
                try await listener.run { events in
                    var iterator = events.makeAsyncIterator()
                    #expect(await iterator.next() == .listening(reconnected: false))
                    let killed = try await other.query("SELECT pg_terminate_backend(pid) AS done FROM (\(Self.listenerBackends)) listener")
                    #expect(killed.count == 1)
                    #expect(try await Self.next(&iterator) { _ in true } == .disconnected)
                    #expect(try await Self.next(&iterator) { _ in true } == .listening(reconnected: true))
                    try await other.query("SELECT pg_notify('alertd', 'after')")
                    let event = try await Self.next(&iterator) { _ in true }
                    guard case .notification(let notification) = event else {
                        Issue.record("expected a notification, got \(event)")
                        return
                    }
                    #expect(notification.payload == "after")
                }
            }
        }
    }

    @Test func aHealthCheckNoticesAConnectionThatStopsAnswering() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            let listener = PostgresListener(
                connectionString: database.connectionString,
                channels: ["alertd"],
                reconnectBackoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(200)),
                healthCheckInterval: .milliseconds(300),
                healthCheckTimeout: .seconds(2),
                logger: TestPostgres.logger
            )
            try await database.withConnection { other in
                try await listener.run { events in
                    var iterator = events.makeAsyncIterator()
                    #expect(await iterator.next() == .listening(reconnected: false))
                    // Freeze the listener's backend so that it answers nothing, as a cut cable would.
                    let backends = try await other.query(Self.listenerBackends)
                    #expect(backends.count == 1)
                    let pid = try #require(backends.first).decode("pid", as: Int32.self)
                    #expect(kill(pid, SIGSTOP) == 0)
                    defer { kill(pid, SIGCONT) }
                    #expect(try await Self.next(&iterator) { _ in true } == .disconnected)
                    kill(pid, SIGCONT)
                    #expect(try await Self.next(&iterator) { _ in true } == .listening(reconnected: true))
                }
            }
        }
    }

    @Test func stopsWhenItsTaskIsCancelled() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            let listener = PostgresListener(connectionString: database.connectionString, channels: ["alertd"], logger: TestPostgres.logger)
            let (started, startedContinuation) = AsyncStream.makeStream(of: PostgresListenerEvent.self)
            let task = Task {
                try await listener.run { events in
                    var count = 0
                    for await event in events {
                        startedContinuation.yield(event)
                        count += 1
                    }
                    return count
                }
            }
            var iterator = started.makeAsyncIterator()
            #expect(await iterator.next() == .listening(reconnected: false))
            task.cancel()
            #expect(try await task.value == 1)
            // Its connection is gone.
            let remaining = try await database.withConnection { other in
                try await other.query(Self.listenerBackends).count
            }
            #expect(remaining == 0)
        }
    }
}
