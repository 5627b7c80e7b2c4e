import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// An integration's message limit, as `alertd run` keeps it: the alerts past it are held and
/// audited, and one notice per window says how many.
@Suite struct MessageLimitsEndToEndTests {
    /// A loop: a receiver that writes a failed run back for each webhook it gets (incidents off
    /// for the integration, so each failed run sends). The limit (3 in each 20 s window) ends it:
    /// three webhooks go, the next failures are held, and when the window is over one notice
    /// says how many.
    @Test func aLoopEndsAtTheLimitAndOneNoticeSaysHowManyWereHeld() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            let integration = try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), name: "Looping", webhook: receiver.url("/loop"))
                try await connection.query(
                    #"UPDATE integration_configs SET configuration_metadata = '{"alertd": {"message_limit": 3, "incidents": false}}' WHERE id = $1"#, [integration]
                )
                return integration
            }
            func fail(_ n: Int) async throws {
                try await database.withConnection { connection in
                    let run = try await PlatformRows(connection).syncRun(integration: integration, endpoint: "employees")
                    try await connection.query("UPDATE integration_sync_history SET status = 'failed', error_message = $2 WHERE id = $1", [run, "loop \(n)"])
                }
            }
            func statuses() async throws -> [String] {
                try await database.withConnection { connection in
                    try await connection.query(
                        "SELECT delivery_status FROM integration_alert_history WHERE origin = 'trigger' ORDER BY created_at"
                    ).map { try $0.decode("delivery_status") }
                }
            }
            let alertd = try AlertdProcess.start(environment: [
                "ALERTD_DATABASE_URL": database.alertdURL,
                "ALERTD_WEBHOOK_ALLOW": "127.0.0.1",
                "ALERTD_POLL_INTERVAL": "1s",
                "ALERTD_MESSAGE_LIMIT_WINDOW": "20s",
                "ALERTD_LOG_LEVEL": "info",
            ])
            // Once alertd knows the schema can hold alerts, start at the beginning of a window, so
            // that the loop runs inside one.
            try await DispatcherEndToEndTests.waitUntil { alertd.output.contains("message limits are on") }
            let window = 20.0
            let now = Date().timeIntervalSince1970
            try await Task.sleep(for: .milliseconds(Int((window - now.truncatingRemainder(dividingBy: window) + 0.3) * 1000)))
            // The loop: each webhook received writes the next failed run.
            try await fail(1)
            for n in 1...3 {
                _ = try await receiver.waitForRequests(n)
                try await fail(n + 1)
            }
            try await DispatcherEndToEndTests.waitUntil(.seconds(20)) { try await statuses() == ["sent", "sent", "sent", "held"] }
            // The loop ended: no fourth webhook; one more failure in the window is held too.
            try await fail(5)
            try await DispatcherEndToEndTests.waitUntil(.seconds(20)) { try await statuses() == ["sent", "sent", "sent", "held", "held"] }
            #expect(try receiver.requests().count == 3)

            // After the window: one notice, to the integration's own URL.
            let requests = try await receiver.waitForRequests(4, timeout: .seconds(60))
            let notice = try #require(try JSONSerialization.jsonObject(with: Data(requests[3].body.utf8)) as? [String: Any])
            #expect(notice["type"] as? String == "sync.held")
            let held = try #require((notice["data"] as? [String: Any])?["held"] as? [String: Any])
            #expect(held["count"] as? Int == 2)
            #expect(held["limit"] as? Int == 3)
            #expect(held["channel"] as? String == "webhook")
            try await database.withConnection { connection in
                let rows = try await connection.query(
                    """
                    SELECT delivery_error, metadata -> 'held' ->> 'notice' AS notice, attempt_count,
                           (SELECT count(*)::int FROM integration_alert_attempts t WHERE t.alert_id = a.id) AS attempts
                      FROM integration_alert_history a WHERE delivery_status = 'held'
                    """
                )
                #expect(rows.count == 2)
                let notices = try await connection.query("SELECT id, delivery_status FROM integration_alert_history WHERE origin = 'limit'")
                #expect(notices.count == 1)
                let noticeID: UUID = try notices[0].decode("id")
                #expect(try notices[0].decode("delivery_status", as: String.self) == "sent")
                for row in rows {
                    let reason = try row.decode("delivery_error", as: String.self)
                    #expect(reason.contains("Held: Looping reached its limit of 3 webhook messages in the 20s from "), "\(reason)")
                    #expect(try row.decode("notice", as: String?.self) == noticeID.postgresText)
                    // Held alerts are not attempts.
                    #expect(try row.decode("attempts", as: Int.self) == 0)
                    #expect(try row.decode("attempt_count", as: Int.self) == 0)
                }
            }
            #expect(try receiver.requests().count == 4, "one notice, no more")
            await alertd.stopExpectingExitZero(signal: SIGTERM)
        }
    }
}
