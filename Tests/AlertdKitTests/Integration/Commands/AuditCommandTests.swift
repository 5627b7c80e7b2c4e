import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// `alertd history`, `alertd show` and `alertd replay`, run as alertd's least-privilege role
/// against alerts a real `alertd run` delivered.
@Suite struct AuditCommandTests {
    /// A run whose status changed to failed twice while its incident was open has a suppressed
    /// row beside its own alert: that one is replayed, not the repeat (the trigger keeps one
    /// alert per run, type and channel).
    @Test func aRepeatOfItsOwnRunsAlertIsNotReplayed() async throws {
        try await TestPostgres.withDatabase { database in
            let (news, repeats) = try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), webhook: "https://hooks.example.com/x")
                let run = try await rows.syncRun(integration: integration, status: "failed")
                try await rows.setStatus(of: run, to: "running")
                try await rows.setStatus(of: run, to: "failed")
                try await rows.syncRun(integration: integration, status: "failed")
                let news: UUID = try await connection.query("SELECT id FROM integration_alert_history WHERE delivery_status = 'pending'")[0].decode("id")
                let repeats = try await connection.query(
                    "SELECT id FROM integration_alert_history WHERE delivery_status = 'suppressed' ORDER BY sync_history_id = $1 DESC", [run]
                ).map { try $0.decode("id", as: UUID.self) }
                return (news, repeats)
            }
            #expect(repeats.count == 2)
            let own = try #require(repeats.first), another = try #require(repeats.last)
            let refused = try await TestProcess.alertd(["replay", own.postgresText, "--database-url", database.alertdURL])
            #expect(refused.status == 1)
            #expect(refused.standardError.contains("is a suppressed repeat of its own run's alert on the same channel"), "\(refused.allOutput)")
            let replayed = try await TestProcess.alertd(["replay", another.postgresText, "--database-url", database.alertdURL])
            #expect(replayed.status == 0, "\(replayed.allOutput)")
            let statuses = try await database.withConnection { connection in
                try await connection.query("SELECT id, delivery_status FROM integration_alert_history").reduce(into: [UUID: String]()) {
                    $0[try $1.decode("id")] = try $1.decode("delivery_status")
                }
            }
            #expect(statuses == [news: "pending", own: "suppressed", another: "pending"])
        }
    }

    @Test func historyShowAndReplayFromATerminal() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            let (good, bad) = try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let tenant = try await rows.tenant()
                let good = try await rows.integration(tenant: tenant, type: "adp", name: "ADP", webhook: receiver.url("/hooks/ok"))
                let bad = try await rows.integration(tenant: tenant, type: "paycom", name: "Paycom\r\nX-Evil: 1", webhook: receiver.url("/codes/410,200/gone"))
                for integration in [good, bad] {
                    let run = try await rows.syncRun(integration: integration)
                    try await rows.setStatus(of: run, to: "failed")
                }
                return (good, bad)
            }
            func deliverAll() async throws {
                let alertd = try AlertdProcess.start(environment: DispatcherEndToEndTests.environment(database))
                try await DispatcherEndToEndTests.waitUntil(.seconds(30)) { !(try await DispatcherEndToEndTests.statuses(database).contains("pending")) }
                await alertd.stopExpectingExitZero()
            }
            try await deliverAll()
            let url = database.alertdURL
            func alertd(_ arguments: String...) async throws -> TestProcess.Result {
                try await TestProcess.alertd(arguments + ["--database-url", url])
            }
            let ids = try await database.withConnection { connection in
                try await connection.query("SELECT id, integration_config_id FROM integration_alert_history").reduce(into: [UUID: UUID]()) {
                    $0[try $1.decode("integration_config_id")] = try $1.decode("id")
                }
            }
            let failed = try #require(ids[bad]), sent = try #require(ids[good])

            let table = try await alertd("history")
            #expect(table.status == 0, "\(table.allOutput)")
            #expect(table.standardOutput.contains("ALERT") && table.standardOutput.contains(failed.postgresText) && table.standardOutput.contains(sent.postgresText))
            #expect(table.standardOutput.contains("Paycom··X-Evil: 1"), "control characters are shown, not obeyed")
            #expect(table.standardOutput.split(separator: "\n").count == 3)

            let onlyFailed = try await alertd("history", "--status", "failed", "--json")
            let objects = try #require(try JSONSerialization.jsonObject(with: Data(onlyFailed.standardOutput.utf8)) as? [[String: Any]])
            #expect(objects.map { $0["id"] as? String } == [failed.postgresText])
            #expect((objects.first?["delivery_error"] as? String)?.contains("410") == true)
            #expect(try await alertd("history", "--integration-id", good.postgresText, "--json").standardOutput.contains(sent.postgresText))
            #expect(try await alertd("history", "--channel", "email").standardOutput.contains("No alerts match."))
            #expect(try await alertd("history", "--since", "1h", "--until", "2999-01-01").standardOutput.contains(failed.postgresText))
            #expect(try await alertd("history", "--since", "yesterday-ish").status != 0)

            let shown = try await alertd("show", failed.postgresText)
            #expect(shown.status == 0)
            #expect(shown.standardOutput.contains("delivery_status") && shown.standardOutput.contains("failed"))
            #expect(shown.standardOutput.contains("OUTCOME") && shown.standardOutput.contains("410"))
            // Its URL's state: the 410 disabled it.
            let destinationLine = shown.standardOutput.split(separator: "\n").first { $0.hasPrefix("destination_state") }
            #expect(destinationLine?.hasSuffix("disabled") == true, "\(shown.standardOutput)")
            let shownJSON = try #require(try JSONSerialization.jsonObject(with: Data(try await alertd("show", failed.postgresText, "--json").standardOutput.utf8)) as? [String: Any])
            #expect((shownJSON["attempts"] as? [[String: Any]])?.count == 1)
            let missing = try await alertd("show", UUID().uuidString)
            #expect(missing.status == 1 && missing.standardError.contains("No alert"))

            let refused = try await alertd("replay", sent.postgresText)
            #expect(refused.status == 1 && refused.standardError.contains("is sent; only failed, bounced, suppressed or held alerts are replayed"))
            #expect(try await alertd("replay", "--failed").status != 0)
            // The 410 disabled the URL: a replay alone is failed unsent, saying why.
            let replayed = try await alertd("replay", failed.postgresText, "--by", "support@example.com")
            #expect(replayed.status == 0, "\(replayed.allOutput)")
            #expect(replayed.standardOutput.contains("Queued \(failed.postgresText) again."))
            try await deliverAll()
            let unsent = try await database.withConnection { connection in
                try await connection.query("SELECT delivery_status, delivery_error, attempt_count FROM integration_alert_history WHERE id = $1", [failed])[0]
            }
            #expect(try unsent.decode("delivery_status", as: String.self) == "failed")
            #expect(try unsent.decode("delivery_error", as: String.self).contains("Not sent: its webhook URL was disabled"))
            #expect(try unsent.decode("attempt_count", as: Int.self) == 1, "an alert failed unsent spends no attempt")
            #expect(try receiver.requests().count == 2, "the disabled URL was not called again")

            let goneURL = receiver.url("/codes/410,200/gone")
            let listed = try await alertd("endpoints", "--json")
            #expect(listed.status == 0, "\(listed.allOutput)")
            let destinations = try #require(try JSONSerialization.jsonObject(with: Data(listed.standardOutput.utf8)) as? [[String: Any]])
            #expect(destinations.map { "\($0["destination"] as? String ?? "?") \($0["state"] as? String ?? "?")" } == ["\(goneURL) disabled", "\(receiver.url("/hooks/ok")) healthy"])
            #expect((destinations.first?["disabled_reason"] as? String)?.contains("410 Gone") == true)
            #expect(try await alertd("endpoints").standardOutput.contains("DESTINATION"))
            #expect(try await alertd("endpoints", "enable", "https://nowhere.example/").status == 1)
            let enabled = try await alertd("endpoints", "enable", goneURL, "--by", "support@example.com")
            #expect(enabled.status == 0, "\(enabled.allOutput)")
            #expect(enabled.standardOutput.contains("Enabled \(goneURL)"))
            #expect(try await alertd("endpoints", "--state", "disabled").standardOutput.contains("No disabled destination."))

            #expect(try await alertd("replay", failed.postgresText, "--by", "support@example.com").status == 0)
            try await deliverAll()
            let after = try await database.withConnection { connection in
                try await connection.query("SELECT delivery_status, metadata -> 'replays' -> 0 ->> 'by' AS by, metadata -> 'replays' -> 0 ->> 'status' AS was, attempt_count FROM integration_alert_history WHERE id = $1", [failed])[0]
            }
            #expect(try after.decode("delivery_status", as: String.self) == "sent")
            #expect(try after.decode("by", as: String.self) == "support@example.com")
            #expect(try after.decode("was", as: String.self) == "failed")
            #expect(try after.decode("attempt_count", as: Int.self) == 2)
            let enabledBy = try await database.withConnection { connection in
                try await connection.query("SELECT enabled_by, state FROM alertd_destinations WHERE destination = $1", [goneURL])[0]
            }
            #expect(try enabledBy.decode("enabled_by", as: String.self) == "support@example.com")
            #expect(try enabledBy.decode("state", as: String.self) == "healthy")
            #expect(try await alertd("show", failed.postgresText).standardOutput.contains("sent"))
            #expect(try await alertd("replay", "--failed", "--since", "1h").standardOutput.contains("No failed or bounced alert since then."))
        }
    }
}
