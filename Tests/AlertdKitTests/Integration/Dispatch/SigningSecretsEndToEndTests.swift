import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// Each integration's webhooks are signed with its own secret (`alertd_signing_secrets`), checked
/// by a receiver that verifies the Standard Webhooks way on its own (deploy/dev/webhook-receiver.py).
@Suite struct SigningSecretsEndToEndTests {
    static func environment(_ database: TestDatabase, _ extra: [String: String] = [:]) -> [String: String] {
        [
            "ALERTD_DATABASE_URL": database.alertdURL,
            "ALERTD_WEBHOOK_ALLOW": "127.0.0.1",
            "ALERTD_POLL_INTERVAL": "1s",
            "ALERTD_LOG_LEVEL": "info",
        ].merging(extra) { $1 }
    }

    /// Tenant A's and tenant B's integrations, each with its webhook URL.
    static func integrations(_ database: TestDatabase, a: String, b: String) async throws -> (a: UUID, b: UUID) {
        try await database.withConnection { connection in
            let rows = PlatformRows(connection)
            let a = try await rows.integration(tenant: try await rows.tenant("A"), name: "A", webhook: a)
            let b = try await rows.integration(tenant: try await rows.tenant("B"), name: "B", webhook: b)
            return (a, b)
        }
    }

    static func fail(_ database: TestDatabase, _ integration: UUID, endpoint: String) async throws {
        try await database.withConnection { connection in
            let run = try await PlatformRows(connection).syncRun(integration: integration, endpoint: endpoint)
            try await connection.query("UPDATE integration_sync_history SET status = 'failed', error_message = 'down' WHERE id = $1", [run])
        }
    }

    static func secrets(_ database: TestDatabase, _ integration: UUID) async throws -> [String] {
        try await database.withConnection { connection in
            try #require(try await SigningSecretStore(connection: connection).show(integration: integration)).map(\.secret)
        }
    }

    static func signatureCount(_ request: WebhookReceiver.Request) -> Int {
        (request.headers["webhook-signature"] ?? "").split(separator: " ").filter { $0.hasPrefix("v1,") }.count
    }

    @Test func eachIntegrationSignsWithItsOwnSecretAndARotationSignsWithBothForItsOverlap() async throws {
        try await TestPostgres.withDatabase { database in
            // The secrets exist before the first webhook (alertd secrets show creates them), so
            // that each receiver can be given its own.
            let placeholder = "http://127.0.0.1:9/none"
            let (a, b) = try await Self.integrations(database, a: placeholder, b: placeholder)
            let secretA = try #require(try await Self.secrets(database, a).first)
            let secretB = try #require(try await Self.secrets(database, b).first)
            #expect(secretA != secretB)
            #expect(secretA.hasPrefix("whsec_") && Data(base64Encoded: String(secretA.dropFirst(6)))?.count == 32)
            let receiverA = try await WebhookReceiver.start(secrets: [secretA, secretB])
            defer { receiverA.stop() }
            let receiverB = try await WebhookReceiver.start(secrets: [secretB, secretA])
            defer { receiverB.stop() }
            try await database.withConnection { connection in
                try await connection.query("UPDATE integration_configs SET alert_webhook_url = $2 WHERE id = $1", [a, receiverA.url("/a")])
                try await connection.query("UPDATE integration_configs SET alert_webhook_url = $2 WHERE id = $1", [b, receiverB.url("/b")])
            }

            var alertd = try AlertdProcess.start(environment: Self.environment(database))
            try await Self.fail(database, a, endpoint: "employees")
            try await Self.fail(database, b, endpoint: "employees")
            let toA = try #require(try await receiverA.waitForRequests(1).first)
            let toB = try #require(try await receiverB.waitForRequests(1).first)
            // Each verifies with its own integration's secret and not with the other tenant's.
            #expect(toA.signatures_valid == [true, false])
            #expect(toB.signatures_valid == [true, false])
            #expect(Self.signatureCount(toA) == 1)
            await alertd.stopExpectingExitZero(signal: SIGTERM)
            #expect(!alertd.output.contains(secretA) && !alertd.output.contains(secretB))

            // A rotation with an overlap, as alertd's own role (alertd secrets rotate): both secrets
            // sign, the new one first.
            let asAlertd = try await PostgresConnection.connect(try PostgresConnectionString(database.alertdURL), logger: TestPostgres.logger)
            let rotated = try #require(try await SigningSecretStore(connection: asAlertd).rotate(integration: a, overlap: .seconds(3600)))
            await asAlertd.close()
            #expect(rotated.count == 2 && rotated[1].secret == secretA && rotated[0].retiresAt == nil && rotated[1].retiresAt != nil)
            let newA = rotated[0].secret
            let receiverA2 = try await WebhookReceiver.start(secrets: [newA, secretA])
            defer { receiverA2.stop() }
            try await database.withConnection { connection in
                try await connection.query("UPDATE integration_configs SET alert_webhook_url = $2 WHERE id = $1", [a, receiverA2.url("/a")])
            }
            alertd = try AlertdProcess.start(environment: Self.environment(database))
            try await Self.fail(database, a, endpoint: "payroll")
            let during = try #require(try await receiverA2.waitForRequests(1).first)
            #expect(during.signatures_valid == [true, true])
            #expect(Self.signatureCount(during) == 2)
            await alertd.stopExpectingExitZero(signal: SIGTERM)

            // --overlap 0 (a leak): only the newest signs, at once.
            let afterLeak = try await database.withConnection { connection in
                try #require(try await SigningSecretStore(connection: connection).rotate(integration: a, overlap: .zero))
            }
            #expect(afterLeak.count == 1 && afterLeak[0].secret != newA && afterLeak[0].secret != secretA)
        }
    }

