import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// alertd's login role (deploy/supabase/alertd-login.sql, a member of alertd_dispatcher): what it
/// may do, what it may not, and that row-level security for API users holds with its rows.
@Suite struct LeastPrivilegeTests {
    static func connectAsAlertd(_ database: TestDatabase) async throws -> PostgresConnection {
        try await PostgresConnection.connect(try PostgresConnectionString(database.alertdURL), logger: TestPostgres.logger)
    }

    /// The SQLSTATE a statement fails with, or nil if it succeeds.
    static func failure(_ connection: PostgresConnection, _ sql: String, _ parameters: [(any PostgresEncodable)?] = []) async -> String? {
        do {
            try await connection.query(sql, parameters)
            return nil
        } catch let error as PostgresError {
            return error.sqlState ?? "?"
        } catch {
            return "?"
        }
    }

    @Test func theRoleHasNoPowerBeyondItsGrants() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { owner in
                let role = try await owner.query(
                    """
                    SELECT r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin,
                           pg_has_role(r.oid, 'alertd_dispatcher', 'USAGE') AS dispatcher
                      FROM pg_roles r WHERE r.rolname = 'alertd'
                    """
                )[0]
                #expect(try role.decode("rolsuper", as: Bool.self) == false)
                #expect(try role.decode("rolbypassrls", as: Bool.self) == false)
                #expect(try role.decode("rolcreaterole", as: Bool.self) == false)
                #expect(try role.decode("rolcreatedb", as: Bool.self) == false)
                #expect(try role.decode("rolcanlogin", as: Bool.self) == true)
                #expect(try role.decode("dispatcher", as: Bool.self) == true)
            }
        }
    }

    @Test func alertdReadsAndRecordsButChangesNothingElse() async throws {
        try await TestPostgres.withDatabase { database in
            let (alert, run, integration) = try await database.withConnection { owner in
                let rows = PlatformRows(owner)
                let integration = try await rows.integration(tenant: try await rows.tenant(), emails: ["ops@example.com"])
                try await owner.query("UPDATE integration_configs SET configuration_metadata = '{\"api_key\": \"payroll-secret\"}' WHERE id = $1", [integration])
                let run = try await rows.syncRun(integration: integration, status: "failed")
                let alert: UUID = try await owner.query("SELECT id FROM integration_alert_history")[0].decode("id")
                return (alert, run, integration)
            }
            let alertd = try await Self.connectAsAlertd(database)
            defer { Task { await alertd.close() } }
            // What delivering takes.
            #expect(try await alertd.query("SELECT id, integration_name, alert_emails, alert_webhook_url FROM integration_configs").count == 1)
            #expect(try await alertd.query("SELECT id, error_message FROM integration_sync_history").count == 1)
            #expect(try await alertd.query("UPDATE integration_alert_history SET locked_by = 'me', locked_until = now() WHERE id = $1 RETURNING id", [alert]).count == 1)
            #expect(await Self.failure(alertd, "INSERT INTO integration_alert_attempts (alert_id, attempt_number, started_at, duration_ms, outcome, worker) VALUES ($1, 1, now(), 5, 'sent', 'me')", [alert]) == nil)
            #expect(await Self.failure(alertd, "INSERT INTO integration_alert_history (integration_config_id, alert_type, alert_channel, recipients, origin) VALUES ($1, 'success', 'email', '{ops@example.com}', 'test')", [integration]) == nil)
            // Destination health: its own table, and the notice of a disabled URL.
            #expect(await Self.failure(alertd, "INSERT INTO alertd_destinations (destination, channel) VALUES ('https://hooks.example.com/a', 'webhook')") == nil)
            #expect(await Self.failure(alertd, "UPDATE alertd_destinations SET state = 'disabled' WHERE destination = 'https://hooks.example.com/a'") == nil)
            #expect(await Self.failure(alertd, "INSERT INTO integration_alert_history (integration_config_id, alert_type, alert_channel, recipients, origin) VALUES ($1, 'webhook_disabled', 'email', '{ops@example.com}', 'destination')", [integration]) == nil)
            #expect(await Self.failure(alertd, "DELETE FROM alertd_destinations") == "42501")
            try await database.withConnection { owner in
                for role in ["authenticated", "anon"] {
                    try await owner.execute("SET ROLE \(role)")
                    #expect(await Self.failure(owner, "SELECT * FROM alertd_destinations") == "42501")
                    try await owner.execute("RESET ROLE")
                }
            }
            // What it must not do: permission denied (42501) or a policy's refusal (42501 too).
            #expect(await Self.failure(alertd, "SELECT configuration_metadata FROM integration_configs") == "42501")
            // Of configuration_metadata, the key "alertd" alone, through the function; API users
            // cannot call it.
            try await database.withConnection { owner in
                try await owner.query("UPDATE integration_configs SET configuration_metadata = configuration_metadata || '{\"alertd\": {\"overdue\": \"off\"}}' WHERE id = $1", [integration])
                try await owner.execute("SET ROLE authenticated")
                #expect(await Self.failure(owner, "SELECT * FROM alertd_integration_settings()") == "42501")
                try await owner.execute("RESET ROLE")
            }
            let settings = try await alertd.query("SELECT integration_config_id, settings::text AS settings FROM alertd_integration_settings()")
            #expect(try settings.map { try $0.decode("settings", as: String.self) } == [#"{"overdue": "off"}"#])
            #expect(await Self.failure(alertd, "SELECT * FROM integration_configs") == "42501")
            #expect(await Self.failure(alertd, "UPDATE integration_sync_history SET status = 'success' WHERE id = $1", [run]) == "42501")
            #expect(await Self.failure(alertd, "UPDATE integration_alert_history SET recipients = '{attacker@example.com}' WHERE id = $1", [alert]) == "42501")
            #expect(await Self.failure(alertd, "DELETE FROM integration_alert_history WHERE id = $1", [alert]) == "42501")
            #expect(await Self.failure(alertd, "DELETE FROM integration_alert_attempts") == "42501")
            #expect(await Self.failure(alertd, "INSERT INTO integration_alert_history (integration_config_id, alert_type, alert_channel, recipients, origin) VALUES ($1, 'failure', 'email', '{x@example.com}', 'trigger')", [integration]) == "42501")
            #expect(await Self.failure(alertd, "SELECT * FROM tenant_users") == "42501")
            #expect(await Self.failure(alertd, "CREATE TABLE alertd_was_here (x int)") == "42501")
        }
    }

    @Test func apiUsersStillSeeOnlyTheirTenantsAlertsWithAlertdsRowsInTheTable() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            let world = try await database.withConnection { try await RowLevelSecurityTests.world($0) }
            let integration = try await database.withConnection { owner in
                try await owner.query("UPDATE integration_configs SET alert_webhook_url = $2 WHERE id = $1", [world.integrationA, receiver.url("/hooks/a")])
                return world.integrationA
            }
            // alertd, as its role, writes a test alert and its attempt for tenant A.
            let result = try await TestProcess.alertd(["--test-notification", "--integration", integration.postgresText], environment: [
                "ALERTD_DATABASE_URL": database.alertdURL,
                "ALERTD_WEBHOOK_ALLOW": "127.0.0.1",
                "ALERTD_TEMPLATES_DIR": TestPostgres.packageRoot.appending(path: "templates").path,
            ])
            #expect(result.status == 0, "\(result.allOutput)")
            let alertdRows: [UUID] = try await database.withConnection { owner in
                try await owner.query("SELECT id FROM integration_alert_history WHERE origin = 'test'").map { try $0.decode("id") }
            }
            #expect(alertdRows.count == 1)
            let alertsA = Set(world.alertsA + alertdRows)
            #expect(try await RowLevelSecurityTests.visibleAlerts(database, as: world.memberOfA) == alertsA)
            #expect(try await RowLevelSecurityTests.visibleAttempts(database, as: world.memberOfA) == alertsA)
            #expect(try await RowLevelSecurityTests.visibleAlerts(database, as: world.stranger).isEmpty)
            #expect(try await RowLevelSecurityTests.visibleAttempts(database, as: world.stranger).isEmpty)
            #expect(try await RowLevelSecurityTests.visibleAlerts(database, as: world.hostAdmin) == alertsA.union(world.alertsB))
        }
    }
}
