import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// Incidents through a running alertd: the news once, repeats recorded and not sent, reminders
/// while the endpoint keeps failing, a recovery notice when it succeeds.
@Suite struct IncidentEndToEndTests {
    static func json(_ request: WebhookReceiver.Request) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any])
    }

    static func fail(_ connection: PostgresConnection, integration: UUID, endpoint: String = "employees", error: String) async throws -> UUID {
        let run = try await PlatformRows(connection).syncRun(integration: integration, endpoint: endpoint)
        try await connection.query("UPDATE integration_sync_history SET status = 'failed', error_message = $2 WHERE id = $1", [run, error])
        return run
    }

    @Test func oneFailingEndpointSendsItsNewsRemindersAndARecoveryNotice() async throws {
        let receiver = try await WebhookReceiver.start(verifyingWith: DispatcherEndToEndTests.secret)
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            // The three failures are written before alertd starts: under load, writing them can
            // take longer than the repeat interval, and a reminder between them counts fewer.
            let (integration, runs) = try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), webhook: receiver.url("/hooks/incident"))
                var runs: [UUID] = []
                for n in 1...3 {
                    runs.append(try await Self.fail(connection, integration: integration, error: "token expired (\(n))"))
                }
                return (integration, runs)
            }
            let alertd = try AlertdProcess.start(environment: DispatcherEndToEndTests.environment(database, [
                "ALERTD_INCIDENT_REPEAT_INTERVAL": "3s", "ALERTD_INCIDENT_SWEEP_INTERVAL": "500ms", "ALERTD_HTTP_ADDRESS": "127.0.0.1:0",
            ]))
            // The news, naming its incident, and a reminder once the repeat interval has passed:
            // still failing, three runs so far. A machine slow to start alertd may find both due
            // at its first claim and send them side by side, in either order.
            try await DispatcherEndToEndTests.waitUntil(.seconds(30)) {
                let types = try receiver.requests().map { (try? Self.json($0))?["type"] as? String }
                return types.contains("sync.failure") && types.contains("sync.still_failing")
            }
            let received = try receiver.requests().map(Self.json)
            let news = try #require(received.first { $0["type"] as? String == "sync.failure" })
            let newsIncident = try #require((news["data"] as? [String: Any])?["incident"] as? [String: Any])
            let incidentID = try #require(newsIncident["id"] as? String)
            let reminder = try #require(received.first { $0["type"] as? String == "sync.still_failing" })
            let reminderData = try #require(reminder["data"] as? [String: Any])
            let reminded = try #require(reminderData["incident"] as? [String: Any])
            #expect(reminded["id"] as? String == incidentID)
            #expect(reminded["failed_runs"] as? Int == 3)
            #expect(reminded["recent_runs"] as? [String] == runs.reversed().map(\.postgresText))
            #expect(reminded["last_error"] as? String == "token expired (3)")
            #expect((reminderData["sync"] as? [String: Any])?["id"] as? String == runs[2].postgresText)

            // The fix: a recovery notice, though alert_on_success is off.
            let fix = try await database.withConnection { connection in
                let fix = try await PlatformRows(connection).syncRun(integration: integration)
                try await PlatformRows(connection).setStatus(of: fix, to: "success")
                return fix
            }
            try await DispatcherEndToEndTests.waitUntil(.seconds(30)) {
                try receiver.requests().contains { (try? Self.json($0))?["type"] as? String == "sync.recovered" }
            }
            let recovery = try Self.json(try #require(try receiver.requests().first { (try? Self.json($0))?["type"] as? String == "sync.recovered" }))
            let recoveryData = try #require(recovery["data"] as? [String: Any])
            let recovered = try #require(recoveryData["incident"] as? [String: Any])
            #expect(recovered["id"] as? String == incidentID)
            #expect(recovered["failed_runs"] as? Int == 3)
            #expect(recovered["resolved_at"] is String)
            #expect((recoveryData["sync"] as? [String: Any])?["id"] as? String == fix.postgresText)

            // Nothing more: the repeats stayed suppressed, no reminder after the recovery.
            try await Task.sleep(for: .seconds(4))
            let types = try receiver.requests().map { try Self.json($0)["type"] as? String }
            #expect(types.filter { $0 == "sync.failure" }.count == 1)
            #expect(types.filter { $0 == "sync.recovered" }.count == 1)
            #expect(types.allSatisfy { ["sync.failure", "sync.still_failing", "sync.recovered"].contains($0) })
            try await database.withConnection { connection in
                let statuses = try await connection.query(
                    "SELECT alert_type, delivery_status, count(*)::int AS n FROM integration_alert_history GROUP BY 1, 2 ORDER BY 1, 2"
                ).map { "\(try $0.decode("alert_type", as: String.self))/\(try $0.decode("delivery_status", as: String.self))/\(try $0.decode("n", as: Int.self))" }
                #expect(statuses.contains("failure/sent/1"))
                #expect(statuses.contains("failure/suppressed/2"))
                #expect(statuses.contains("recovery/sent/1"))
                #expect(statuses.allSatisfy { !$0.contains("pending") && !$0.contains("failed") })
                #expect(statuses.contains { $0.hasPrefix("reminder/sent/") })
            }
            await alertd.stopExpectingExitZero()
        }
    }

    @Test func alertdWritesItsDefaultsForTheTriggerToRead() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: DispatcherEndToEndTests.environment(database, [
                "ALERTD_INCIDENTS": "off", "ALERTD_INCIDENT_REPEAT_INTERVAL": "off",
            ]))
            try await DispatcherEndToEndTests.waitUntil {
                try await database.withConnection { connection in
                    let row = try await connection.query("SELECT incidents, repeat_interval = interval '0' AS no_reminders, updated_by FROM alertd_settings")[0]
                    return try row.decode("incidents", as: Bool.self) == false && row.decode("no_reminders", as: Bool.self) && row.decode("updated_by", as: String?.self) != nil
                }
            }
            // Incidents are off: every failure of the endpoint is sent.
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), webhook: receiver.url("/hooks/off"))
                for n in 1...3 { _ = try await Self.fail(connection, integration: integration, error: "e\(n)") }
            }
            #expect(try await receiver.waitForRequests(3).count == 3)
            await alertd.stopExpectingExitZero()
            #expect(alertd.output.contains("incident defaults written to alertd_settings"))
        }
    }
}
