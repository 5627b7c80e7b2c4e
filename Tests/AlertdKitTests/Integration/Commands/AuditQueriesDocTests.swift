import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// Every SQL block of docs/audit-queries.md runs, as written, against a database with alerts.
@Suite struct AuditQueriesDocTests {
    static func sqlBlocks() throws -> [String] {
        let text = try String(contentsOf: TestPostgres.packageRoot.appending(path: "docs/audit-queries.md"), encoding: .utf8)
        var blocks: [String] = []
        var current: [Substring]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```sql") { current = [] } else if line.hasPrefix("```"), let block = current {
                blocks.append(block.joined(separator: "\n"))
                current = nil
            } else if current != nil { current!.append(line) }
        }
        return blocks
    }

    @Test func everyQueryOnThePageRuns() async throws {
        let blocks = try Self.sqlBlocks()
        #expect(blocks.count >= 6)
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), emails: ["ops@example.com"], webhook: "https://hooks.example.com/x")
                try await rows.syncRun(integration: integration, status: "failed")
                try await connection.query("UPDATE integration_alert_history SET delivery_status = 'failed', delivery_error = 'HTTP 410'")
                // The page's example id, on a real failed alert, so the replay has work to do.
                try await connection.query("UPDATE integration_alert_history SET id = '3d0c6f7e-9b1a-4c2d-8e5f-1a2b3c4d5e6f' WHERE alert_channel = 'webhook'")
                // The page's example incident: the run above opened it, a repeat is suppressed.
                try await connection.query("UPDATE integration_alert_incidents SET id = '5a527094-805e-461b-a1f5-d3c2b1a09f8e'")
                try await connection.query("UPDATE integration_alert_history SET incident_id = '5a527094-805e-461b-a1f5-d3c2b1a09f8e'")
                try await rows.syncRun(integration: integration, status: "failed")
                // An overdue endpoint, as alertd's sweep opens one.
                try await connection.query("INSERT INTO integration_sync_configs (integration_config_id, endpoint_name, sync_frequency, is_enabled) VALUES ($1, 'payroll', 'hourly', true)", [integration])
                try await connection.query(
                    "INSERT INTO integration_alert_incidents (integration_config_id, endpoint_name, kind, severity, expected_at, watch_from) VALUES ($1, 'payroll', 'overdue', 'failure', now() - interval '90 minutes', now() - interval '90 minutes')",
                    [integration]
                )
                // A disabled URL, with an alert waiting for it.
                try await connection.query(
                    "INSERT INTO alertd_destinations (destination, channel, state, disabled_at, disabled_reason, disabled_by) VALUES ('https://hooks.example.com/x', 'webhook', 'disabled', now(), 'the receiver answered 410 Gone: HTTP 410', 'a')"
                )
            }
            for block in blocks {
                let result = try await TestProcess.run("/usr/bin/psql", ["--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--dbname", database.url, "-c", block])
                #expect(result.status == 0, "\(block.prefix(80)): \(result.standardError)")
                if block.contains("FROM integration_alert_incidents"), !block.contains("6f1c1b1e") {
                    // The incident queries find the example incident (the page's example
                    // integration is not the test's).
                    #expect(result.standardOutput.contains("(0 rows)") == false, "\(block.prefix(80)): \(result.standardOutput)")
                }
            }
            let replayed = try await database.withConnection { connection in
                try await connection.query("SELECT delivery_status, metadata -> 'replays' -> 0 ->> 'by' AS by FROM integration_alert_history WHERE id = '3d0c6f7e-9b1a-4c2d-8e5f-1a2b3c4d5e6f'")[0]
            }
            #expect(try replayed.decode("delivery_status", as: String.self) == "pending")
            #expect(try replayed.decode("by", as: String.self) == "jane@support")
            let enabled = try await database.withConnection { connection in
                try await connection.query("SELECT state, enabled_by FROM alertd_destinations WHERE destination = 'https://hooks.example.com/x'")[0]
            }
            #expect(try enabled.decode("state", as: String.self) == "healthy")
            #expect(try enabled.decode("enabled_by", as: String.self) == "jane@support")
        }
    }
}
