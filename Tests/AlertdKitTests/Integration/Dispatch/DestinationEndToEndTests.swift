import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// Destination health through `alertd run`, with a real receiver and SMTP server: a receiver that
/// goes away and comes back, and a URL that answers 410 Gone.
@Suite struct DestinationEndToEndTests {
    static func environment(_ database: TestDatabase, sink: SMTPSink, _ extra: [String: String] = [:]) -> [String: String] {
        DispatcherEndToEndTests.environment(database, [
            "ALERTD_SMTP_URL": "smtp://127.0.0.1:\(sink.port)",
            "ALERTD_SMTP_FROM": "alertd@example.com",
            "ALERTD_SMTP_TLS": "none",
        ].merging(extra) { $1 })
    }

    /// Failed runs of one integration: `count` webhook alerts (and email ones with `emails`).
    @discardableResult
    static func failRuns(_ database: TestDatabase, webhook: String, emails: [String] = [], count: Int) async throws -> UUID {
        try await database.withConnection { connection in
            let rows = PlatformRows(connection)
            let integration = try await rows.integration(tenant: try await rows.tenant(), name: "Paycom", emails: emails, webhook: webhook)
            for n in 0..<count { try await rows.syncRun(integration: integration, status: "failed", endpoint: "endpoint-\(n)") }
            return integration
        }
    }

    @Test func aReceiverThatGoesAwayHasItsCircuitOpenedAndGetsEveryAlertWhenItIsBack() async throws {
        let sink = try await SMTPSink.start()
        defer { sink.stop() }
        let away = try await WebhookReceiver.start()
        let port = away.port
        away.stop()
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: Self.environment(database, sink: sink, ["ALERTD_CIRCUIT_FAILURES": "3"]))
            try await Self.failRuns(database, webhook: "http://127.0.0.1:\(port)/hooks/back", count: 8)
            do {
                try await DispatcherEndToEndTests.waitUntil(.seconds(30)) { alertd.output.contains("circuit opened") }
            } catch {
                Issue.record("no circuit opened within 30 s; alertd printed:\n\(alertd.output)")
                throw error
            }
            let waiting: Int = try await database.withConnection { connection in
                try await connection.query("SELECT count(*)::int AS n FROM integration_alert_history WHERE delivery_status = 'pending'")[0].decode("n")
            }
            #expect(waiting == 8, "every alert waits; none gave up")
            // While the circuit is open, the alerts wait: three seconds more of the receiver away
            // cost at most one attempt in all (a probe; the first comes 4 to 6 s after the circuit
            // opened), whatever the machine's load.
            func attemptsMade() async throws -> Int {
                try await database.withConnection { connection in
                    try await connection.query("SELECT count(*)::int AS n FROM integration_alert_attempts")[0].decode("n")
                }
            }
            let attemptsWhenOpened = try await attemptsMade()
            try await Task.sleep(for: .seconds(3))
            let attemptsLater = try await attemptsMade()
            #expect(attemptsLater - attemptsWhenOpened <= 1, "attempts while the circuit was open: \(attemptsLater - attemptsWhenOpened)")
            let back = try await WebhookReceiver.start(port: port)
            defer { back.stop() }
            try await DispatcherEndToEndTests.waitUntil(.seconds(30)) { try await DispatcherEndToEndTests.statuses(database) == Array(repeating: "sent", count: 8) }
            #expect(try back.requests().count == 8, "each alert once, the probe among them")
            let attempts: Int = try await database.withConnection { connection in
                try await connection.query("SELECT max(attempt_count)::int AS n FROM integration_alert_history")[0].decode("n")
            }
            // Retries here are 100 ms apart: an alert may fail a few times before the first
            // failures' report opens the circuit (how many depends on the machine's load), and
            // carry a probe; the wait above shows that the open circuit itself costs none.
            #expect(attempts <= 5, "the outage cost each alert at most a few attempts: \(attempts)")
            let exit = await alertd.stop()
            #expect(exit.output.contains("destination reachable again: circuit closed"), "\(exit.output)")
            #expect(exit.output.contains("destination=http://127.0.0.1:\(port)/…"), "the URL's path is not logged")
        }
    }

    @Test func aGoneURLIsDisabledItsIntegrationToldByEmailAndItsLaterAlertsFailedUnsent() async throws {
        let sink = try await SMTPSink.start()
        defer { sink.stop() }
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: Self.environment(database, sink: sink))
            let url = receiver.url("/codes/410/gone")
            let integration = try await Self.failRuns(database, webhook: url, emails: ["ops@example.com"], count: 1)
            // The failure's email, then the notice.
            let messages = try await sink.waitForMessages(2)
            let notice = try #require(messages.compactMap { EmailEndToEndTests.part($0.data, "text/plain") }.first { $0.contains("has stopped calling") })
            #expect(notice.contains("alertd has stopped calling the webhook URL of Paycom:"))
            #expect(notice.contains(url))
            #expect(notice.contains("the receiver answered 410 Gone: HTTP 410"))
            #expect(notice.contains("alertd endpoints enable '\(url)'"))
            let row = try await database.withConnection { connection in
                try await connection.query("SELECT state, disabled_by FROM alertd_destinations WHERE destination = $1", [url])[0]
            }
            #expect(try row.decode("state", as: String.self) == "disabled")

            // A later failure: its webhook is failed unsent, its email goes out.
            try await database.withConnection { connection in
                try await PlatformRows(connection).syncRun(integration: integration, status: "failed", endpoint: "later")
            }
            _ = try await sink.waitForMessages(3)
            try await DispatcherEndToEndTests.waitUntil(.seconds(30)) {
                try await database.withConnection { connection in
                    try await connection.query(
                        "SELECT count(*)::int AS n FROM integration_alert_history WHERE alert_channel = 'webhook' AND delivery_status = 'failed' AND delivery_error LIKE 'Not sent: its webhook URL was disabled%'"
                    )[0].decode("n", as: Int.self) == 1
                }
            }
            #expect(try receiver.requests().count == 1, "the disabled URL was called once, for the 410")
            let exit = await alertd.stop()
            #expect(exit.output.contains("webhook URL disabled; its integrations' addresses are told by email"), "\(exit.output)")
        }
    }
}
