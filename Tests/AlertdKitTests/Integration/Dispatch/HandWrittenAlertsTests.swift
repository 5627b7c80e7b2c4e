import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// Alert rows a tenant's admin writes through the data API (as Supabase does it: role
/// `authenticated`, the user's id in the JWT claims): alertd sends them only to the addresses and
/// URL their integration names, never their own subject or message, and no tenant can pass one off
/// as the trigger's.
@Suite struct HandWrittenAlertsTests {
    @Test func aTenantAdminCannotMakeAlertdSendAnywhereElse() async throws {
        let receiver = try await WebhookReceiver.start(verifyingWith: DispatcherEndToEndTests.secret)
        let sink = try await SMTPSink.start()
        defer {
            receiver.stop()
            sink.stop()
        }
        try await TestPostgres.withDatabase { database in
            let admin = UUID()
            let integration = try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let tenant = try await rows.tenant("Tenant A")
                try await rows.member(admin, of: tenant, role: "tenant_admin")
                return try await rows.integration(tenant: tenant, emails: ["ops@example.com"], webhook: receiver.url("/tenant-a"))
            }
            let written = try await database.withConnection { connection in
                try await connection.actAsAuthenticatedUser(admin)
                func insert(_ channel: String, _ recipients: [String]) async throws -> UUID {
                    try await connection.query(
                        """
                        INSERT INTO integration_alert_history (integration_config_id, alert_type, alert_channel, recipients, subject, message)
                        VALUES ($1, 'failure', $2, $3::text[], 'EVIL SUBJECT', 'EVIL MESSAGE') RETURNING id
                        """,
                        [integration, channel, recipients]
                    )[0].decode("id")
                }
                // Passing a row off as the trigger's is refused by the policy itself.
                let forged = await #expect(throws: PostgresError.self) {
                    try await connection.query(
                        "INSERT INTO integration_alert_history (integration_config_id, alert_type, alert_channel, recipients, origin) VALUES ($1, 'failure', 'email', '{victim@elsewhere.example}', 'trigger')",
                        [integration]
                    )
                }
                #expect(forged?.sqlState == "42501")
                return (
                    victim: try await insert("email", ["victim@elsewhere.example"]),
                    mixed: try await insert("email", ["ops@example.com", "victim2@elsewhere.example"]),
                    attacker: try await insert("webhook", ["http://127.0.0.1:\(receiver.port)/attacker/collect"]),
                    own: try await insert("email", ["OPS@example.com"]),
                    ownHook: try await insert("webhook", [receiver.url("/tenant-a")])
                )
            }
            let alertd = try AlertdProcess.start(environment: DispatcherEndToEndTests.environment(database, [
                "ALERTD_SMTP_URL": "smtp://127.0.0.1:\(sink.port)", "ALERTD_SMTP_TLS": "none", "ALERTD_SMTP_FROM": "alerts@platform.example",
            ]))
            try await DispatcherEndToEndTests.waitUntil(.seconds(30)) {
                try await DispatcherEndToEndTests.statuses(database).allSatisfy { $0 != "pending" }
            }
            let outcomes = try await database.withConnection { connection in
                try await connection.query(
                    "SELECT id, delivery_status, coalesce(delivery_error, '') AS error, (SELECT count(*)::int FROM integration_alert_attempts t WHERE t.alert_id = a.id AND t.outcome = 'sent') AS sent FROM integration_alert_history a"
                ).reduce(into: [UUID: (status: String, error: String, sent: Int)]()) { result, row in
                    result[try row.decode("id")] = (try row.decode("delivery_status"), try row.decode("error"), try row.decode("sent"))
                }
            }
            for refused in [written.victim, written.mixed, written.attacker] {
                #expect(outcomes[refused]?.status == "failed", "\(String(describing: outcomes[refused]))")
                #expect(outcomes[refused]?.error.contains("written by hand") == true, "\(String(describing: outcomes[refused]))")
                #expect(outcomes[refused]?.sent == 0)
            }
            #expect(outcomes[written.victim]?.error.contains("victim@elsewhere.example") == true)
            #expect(outcomes[written.own]?.status == "sent")
            #expect(outcomes[written.ownHook]?.status == "sent")

            let mail = try await sink.waitForMessages(1)
            #expect(mail.flatMap(\.rcpt_tos).map { $0.lowercased() } == ["ops@example.com"])
            let requests = try receiver.requests()
            #expect(requests.map(\.path) == ["/tenant-a"])
            // The row's own subject and message never reach a message: the templates write it.
            for text in mail.map(\.data) + requests.map(\.body) {
                #expect(!text.contains("EVIL"))
            }
            await alertd.stop()
        }
    }
}
