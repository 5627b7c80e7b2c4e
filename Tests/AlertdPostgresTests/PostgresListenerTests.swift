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
                    let killed = try await other.query(
                        "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN \"alertd\"'"
                    )
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
                healthCheckTimeout: .milliseconds(500),
                logger: TestPostgres.logger
            )
            try await database.withConnection { other in
                try await listener.run { events in
                    var iterator = events.makeAsyncIterator()
                    #expect(await iterator.next() == .listening(reconnected: false))
                    // Hold a lock the health check's SELECT 1 cannot get past? SELECT 1 takes no lock;
                    // instead stop the listener's backend with SIGSTOP so it answers nothing.
                    let pid = try await other.query(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN \"alertd\"'"
                    )[0].decode("pid", as: Int32.self)
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
            let task = Task {
                try await listener.run { events in
                    var count = 0
                    for await _ in events { count += 1 }
                    return count
                }
            }
            try await Task.sleep(for: .milliseconds(500))
            task.cancel()
            let count = try await task.value
            #expect(count >= 1)
            // Its connection is gone.
            try await database.withConnection { other in
                let listening = try await other.query(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
                #expect(try listening[0].decode("n", as: Int.self) == 0)
            }
        }
    }
}
