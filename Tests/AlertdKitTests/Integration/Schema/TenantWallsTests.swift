import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// As the data API's users (`anon`; a member and a tenant admin of tenant A, with the JWT claims
/// Supabase sets), every statement tried against tenant B's alerts, attempts, incidents,
/// destinations and alertd's settings, and every alertd function, with the refusal it must meet.
@Suite struct TenantWallsTests {
    /// How a statement must end for a user of another tenant.
    enum Refusal: Equatable {
        /// No privilege, or a row-level security check that failed.
        case denied
        /// It runs, and sees or changes nothing of B's.
        case nothing
        /// A trigger function called directly.
        case notCallable
    }

    struct Attempt: Sendable {
        let sql: String
        let refusal: Refusal
    }

    static func attempts(b: UUID, alertOfB: UUID, incidentOfB: UUID) -> [Attempt] {
        let i = "'\(b.postgresText)'"
        let alert = "'\(alertOfB.postgresText)'"
        let incident = "'\(incidentOfB.postgresText)'"
        return [
            Attempt(sql: "SELECT id FROM integration_alert_history WHERE integration_config_id = \(i)", refusal: .nothing),
            Attempt(sql: "SELECT alert_id FROM integration_alert_attempts WHERE alert_id = \(alert)", refusal: .nothing),
            Attempt(sql: "SELECT id FROM integration_alert_incidents WHERE integration_config_id = \(i)", refusal: .nothing),
            Attempt(sql: "INSERT INTO integration_alert_history (integration_config_id, alert_type, alert_channel, recipients) VALUES (\(i), 'failure', 'email', '{x@example.com}')", refusal: .denied),
            Attempt(sql: "UPDATE integration_alert_history SET delivery_status = 'pending', recipients = '{x@example.com}' WHERE id = \(alert)", refusal: .denied),
            Attempt(sql: "DELETE FROM integration_alert_history WHERE id = \(alert)", refusal: .denied),
            Attempt(sql: "INSERT INTO integration_alert_attempts (alert_id, attempt_number, started_at, duration_ms, outcome) VALUES (\(alert), 9, now(), 1, 'sent')", refusal: .denied),
            Attempt(sql: "DELETE FROM integration_alert_attempts WHERE alert_id = \(alert)", refusal: .denied),
            Attempt(sql: "UPDATE integration_alert_incidents SET resolved_at = now() WHERE id = \(incident)", refusal: .denied),
            Attempt(sql: "DELETE FROM integration_alert_incidents WHERE id = \(incident)", refusal: .denied),
            Attempt(sql: "SELECT destination FROM alertd_destinations", refusal: .denied),
            Attempt(sql: "UPDATE alertd_destinations SET state = 'disabled'", refusal: .denied),
            Attempt(sql: "SELECT * FROM alertd_settings", refusal: .denied),
            Attempt(sql: "UPDATE alertd_settings SET group_wait = interval '1 day'", refusal: .denied),
            Attempt(sql: "SELECT * FROM alertd_endpoint_watch", refusal: .denied),
            Attempt(sql: "UPDATE integration_configs SET alert_emails = '{x@example.com}', configuration_metadata = '{\"alertd\": {\"incidents\": false}}' WHERE id = \(i)", refusal: .nothing),
            Attempt(sql: "SELECT * FROM alertd_integration_settings()", refusal: .denied),
            Attempt(sql: "SELECT alertd_alert_addresses('{x@example.com}')", refusal: .denied),
            Attempt(sql: "SELECT alertd_enqueue_sync_alerts()", refusal: .notCallable),
            Attempt(sql: "SELECT secret FROM alertd_signing_secrets WHERE integration_config_id = \(i)", refusal: .nothing),
            Attempt(sql: "SELECT secret FROM alertd_signing_secrets", refusal: .nothing),
            Attempt(sql: "INSERT INTO alertd_signing_secrets (integration_config_id) VALUES (\(i))", refusal: .denied),
            Attempt(sql: "INSERT INTO alertd_signing_secrets (integration_config_id, secret) VALUES (\(i), 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8G')", refusal: .denied),
            Attempt(sql: "UPDATE alertd_signing_secrets SET secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8G', retires_at = NULL", refusal: .denied),
            Attempt(sql: "DELETE FROM alertd_signing_secrets", refusal: .denied),
            Attempt(sql: "SELECT * FROM alertd_signing_secrets(ARRAY[\(i)]::uuid[])", refusal: .denied),
            Attempt(sql: "SELECT alertd_new_signing_secret()", refusal: .denied),
            Attempt(sql: "SELECT alertd_delete_integration_incidents()", refusal: .notCallable),
        ]
    }

