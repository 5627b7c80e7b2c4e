@testable import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Logging
import Synchronization
import Testing

/// Chat formats through `alertd run` and `alertd --test-notification`, against a receiver that
/// checks each request by the service's documented rules and answers as the service does.
@Suite struct ChatEndToEndTests {
    /// An integration whose webhook URL is `url`, named `format` in its settings.
    static func integration(_ connection: PostgresConnection, url: String, format: String) async throws -> UUID {
        let rows = PlatformRows(connection)
        let integration = try await rows.integration(tenant: try await rows.tenant(), name: "Paycom <@channel> & co", webhook: url)
        try await connection.query(
            "UPDATE integration_configs SET configuration_metadata = jsonb_build_object('alertd', jsonb_build_object('webhook_format', $2::text)) WHERE id = $1",
            [integration, format]
        )
        return integration
    }

    @Test func aSlackCompatibleURLGetsASlackMessageSlackWouldAccept() async throws {
        let slack = try await ChatReceiver.start(service: "slack")
        defer { slack.stop() }
        try await TestPostgres.withDatabase { database in
            let (live, archived) = try await database.withConnection { connection in
                let live = try await Self.integration(connection, url: slack.url("/services/T000/B000/live"), format: "mattermost")
                let archived = try await Self.integration(connection, url: slack.url("/services/archived/B001/gone"), format: "slack")
                for integration in [live, archived] {
                    let run = try await PlatformRows(connection).syncRun(integration: integration)
                    try await connection.query("UPDATE integration_sync_history SET status = 'failed', error_message = '<!everyone> token ``` expired & gone' WHERE id = $1", [run])
                }
                return (live, archived)
            }
            let alertd = try AlertdProcess.start(environment: DispatcherEndToEndTests.environment(database, ["ALERTD_LINK_BASE_URL": "https://etl.example.com"]))
            let requests = try await slack.waitForRequests(2)
            for request in requests {
                #expect(request.problems.isEmpty, "Slack would refuse it: \(request.problems)")
                #expect(request.headers["webhook-signature"] == nil && request.headers["content-type"] == "application/json")
            }
            let body = try #require(requests.first { $0.path.contains("/live") }?.body)
            #expect(body.contains("The employees sync of Paycom &lt;@channel&gt; &amp; co failed."))
            #expect(body.contains("&lt;!everyone&gt; token"))
            try await DispatcherEndToEndTests.waitUntil(.seconds(30)) {
                try await database.withConnection { connection in
                    try await connection.query("SELECT count(*)::int AS n FROM integration_alert_history WHERE delivery_status <> 'pending'")[0].decode("n", as: Int.self) == 2
                }
            }
            let outcomes = try await database.withConnection { connection in
                try await connection.query("SELECT integration_config_id, delivery_status, delivery_error FROM integration_alert_history")
            }
            for row in outcomes {
                let integration: UUID = try row.decode("integration_config_id")
                let status: String = try row.decode("delivery_status")
                if integration == live { #expect(status == "sent") }
                if integration == archived {
                    #expect(status == "failed")
                    #expect(try row.decode("delivery_error", as: String?.self)?.contains("channel_is_archived") == true)
                }
            }
            let disabled: String = try await database.withConnection { connection in
                try await connection.query("SELECT state FROM alertd_destinations WHERE destination = $1", [slack.url("/services/archived/B001/gone")])[0].decode("state")
            }
            #expect(disabled == "disabled", "Slack's channel_is_archived disables the URL")
            await alertd.stopExpectingExitZero()

            // The test notification shows what arrived.
            let test = try await TestProcess.alertd(["--test-notification", "--integration", live.postgresText], environment: [
                "ALERTD_DATABASE_URL": database.alertdURL, "ALERTD_WEBHOOK_ALLOW": "127.0.0.1",
                "ALERTD_TEMPLATES_DIR": TestPostgres.packageRoot.appending(path: "templates").path,
            ])
            #expect(test.status == 0, "\(test.allOutput)")
            #expect(test.standardOutput.contains("The slack message:"))
            #expect(test.standardOutput.contains("A test notification from alertd"))
            #expect(try slack.requests().last?.problems.isEmpty == true)
        }
    }

    @Test func aDiscordWebhookGetsAnEmbedDiscordWouldAcceptAndItsRateLimitIsHonoured() async throws {
        let discord = try await ChatReceiver.start(service: "discord")
        defer { discord.stop() }
        try await TestPostgres.withDatabase { database in
            let paths = ["/api/webhooks/1/live", "/api/webhooks/limited/2/busy", "/api/webhooks/unknown/3/deleted"]
            try await database.withConnection { connection in
                for path in paths {
                    let integration = try await Self.integration(connection, url: discord.url(path), format: "discord")
                    let run = try await PlatformRows(connection).syncRun(integration: integration)
                    try await connection.query("UPDATE integration_sync_history SET status = 'failed', error_message = '@everyone <@&42> token expired' WHERE id = $1", [run])
                }
            }
            let alertd = try AlertdProcess.start(environment: DispatcherEndToEndTests.environment(database))
            // One each, and the rate-limited one again after Discord's retry_after.
            let requests = try await discord.waitForRequests(4)
            for request in requests {
                #expect(request.problems.isEmpty, "Discord would refuse it: \(request.problems)")
            }
            let limited = requests.filter { $0.path.contains("/limited/") }.map(\.time)
            #expect(limited.count == 2 && limited[1] - limited[0] >= 0.5, "retried after retry_after: \(limited)")
            try await DispatcherEndToEndTests.waitUntil(.seconds(30)) {
                try await database.withConnection { connection in
                    try await connection.query("SELECT count(*)::int AS n FROM integration_alert_history WHERE delivery_status <> 'pending'")[0].decode("n", as: Int.self) == 3
                }
            }
            let statuses = try await database.withConnection { connection in
                try await connection.query("SELECT recipients[1] AS url, delivery_status FROM integration_alert_history").reduce(into: [String: String]()) {
                    $0[try $1.decode("url")] = try $1.decode("delivery_status")
                }
            }
            #expect(statuses == [discord.url(paths[0]): "sent", discord.url(paths[1]): "sent", discord.url(paths[2]): "failed"])
            let state: String = try await database.withConnection { connection in
                try await connection.query("SELECT state FROM alertd_destinations WHERE destination = $1", [discord.url(paths[2])])[0].decode("state")
            }
            #expect(state == "disabled", "Discord's Unknown Webhook disables the URL")
            await alertd.stopExpectingExitZero()
        }
    }

    /// Teams' Workflows and Google Chat: one live URL, one the service says is gone, one it
    /// rate-limits once; every message as the service documents it (Teams' card checked against
    /// Microsoft's Adaptive Card schema).
    @Test(arguments: [
        ("teams", ["/workflows/1/triggers/manual/paths/invoke", "/workflows/limited/2/triggers/manual/paths/invoke", "/workflows/deleted/3/triggers/manual/paths/invoke"]),
        ("google_chat", ["/v1/spaces/AAAA1/messages", "/v1/spaces/limited/messages", "/v1/spaces/deleted/messages"]),
    ])
    func aWorkflowsOrGoogleChatWebhookGetsItsCardAndItsAnswersAreUnderstood(service: String, paths: [String]) async throws {
        let receiver = try await ChatReceiver.start(service: service)
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                for path in paths {
                    let integration = try await Self.integration(connection, url: receiver.url(path), format: service)
                    let run = try await PlatformRows(connection).syncRun(integration: integration)
                    try await connection.query("UPDATE integration_sync_history SET status = 'failed', error_message = '<users/all> **token** expired & [gone](http://x)' WHERE id = $1", [run])
                }
            }
            let alertd = try AlertdProcess.start(environment: DispatcherEndToEndTests.environment(database, ["ALERTD_LINK_BASE_URL": "https://etl.example.com"]))
            // One each, and the rate-limited one again.
            let requests = try await receiver.waitForRequests(4)
            for request in requests {
                #expect(request.problems.isEmpty, "\(service) would refuse it: \(request.problems)")
                #expect(request.headers["webhook-signature"] == nil && request.headers["content-type"] == "application/json")
            }
            try await DispatcherEndToEndTests.waitUntil(.seconds(30)) {
                try await database.withConnection { connection in
                    try await connection.query("SELECT count(*)::int AS n FROM integration_alert_history WHERE delivery_status <> 'pending'")[0].decode("n", as: Int.self) == 3
                }
            }
            let rows = try await database.withConnection { connection in
                try await connection.query("SELECT recipients[1] AS url, delivery_status, delivery_error FROM integration_alert_history")
            }
            var statuses: [String: String] = [:]
            for row in rows {
                let url: String = try row.decode("url")
                statuses[url] = try row.decode("delivery_status")
                if url.contains("/deleted/") { #expect(try row.decode("delivery_error", as: String?.self)?.contains("does not exist any more") == true) }
            }
            #expect(statuses == [receiver.url(paths[0]): "sent", receiver.url(paths[1]): "sent", receiver.url(paths[2]): "failed"])
            let state: String = try await database.withConnection { connection in
                try await connection.query("SELECT state FROM alertd_destinations WHERE destination = $1", [receiver.url(paths[2])])[0].decode("state")
            }
            #expect(state == "disabled", "the service's 404 disables the URL")
            await alertd.stopExpectingExitZero()
        }
    }