    @Test func theSharedSecretSignsBesideTheIntegrationsOnlyWhileMoving() async throws {
        let shared = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        try await TestPostgres.withDatabase { database in
            let (a, _) = try await Self.integrations(database, a: "http://127.0.0.1:9/none", b: "http://127.0.0.1:9/none")
            let secretA = try #require(try await Self.secrets(database, a).first)
            let receiver = try await WebhookReceiver.start(secrets: [secretA, shared])
            defer { receiver.stop() }
            try await database.withConnection { connection in
                try await connection.query("UPDATE integration_configs SET alert_webhook_url = $2 WHERE id = $1", [a, receiver.url("/a")])
            }
            // With ALERTD_WEBHOOK_SECRET and nothing else said: both, and a warning.
            var alertd = try AlertdProcess.start(environment: Self.environment(database, ["ALERTD_WEBHOOK_SECRET": shared]))
            try await Self.fail(database, a, endpoint: "employees")
            #expect(try await receiver.waitForRequests(1)[0].signatures_valid == [true, true])
            await alertd.stopExpectingExitZero(signal: SIGTERM)
            #expect(alertd.output.contains("can forge signatures until ALERTD_WEBHOOK_SIGNING=integration"))
            #expect(!alertd.output.contains(shared) && !alertd.output.contains(secretA))

            // Moved: the integration's own alone.
            alertd = try AlertdProcess.start(environment: Self.environment(database, ["ALERTD_WEBHOOK_SECRET": shared, "ALERTD_WEBHOOK_SIGNING": "integration"]))
            try await Self.fail(database, a, endpoint: "payroll")
            #expect(try await receiver.waitForRequests(2)[1].signatures_valid == [true, false])
            await alertd.stopExpectingExitZero(signal: SIGTERM)

            // A single-tenant installation: the shared secret alone.
            alertd = try AlertdProcess.start(environment: Self.environment(database, ["ALERTD_WEBHOOK_SECRET": shared, "ALERTD_WEBHOOK_SIGNING": "shared"]))
            try await Self.fail(database, a, endpoint: "departments")
            #expect(try await receiver.waitForRequests(3)[2].signatures_valid == [false, true])
            await alertd.stopExpectingExitZero(signal: SIGTERM)
        }
    }

    @Test func aTestNotificationIsSignedWithItsIntegrationsSecret() async throws {
        try await TestPostgres.withDatabase { database in
            let (a, _) = try await Self.integrations(database, a: "http://127.0.0.1:9/none", b: "http://127.0.0.1:9/none")
            let secretA = try #require(try await Self.secrets(database, a).first)
            let receiver = try await WebhookReceiver.start(secrets: [secretA])
            defer { receiver.stop() }
            try await database.withConnection { connection in
                try await connection.query("UPDATE integration_configs SET alert_webhook_url = $2 WHERE id = $1", [a, receiver.url("/a")])
            }
            let result = try await TestProcess.alertd(["--test-notification", "--integration", a.postgresText], environment: Self.environment(database, [
                "ALERTD_TEMPLATES_DIR": TestPostgres.packageRoot.appending(path: "templates").path,
            ]))
            #expect(result.status == 0, "\(result.allOutput)")
            #expect(try receiver.requests().first?.signatures_valid == [true])
        }
    }

    @Test func anIntegrationWithAWebhookURLGetsItsSecretBeforeItsFirstWebhook() async throws {
        try await TestPostgres.withDatabase { database in
            let (a, b) = try await Self.integrations(database, a: "https://hooks.example.com/a", b: "")
            let alertd = try AlertdProcess.start(environment: Self.environment(database))
            try await DispatcherEndToEndTests.waitUntil {
                try await database.withConnection { connection in
                    try await connection.query("SELECT count(*)::int AS n FROM alertd_signing_secrets WHERE integration_config_id = $1", [a])[0].decode("n", as: Int.self) == 1
                }
            }
            let forB = try await database.withConnection { connection in
                try await connection.query("SELECT count(*)::int AS n FROM alertd_signing_secrets WHERE integration_config_id = $1", [b])[0].decode("n", as: Int.self)
            }
            #expect(forB == 0)
            await alertd.stopExpectingExitZero(signal: SIGTERM)
        }
    }
}