    @Test func noUserOfOneTenantReachesAnothersAlertdRows() async throws {
        try await TestPostgres.withDatabase { database in
            let member = UUID()
            let admin = UUID()
            let (b, alertOfB, incidentOfB) = try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let tenantA = try await rows.tenant("A")
                let tenantB = try await rows.tenant("B")
                try await rows.member(member, of: tenantA)
                try await rows.member(admin, of: tenantA, role: "tenant_admin")
                _ = try await rows.integration(tenant: tenantA, emails: ["a@example.com"])
                let b = try await rows.integration(tenant: tenantB, type: "adp", emails: ["b@example.com"], webhook: "https://hooks.example.com/b")
                try await rows.syncRun(integration: b, status: "failed")
                let alert: UUID = try await connection.query("SELECT id FROM integration_alert_history WHERE integration_config_id = $1 LIMIT 1", [b])[0].decode("id")
                try await connection.query("INSERT INTO integration_alert_attempts (alert_id, attempt_number, started_at, duration_ms, outcome) VALUES ($1, 1, now(), 5, 'sent')", [alert])
                try await connection.query("INSERT INTO alertd_destinations (destination, channel) VALUES ('https://hooks.example.com/b', 'webhook')")
                let incident: UUID = try await connection.query("SELECT id FROM integration_alert_incidents WHERE integration_config_id = $1", [b])[0].decode("id")
                _ = try await SigningSecretStore(connection: connection).show(integration: b)
                return (b, alert, incident)
            }
            let before = try await Self.snapshot(database)
            let attempts = Self.attempts(b: b, alertOfB: alertOfB, incidentOfB: incidentOfB)
            for (name, user) in [("anon", nil), ("member of A", member), ("tenant admin of A", admin)] as [(String, UUID?)] {
                for attempt in attempts {
                    let outcome = try await database.withConnection { connection in
                        if let user {
                            try await connection.actAsAuthenticatedUser(user)
                        } else {
                            try await connection.execute("SET ROLE anon; SELECT set_config('request.jwt.claims', '{\"role\":\"anon\"}', false)")
                        }
                        do {
                            let rows = try await connection.query(attempt.sql)
                            return rows.count == 0 && rows.affectedRows == 0 ? Refusal.nothing : nil
                        } catch let error as PostgresError where error.sqlState == "42501" {
                            return Refusal.denied
                        } catch let error as PostgresError where error.sqlState == "0A000" && error.message.contains("trigger") {
                            return Refusal.notCallable
                        }
                    }
                    // anon has no privilege at all where the others see nothing.
                    let expected = user == nil && attempt.refusal == .nothing ? [Refusal.denied, .nothing] : [attempt.refusal]
                    #expect(outcome.map(expected.contains) == true, "\(name): \(attempt.sql) → \(String(describing: outcome)), expected \(expected)")
                }
            }
            #expect(try await Self.snapshot(database) == before, "B's rows are as they were")
        }
    }

    /// What B owns, as the owner sees it.
    static func snapshot(_ database: TestDatabase) async throws -> [String] {
        try await database.withConnection { connection in
            var lines: [String] = []
            for sql in [
                "SELECT id::text || delivery_status || array_to_string(recipients, ',') AS line FROM integration_alert_history ORDER BY 1",
                "SELECT alert_id::text || attempt_number AS line FROM integration_alert_attempts ORDER BY 1",
                "SELECT id::text || coalesce(resolved_at::text, 'open') AS line FROM integration_alert_incidents ORDER BY 1",
                "SELECT destination || state AS line FROM alertd_destinations ORDER BY 1",
                "SELECT id::text || coalesce(array_to_string(alert_emails, ','), '') || configuration_metadata::text AS line FROM integration_configs ORDER BY 1",
                "SELECT group_wait::text AS line FROM alertd_settings",
                "SELECT integration_config_id::text || secret || coalesce(retires_at::text, 'current') AS line FROM alertd_signing_secrets ORDER BY 1",
            ] {
                lines += try await connection.query(sql).map { try $0.decode("line", as: String.self) }
            }
            return lines
        }
    }

    /// The other side of the wall: a tenant admin reads their own integration's signing secret
    /// through the data API; a member of the same tenant does not.
    @Test func aTenantAdminReadsTheirOwnIntegrationsSigningSecretAndAMemberDoesNot() async throws {
        try await TestPostgres.withDatabase { database in
            let member = UUID()
            let admin = UUID()
            let (integration, secret) = try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let tenant = try await rows.tenant("A")
                try await rows.member(member, of: tenant)
                try await rows.member(admin, of: tenant, role: "tenant_admin")
                let integration = try await rows.integration(tenant: tenant, webhook: "https://hooks.example.com/a")
                let secret = try #require(try await SigningSecretStore(connection: connection).show(integration: integration)?.first?.secret)
                return (integration, secret)
            }
            for (user, sees) in [(admin, [secret]), (member, [])] {
                let read = try await database.withConnection { connection in
                    try await connection.actAsAuthenticatedUser(user)
                    return try await connection.query("SELECT secret FROM alertd_signing_secrets WHERE integration_config_id = $1", [integration])
                        .map { try $0.decode("secret", as: String.self) }
                }
                #expect(read == sees)
            }
        }
    }
}