    /// An integration naming a format alertd does not know: its URL decides, and the warning is
    /// written once, not at every read of the settings.
    @Test func anUnknownFormatIsWarnedOfOnceAndTheURLDecides() async throws {
        try await TestPostgres.withDatabase { database in
            let integration = try await database.withConnection { connection in
                try await Self.integration(connection, url: "https://hooks.slack.com/services/T/B/X", format: "carrier-pigeon")
            }
            let lines = Mutex<[String]>([])
            let logger = Logger(label: "test") { _ in AlertdLogHandler(label: "test", format: .logfmt) { line in lines.withLock { $0.append(line) } } }
            let formats = IntegrationOverrides(logger: logger)
            let connection = try await PostgresConnection.connect(try PostgresConnectionString(database.alertdURL), logger: TestPostgres.logger)
            let start = ContinuousClock.now
            for read in 0..<3 {
                await formats.refresh(connection, now: start + IntegrationOverrides.refreshInterval * read)
            }
            await connection.close()
            let warnings = lines.withLock { $0 }.filter { $0.contains("does not know") }
            #expect(warnings.count == 1, "\(lines.withLock { $0 })")
            #expect(warnings.first?.contains("\(integration)") == true && warnings.first?.contains("carrier-pigeon") == true)
            let alert = ClaimedAlert(
                id: UUID(), type: .failure, channel: .webhook, origin: .trigger, recipients: ["https://hooks.slack.com/services/T/B/X"], attempt: 1, maxAttempts: 1,
                createdAt: nil, integration: .init(id: integration, name: "x", type: "x", environment: "x", tenantID: UUID()), sync: nil
            )
            #expect(formats.apply([alert]).first?.webhookFormat == nil, "no format named: the URL decides")
        }
    }
}
