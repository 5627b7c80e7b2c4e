import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// Failures that write nothing, through a running alertd: an overdue endpoint and a stuck run
/// are found by its sweep, sent, and closed with their notices. Past timestamps stand in for the
/// time that passed.
@Suite struct SilentFailureEndToEndTests {
    static func json(_ request: WebhookReceiver.Request) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any])
    }

    /// The first webhook of event `type`, once it arrived; if it does not, the error says what
    /// alertd printed and whether it still runs.
    static func webhook(_ receiver: WebhookReceiver, _ type: String, from alertd: AlertdProcess) async throws -> [String: Any] {
        do {
            try await DispatcherEndToEndTests.waitUntil(.seconds(30)) {
                try receiver.requests().contains { (try? Self.json($0))?["type"] as? String == type }
            }
        } catch {
            throw TestSetupError("no \(type) webhook within 30 s; alertd \(alertd.isRunning ? "still runs" : "has exited"), and printed:\n\(alertd.output)")
        }
        let request = try #require(try receiver.requests().first { (try? Self.json($0))?["type"] as? String == type })
        return try #require(try Self.json(request)["data"] as? [String: Any])
    }

    @Test func anOverdueEndpointAndAStuckRunAreSentAndTheirEndsToo() async throws {
        let receiver = try await WebhookReceiver.start(verifyingWith: DispatcherEndToEndTests.secret)
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            let (integration, lastRun, stuckRun) = try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), webhook: receiver.url("/hooks/silent"))
                try await connection.query(
                    """
                    INSERT INTO integration_sync_configs (integration_config_id, endpoint_name, sync_frequency, is_enabled, average_sync_duration_seconds, created_at, updated_at)
                    VALUES ($1, 'payroll', 'hourly', true, NULL, now() - interval '2 days', now() - interval '2 days'),
                           ($1, 'employees', 'daily', true, 60, now() - interval '2 days', now() - interval '2 days')
                    """,
                    [integration]
                )
                let lastRun: UUID = try await connection.query(
                    """
                    INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, sync_completed_at, status, records_synced)
                    VALUES ($1, 'payroll', (now() AT TIME ZONE 'UTC') - interval '150 minutes', (now() AT TIME ZONE 'UTC') - interval '145 minutes', 'success', 40)
                    RETURNING id
                    """,
                    [integration]
                )[0].decode("id")
                let stuckRun: UUID = try await connection.query(
                    """
                    INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status)
                    VALUES ($1, 'employees', (now() AT TIME ZONE 'UTC') - interval '20 minutes', 'running')
                    RETURNING id
                    """,
                    [integration]
                )[0].decode("id")
                return (integration, lastRun, stuckRun)
            }
            let alertd = try AlertdProcess.start(environment: DispatcherEndToEndTests.environment(database, ["ALERTD_SILENT_SWEEP_INTERVAL": "300ms"]))

            // The overdue endpoint: its last run, what was expected of it, its incident.
            let overdue = try await Self.webhook(receiver, "sync.overdue", from: alertd)
            #expect((overdue["alert"] as? [String: Any])?["type"] as? String == "overdue")
            let expected = try #require(overdue["overdue"] as? [String: Any])
            #expect(expected["endpoint"] as? String == "payroll")
            #expect(expected["frequency"] as? String == "hourly")
            #expect(expected["grace_seconds"] as? Int == 900)
            let due = try #require(expected["expected_at"] as? String)
            let dueAt = try #require(ISO8601DateFormatter().date(from: due))
            #expect(abs(dueAt.timeIntervalSinceNow + 90 * 60) < 120, "due 90 minutes ago, not at \(due)")
            #expect((overdue["sync"] as? [String: Any])?["id"] as? String == lastRun.postgresText)
            #expect((overdue["incident"] as? [String: Any])?["kind"] as? String == "overdue")
            #expect(overdue["stuck"] is NSNull)

            // The stuck run: three times a minute is less than the least, 15 minutes.
            let stuck = try await Self.webhook(receiver, "sync.stuck", from: alertd)
            #expect((stuck["sync"] as? [String: Any])?["id"] as? String == stuckRun.postgresText)
            let stuckFacts = try #require(stuck["stuck"] as? [String: Any])
            #expect(stuckFacts["stuck_after_seconds"] as? Int == 900)
            #expect(stuckFacts["typical_seconds"] as? Int == 60)
            #expect((stuckFacts["running_seconds"] as? Int ?? 0) >= 20 * 60)
            #expect((stuck["incident"] as? [String: Any])?["kind"] as? String == "stuck")

            // The endpoint runs again, the stuck run fails: their notices, and the failure as usual.
            let resumedRun = try await database.withConnection { connection in
                let run = try await PlatformRows(connection).syncRun(integration: integration, endpoint: "payroll")
                try await connection.query("UPDATE integration_sync_history SET status = 'failed', error_message = 'worker lost', sync_completed_at = now() AT TIME ZONE 'UTC' WHERE id = $1", [stuckRun])
                return run
            }
            let resumed = try await Self.webhook(receiver, "sync.resumed", from: alertd)
            #expect((resumed["sync"] as? [String: Any])?["id"] as? String == resumedRun.postgresText)
            #expect((resumed["incident"] as? [String: Any])?["resolved_at"] is String)
            let ended = try await Self.webhook(receiver, "sync.stuck_ended", from: alertd)
            #expect((ended["sync"] as? [String: Any])?["status"] as? String == "failed")
            let failure = try await Self.webhook(receiver, "sync.failure", from: alertd)
            #expect((failure["sync"] as? [String: Any])?["id"] as? String == stuckRun.postgresText)

            // Audited: what each alert said, sent.
            try await database.withConnection { connection in
                let rows = try await connection.query(
                    "SELECT alert_type, delivery_status, subject FROM integration_alert_history ORDER BY created_at, alert_type"
                ).map { "\(try $0.decode("alert_type", as: String.self))/\(try $0.decode("delivery_status", as: String.self))/\(try $0.decode("subject", as: String?.self) ?? "-")" }
                #expect(Set(rows) == [
                    "overdue/sent/[alertd] Sync overdue: Paycom · payroll",
                    "stuck/sent/[alertd] Sync stuck: Paycom · employees",
                    "recovery/sent/[alertd] Sync running again: Paycom · payroll",
                    "recovery/sent/[alertd] Stuck sync ended: Paycom · employees",
                    "failure/sent/[alertd] Sync failed: Paycom · employees",
                ])
            }
            let exit = await alertd.stop()
            #expect(exit.output.contains("endpoints overdue"), "\(exit.output)")
        }
    }

    /// operations.md: a newer alertd on a schema without 20251129 (nor 20251130) claims and delivers as before,
    /// and its sweep says which migration it lacks.
    @Test func onASchemaWithoutTheMigrationAlertdDeliversAndSaysWhatItLacks() async throws {
        let receiver = try await WebhookReceiver.start(verifyingWith: DispatcherEndToEndTests.secret)
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let migrator = Migrator(connection: connection, migrations: try Migration.load(from: TestPostgres.sqlDirectory))
                #expect(try await migrator.rollback(all: false, force: false) { _ in } == ["20251204_alertd_message_limits"])
                #expect(try await migrator.rollback(all: false, force: false) { _ in } == ["20251203_alertd_signing_secrets"])
                #expect(try await migrator.rollback(all: false, force: false) { _ in } == ["20251202_alertd_hand_written_alerts"])
                #expect(try await migrator.rollback(all: false, force: false) { _ in } == ["20251201_alertd_cheaper_repeats"])
                #expect(try await migrator.rollback(all: false, force: false) { _ in } == ["20251130_alertd_destination_health"])
                #expect(try await migrator.rollback(all: false, force: false) { _ in } == ["20251129_alertd_silent_failures"])
            }
            let alertd = try AlertdProcess.start(environment: DispatcherEndToEndTests.environment(database, [
                "ALERTD_SILENT_SWEEP_INTERVAL": "300ms", "ALERTD_INCIDENT_SWEEP_INTERVAL": "300ms",
            ]))
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), webhook: receiver.url("/hooks/older"))
                let run = try await rows.syncRun(integration: integration)
                try await rows.setStatus(of: run, to: "failed")
            }
            let news = try await Self.webhook(receiver, "sync.failure", from: alertd)
            #expect((news["incident"] as? [String: Any])?["kind"] as? String == "run")
            do {
                try await DispatcherEndToEndTests.waitUntil(.seconds(30)) { alertd.output.contains("20251129_alertd_silent_failures") }
            } catch {
                Issue.record("alertd did not name the migration it lacks within 30 s; it \(alertd.isRunning ? "still runs" : "has exited") and printed:\n\(alertd.output)")
            }
            let exit = await alertd.stop()
            #expect(exit.output.contains("the database lacks alertd's silent failures (migration 20251129_alertd_silent_failures)"))
            #expect(exit.output.contains("the database lacks alertd's destination health (migration 20251130_alertd_destination_health)"))
            #expect(!exit.output.contains("lacks alertd's incidents"), "\(exit.output)")
        }
    }
}
