@testable import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// `alertd run --http-address` and `alertd health`, against a real database and receiver.
@Suite struct StatusEndToEndTests {
    /// The address `alertd run` says it serves on (it was asked for port 0).
    static func statusAddress(of alertd: AlertdProcess) async throws -> StatusAddress {
        var found: StatusAddress?
        try await DispatcherEndToEndTests.waitUntil(.seconds(20)) {
            guard let range = alertd.output.range(of: #"address=http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) else { return false }
            found = try StatusAddress(String(alertd.output[range].dropFirst("address=http://".count)))
            return true
        }
        return try #require(found)
    }

    static func metrics(_ address: StatusAddress) async throws -> [String: Double] {
        let answer = try await StatusProbe.get("/metrics", from: address, timeout: .seconds(5))
        #expect(answer.status == 200)
        return try StatusServerTests.parse(answer.body)
    }

    @Test func metricsCountDeliveriesAndTheQueueAndReadinessFollowsTheConnections() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            try await DispatcherEndToEndTests.failRuns(database, webhook: receiver.url("/codes/503,200/metrics"))
            // Email is off in this instance: an email alert stays pending, and ages.
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant("Other"), emails: ["ops@example.com"])
                try await rows.alert(integration: integration, channel: "email")
            }
            let alertd = try AlertdProcess.start(environment: DispatcherEndToEndTests.environment(database, ["ALERTD_HTTP_ADDRESS": "127.0.0.1:0"]))
            let address = try await Self.statusAddress(of: alertd)
            try await DispatcherEndToEndTests.waitUntil(.seconds(30)) { try await DispatcherEndToEndTests.statuses(database).contains("sent") }
            try await DispatcherEndToEndTests.waitUntil(.seconds(30)) {
                let samples = try await Self.metrics(address)
                return samples[#"alertd_deliveries_total{channel="webhook",outcome="sent"}"#] == 1 && samples[#"alertd_alerts_pending{channel="email"}"#] == 1
                    && samples[#"alertd_alerts_pending{channel="webhook"}"#] == 0  // read every 5 s
            }
            let samples = try await Self.metrics(address)
            #expect(samples[#"alertd_deliveries_total{channel="webhook",outcome="retry"}"#] == 1)
            #expect(samples[#"alertd_delivery_attempts_total{channel="webhook"}"#] == 2)
            #expect(samples[#"alertd_final_failures_total{channel="webhook"}"#] == 0)
            #expect(samples[#"alertd_delivery_duration_seconds_count{channel="webhook"}"#] == 2)
            #expect(samples[#"alertd_alert_latency_seconds_count{channel="webhook"}"#] == 1)
            #expect(samples[#"alertd_alerts_pending{channel="webhook"}"#] == 0)
            #expect((samples[#"alertd_oldest_due_alert_age_seconds{channel="email"}"#] ?? 0) > 0)
            #expect(samples["alertd_alerts_in_flight"] == 0)
            #expect(samples["alertd_ready"] == 1 && samples["alertd_listen_active"] == 1)

            let healthy = try await TestProcess.alertd(["health", "--http-address", address.description])
            #expect(healthy.status == 0 && healthy.allOutput.contains("ready"), "\(healthy.allOutput)")

            // Every connection of alertd's cut by the server: LISTEN comes back, and so do the
            // claiming and recording connections at their next call.
            try await database.withConnection { connection in
                try await connection.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND datname = current_database()", [AlertdRole.name])
            }
            try await DispatcherEndToEndTests.failRuns(database, webhook: receiver.url("/metrics-after"))
            try await DispatcherEndToEndTests.waitUntil(.seconds(30)) {
                let samples = try await Self.metrics(address)
                return samples["alertd_listen_reconnects_total"] == 1 && (samples["alertd_database_reconnects_total"] ?? 0) >= 1
                    && samples[#"alertd_deliveries_total{channel="webhook",outcome="sent"}"#] == 2 && samples["alertd_ready"] == 1
            }
            #expect(try await TestProcess.alertd(["health"], environment: ["ALERTD_HTTP_ADDRESS": address.description]).status == 0)
            await alertd.stopExpectingExitZero()
            #expect(!alertd.output.contains(AlertdRole.testPassword) && !alertd.output.contains(TestPostgres.password))
        }
    }

    @Test func withoutTheDatabaseAlertdIsAliveButNotReady() async throws {
        // A port nothing listens on: alertd keeps trying to connect.
        let closed = try StatusServer.start(on: StatusAddress(host: "127.0.0.1", port: 0)) { _ in .init(status: 200, body: "") }
        let port = closed.address.port
        closed.stop()
        await closed.stopped()
        let alertd = try AlertdProcess.start(environment: [
            "ALERTD_DATABASE_URL": "postgresql://alertd:\(AlertdRole.testPassword)@127.0.0.1:\(port)/postgres",
            "ALERTD_HTTP_ADDRESS": "127.0.0.1:0",
        ])
        let address = try await Self.statusAddress(of: alertd)
        let ready = try await StatusProbe.get("/readyz", from: address, timeout: .seconds(5))
        #expect(ready.status == 503 && ready.body.contains("not connected yet"), "\(ready)")
        #expect(try await StatusProbe.get("/healthz", from: address, timeout: .seconds(5)).status == 200)
        let health = try await TestProcess.alertd(["health", "--http-address", address.description])
        #expect(health.status == 1 && health.allOutput.contains("not ready"))
        #expect(try await TestProcess.alertd(["health", "--live", "--http-address", address.description]).status == 0)
        await alertd.stopExpectingExitZero()
        #expect(!alertd.output.contains(AlertdRole.testPassword))
        // And nothing listening at all: exit 1 with the reason.
        let none = try await TestProcess.alertd(["health", "--http-address", address.description, "--timeout", "2s"])
        #expect(none.status == 1 && none.allOutput.contains("No answer"), "\(none.allOutput)")
        let unset = try await TestProcess.alertd(["health"])
        #expect(unset.status == 1 && unset.allOutput.contains("ALERTD_HTTP_ADDRESS"))
    }
}
