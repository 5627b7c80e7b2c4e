import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// Grouping through a running alertd: an integration's first failing endpoint is news at once;
/// the endpoints that fail within the group interval after it go out together, one message per
/// channel listing them, each alert recorded sent.
@Suite struct GroupingEndToEndTests {
    @Test func endpointsFailingTogetherGoOutAsOneMessagePerChannelAfterTheFirst() async throws {
        let receiver = try await WebhookReceiver.start(verifyingWith: DispatcherEndToEndTests.secret)
        defer { receiver.stop() }
        let sink = try await SMTPSink.start()
        defer { sink.stop() }
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: DispatcherEndToEndTests.environment(database, [
                // Long enough that the test's writers, delayed by a loaded machine, still fail
                // within one interval of each other (with 3 s, the whole suite's load split them).
                "ALERTD_GROUP_INTERVAL": "8s",
                "ALERTD_SMTP_URL": "smtp://127.0.0.1:\(sink.port)", "ALERTD_SMTP_FROM": "alertd@example.com", "ALERTD_SMTP_TLS": "none",
            ]))
            let failedAt = Date().timeIntervalSince1970
            try await database.withConnection { connection in
                // alertd writes its defaults for the trigger at start.
                try await DispatcherEndToEndTests.waitUntil {
                    try await connection.query("SELECT group_interval = interval '8 seconds' AS written FROM alertd_settings")[0].decode("written")
                }
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), emails: ["ops@example.com"], webhook: receiver.url("/hooks/group"))
                for endpoint in ["employees", "payroll", "benefits"] {
                    let run = try await rows.syncRun(integration: integration, endpoint: endpoint)
                    try await connection.query("UPDATE integration_sync_history SET status = 'failed', error_message = $2 WHERE id = $1", [run, "token expired (\(endpoint))"])
                }
            }

            // The webhooks: the first endpoint alone, then one message for the other two.
            let webhooks = try await receiver.waitForRequests(2, timeout: .seconds(30))
            let bodies = try webhooks.map { try IncidentEndToEndTests.json($0) }
            let first = try #require(bodies[0]["data"] as? [String: Any])
            #expect((first["sync"] as? [String: Any])?["endpoint"] as? String == "employees")
            #expect(first["group"] is NSNull)
            let second = try #require(bodies[1]["data"] as? [String: Any])
            let group = try #require(second["group"] as? [[String: Any]])
            #expect(group.map { $0["endpoint"] as? String } == ["payroll", "benefits"])
            #expect(group.map { $0["error_message"] as? String } == ["token expired (payroll)", "token expired (benefits)"])
            #expect((second["alert"] as? [String: Any])?["id"] as? String == group[0]["alert_id"] as? String)
            #expect(webhooks[1].headers["webhook-id"] == "msg_" + (group[0]["alert_id"] as? String ?? ""))
            #expect(webhooks.allSatisfy { $0.signature_valid == true })
            // Held for the group interval after the first was due.
            #expect(webhooks[1].time - failedAt > 7.9, "\(webhooks[1].time - failedAt) s")

            // The email: the same two messages.
            let mails = try await sink.waitForMessages(2, timeout: .seconds(30))
            #expect(mails.count == 2)

            // Nothing more, and every alert recorded sent, each with its attempt; the carried
            // ones say which alert carried them.
            try await Task.sleep(for: .seconds(4))
            #expect(try receiver.requests().count == 2)
            #expect(try sink.messages().count == 2)
            try await database.withConnection { connection in
                let alerts = try await connection.query(
                    """
                    SELECT a.alert_channel, h.endpoint_name, a.delivery_status, a.subject, a.message,
                           a.metadata -> 'group_message' ->> 'carried_by' AS carried_by,
                           (SELECT count(*)::int FROM integration_alert_attempts t WHERE t.alert_id = a.id) AS attempts
                      FROM integration_alert_history a JOIN integration_sync_history h ON h.id = a.sync_history_id
                     ORDER BY a.alert_channel, h.endpoint_name
                    """
                )
                #expect(alerts.count == 6)
                for alert in alerts {
                    let endpoint: String = try alert.decode("endpoint_name")
                    let channel: String = try alert.decode("alert_channel")
                    #expect(try alert.decode("delivery_status", as: String.self) == "sent", "\(channel) \(endpoint)")
                    #expect(try alert.decode("attempts", as: Int.self) == 1)
                    let carriedBy: String? = try alert.decode("carried_by")
                    #expect((carriedBy == nil) == (endpoint == "employees"), "\(channel) \(endpoint)")
                    if channel == "email" && endpoint != "employees" {
                        #expect(try alert.decode("subject", as: String?.self) == "[alertd] Sync failed: Paycom · payroll and 1 more")
                        #expect(try alert.decode("message", as: String?.self)?.contains("This message also carries 1 more endpoint of Paycom") == true)
                    }
                }
            }
            await alertd.stopExpectingExitZero()
        }
    }
}
