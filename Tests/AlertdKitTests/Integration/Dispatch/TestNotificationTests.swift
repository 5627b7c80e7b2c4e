import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// `alertd --test-notification`, run as a user would.
@Suite struct TestNotificationTests {
    @Test func anIntegrationsChannelsGetATestAlertThatIsAudited() async throws {
        let receiver = try await WebhookReceiver.start(verifyingWith: DispatcherEndToEndTests.secret)
        defer { receiver.stop() }
        let sink = try await SMTPSink.start()
        defer { sink.stop() }
        try await TestPostgres.withDatabase { database in
            let integration = try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                return try await rows.integration(tenant: try await rows.tenant(), name: "ADP", emails: ["ops@example.com"], webhook: receiver.url("/hooks/test"))
            }
            let result = try await TestProcess.alertd(["--test-notification", "--integration", integration.postgresText], environment: [
                "ALERTD_DATABASE_URL": database.alertdURL,
                "ALERTD_WEBHOOK_SECRET": DispatcherEndToEndTests.secret,
                "ALERTD_WEBHOOK_ALLOW": "127.0.0.1",
                "ALERTD_SMTP_URL": "smtp://127.0.0.1:\(sink.port)",
                "ALERTD_SMTP_FROM": "alertd@example.com",
                "ALERTD_SMTP_TLS": "none",
                "ALERTD_TEMPLATES_DIR": TestPostgres.packageRoot.appending(path: "templates").path,
            ])
            #expect(result.status == 0, "\(result.allOutput)")
            #expect(result.standardOutput.contains("email ops@example.com: sent"))
            #expect(result.standardOutput.contains("webhook \(receiver.url("/hooks/test")): sent (HTTP 200)"))
            let request = try #require(try receiver.requests().first)
            #expect(request.signature_valid == true)
            #expect(request.body.contains(#""type": "sync.test""#))
            let message = try #require(try sink.messages().first)
            #expect(message.data.contains("Subject: =?UTF-8?B?") || message.data.contains("Subject: [Test]"))
            let rows = try await database.withConnection { connection in
                try await connection.query(
                    "SELECT a.alert_channel, a.origin, a.delivery_status, t.outcome FROM integration_alert_history a JOIN integration_alert_attempts t ON t.alert_id = a.id ORDER BY 1"
                ).map { "\(try $0.decode("alert_channel", as: String.self)) \(try $0.decode("origin", as: String.self)) \(try $0.decode("delivery_status", as: String.self)) \(try $0.decode("outcome", as: String.self))" }
            }
            #expect(rows == ["email test sent sent", "webhook test sent sent"])
        }
    }

    @Test func targetsOnTheCommandLineNeedNoDatabaseAndAFailureExitsNonZero() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        let result = try await TestProcess.alertd(
            ["--test-notification", "--webhook-url", receiver.url("/hooks/ok"), "--webhook-url", receiver.url("/codes/410/gone")],
            environment: ["ALERTD_TEMPLATES_DIR": TestPostgres.packageRoot.appending(path: "templates").path, "ALERTD_WEBHOOK_ALLOW": "127.0.0.1"]
        )
        #expect(result.status == 1)
        #expect(result.standardOutput.contains("/hooks/ok: sent (HTTP 200)"))
        #expect(result.standardOutput.contains("/codes/410/gone: failed (HTTP 410)"))
        #expect(try receiver.requests().count == 2)
    }

    @Test func anUnknownIntegrationIsAClearError() async throws {
        try await TestPostgres.withDatabase { database in
            let result = try await TestProcess.alertd(["--test-notification", "--integration", UUID().uuidString], environment: [
                "ALERTD_DATABASE_URL": database.alertdURL,
                "ALERTD_TEMPLATES_DIR": TestPostgres.packageRoot.appending(path: "templates").path,
            ])
            #expect(result.status == 1)
            #expect(result.standardError.contains("There is no integration"))
        }
    }
}
