import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

@Suite struct AlertTriggerTests {
    struct Config: Sendable, CustomStringConvertible {
        let onFailure: Bool
        let onSuccess: Bool
        let emails: [String]?
        let webhook: String?

        var description: String { "failure=\(onFailure) success=\(onSuccess) emails=\(emails.map { "\($0)" } ?? "nil") webhook=\(webhook ?? "nil")" }

        static let all: [Config] = {
            var configs: [Config] = []
            for onFailure in [true, false] {
                for onSuccess in [true, false] {
                    for emails in [nil, [], ["", "  "], ["ops@example.com"]] as [[String]?] {
                        for webhook in [nil, "", "https://hooks.example.com/alertd"] as [String?] {
                            configs.append(Config(onFailure: onFailure, onSuccess: onSuccess, emails: emails, webhook: webhook))
                        }
                    }
                }
            }
            return configs
        }()

        /// The alerts (type, channel) a run that reaches `status` must queue, by the rule the
        /// product documents.
        func expectedAlerts(for status: String) -> Set<String> {
            let type: String
            switch status {
            case "failed": guard onFailure else { return [] }; type = "failure"
            case "partial": guard onFailure else { return [] }; type = "warning"
            case "success": guard onSuccess else { return [] }; type = "success"
            default: return []
            }
            var alerts: Set<String> = []
            if emails?.contains(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) == true { alerts.insert("\(type)/email") }
            if let webhook, !webhook.isEmpty { alerts.insert("\(type)/webhook") }
            return alerts
        }
    }

    static let statuses = ["running", "success", "failed", "partial", "cancelled"]

    static func alerts(_ connection: PostgresConnection, run: UUID) async throws -> [String] {
        try await connection.query(
            "SELECT alert_type || '/' || alert_channel AS a FROM integration_alert_history WHERE sync_history_id = $1 ORDER BY 1",
            [run]
        ).map { try $0.decode("a", as: String.self) }
    }

    @Test func everyStatusAndConfigurationQueuesExactlyTheAlertsItCallsFor() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let tenant = try await rows.tenant()
                var checked = 0
                for (index, config) in Config.all.enumerated() {
                    let integration = try await rows.integration(
                        tenant: tenant, type: "type\(index)",
                        alertOnFailure: config.onFailure, alertOnSuccess: config.onSuccess,
                        emails: config.emails, webhook: config.webhook
                    )
                    for status in Self.statuses {
                        // A run inserted straight into the status ...
                        let inserted = try await rows.syncRun(integration: integration, status: status, endpoint: "inserted-\(status)")
                        #expect(Set(try await Self.alerts(connection, run: inserted)) == config.expectedAlerts(for: status), "insert \(status) \(config)")
                        // ... and one that gets there from running.
                        let updated = try await rows.syncRun(integration: integration, status: "running", endpoint: "updated-\(status)")
                        try await rows.setStatus(of: updated, to: status)
                        #expect(Set(try await Self.alerts(connection, run: updated)) == config.expectedAlerts(for: status), "update \(status) \(config)")
                        checked += 2
                    }
                }
                #expect(checked == Config.all.count * Self.statuses.count * 2)
            }
        }
    }

    @Test func everyTransitionBetweenStatusesQueuesTheNewStatusesAlerts() async throws {
        let config = Config(onFailure: true, onSuccess: true, emails: ["ops@example.com"], webhook: "https://hooks.example.com/x")
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(
                    tenant: try await rows.tenant(), alertOnFailure: true, alertOnSuccess: true,
                    emails: config.emails, webhook: config.webhook
                )
                for from in Self.statuses {
                    for to in Self.statuses {
                        let run = try await rows.syncRun(integration: integration, status: from, endpoint: "\(from)-\(to)")
                        try await rows.setStatus(of: run, to: to)
                        // A success after a failure or a warning closes the endpoint's
                        // incident: its recovery notice stands in for the success alert.
                        let recovers = ["failed", "partial"].contains(from) && to == "success"
                        let expected = config.expectedAlerts(for: from).union(
                            recovers ? ["recovery/email", "recovery/webhook"] : config.expectedAlerts(for: to)
                        )
                        #expect(Set(try await Self.alerts(connection, run: run)) == expected, "\(from) → \(to)")
                    }
                }
            }
        }
    }

    @Test func aRunIsAlertedOncePerTypeAndChannelHoweverOftenItChanges() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(
                    tenant: try await rows.tenant(), alertOnSuccess: true, emails: ["ops@example.com"], webhook: "https://hooks.example.com/x"
                )
                let run = try await rows.syncRun(integration: integration)
                for status in ["failed", "running", "failed", "partial", "failed", "partial", "success", "failed"] {
                    try await rows.setStatus(of: run, to: status)
                }
                // Updates that leave the status alone queue nothing either.
                try await connection.query("UPDATE integration_sync_history SET records_synced = 10, status = status WHERE id = $1", [run])
                // Alerted once per type and channel: the first failure's news and the success's
                // recovery notice. The failures and warnings between are repeats of the incident
                // the first failure opened, each recorded suppressed (audit rows, never sent); the
                // failure after the recovery would be news again, but its run already has one.
                let rowsOfRun = try await connection.query(
                    "SELECT alert_type || '/' || alert_channel AS a, delivery_status FROM integration_alert_history WHERE sync_history_id = $1 ORDER BY 1",
                    [run]
                ).map { (try $0.decode("a", as: String.self), try $0.decode("delivery_status", as: String.self)) }
                #expect(rowsOfRun.filter { $0.1 != "suppressed" }.map(\.0) == ["failure/email", "failure/webhook", "recovery/email", "recovery/webhook"])
                #expect(rowsOfRun.filter { $0.1 == "suppressed" }.map(\.0) == [
                    "failure/email", "failure/email", "failure/webhook", "failure/webhook",
                    "warning/email", "warning/email", "warning/webhook", "warning/webhook",
                ])
            }
        }
    }

    @Test func queuedAlertsArePendingAndDueWithCleanRecipients() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(
                    tenant: try await rows.tenant(),
                    emails: [" ops@example.com", "payroll@example.com", "ops@example.com", "", "  "],
                    webhook: "https://user:s3cret-token@hooks.example.com:8443/alertd?x=1"
                )
                let run = try await rows.syncRun(integration: integration, status: "failed")
                let queued = try await connection.query(
                    """
                    SELECT alert_channel, recipients, delivery_status, sent_at IS NULL AS unsent, origin, attempt_count,
                           next_attempt_at <= now() AS due, locked_by IS NULL AS unlocked, created_at IS NOT NULL AS stamped,
                           metadata->>'sync_status' AS sync_status
                    FROM integration_alert_history WHERE sync_history_id = $1 ORDER BY alert_channel
                    """,
                    [run]
                )
                #expect(queued.count == 2)
                for row in queued {
                    #expect(try row.decode("delivery_status", as: String.self) == "pending")
                    #expect(try row.decode("unsent", as: Bool.self))
                    #expect(try row.decode("origin", as: String.self) == "trigger")
                    #expect(try row.decode("attempt_count", as: Int.self) == 0)
                    #expect(try row.decode("due", as: Bool.self))
                    #expect(try row.decode("unlocked", as: Bool.self))
                    #expect(try row.decode("stamped", as: Bool.self))
                    #expect(try row.decode("sync_status", as: String.self) == "failed")
                }
                #expect(try queued[0].decode("recipients", as: [String].self) == ["ops@example.com", "payroll@example.com"])
                #expect(try queued[1].decode("recipients", as: [String].self) == ["https://[redacted]@hooks.example.com:8443/alertd?x=1"])
            }
        }
    }

    @Test func aPlainAuthenticatedWriterUnderRowLevelSecurityQueuesAlerts() async throws {
        try await TestPostgres.withDatabase { database in
            let (writer, integration) = try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let tenant = try await rows.tenant()
                let writer = UUID()
                try await rows.member(writer, of: tenant)
                return (writer, try await rows.integration(tenant: tenant, emails: ["ops@example.com"], webhook: "https://hooks.example.com/x"))
            }
            let run: UUID = try await database.withConnection { connection in
                try await connection.actAsAuthenticatedUser(writer)
                let run: UUID = try await connection.query(
                    "INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at) VALUES ($1, 'employees', now()) RETURNING id",
                    [integration]
                )[0].decode("id")
                try await connection.query("UPDATE integration_sync_history SET status = 'failed', error_message = 'token expired' WHERE id = $1", [run])
                // The writer, a plain member, reads its tenant's alerts but could not have written them.
                #expect(try await connection.query("SELECT count(*) AS n FROM integration_alert_history")[0].decode("n", as: Int.self) == 2)
                let error = await #expect(throws: PostgresError.self) {
                    try await connection.query(
                        "INSERT INTO integration_alert_history (integration_config_id, alert_type, alert_channel) VALUES ($1, 'failure', 'email')",
                        [integration]
                    )
                }
                if let error {
                    #expect(error.sqlState == "42501")
                }
                return run
            }
            let queued = try await database.withConnection { connection in
                try await Self.alerts(connection, run: run)
            }
            #expect(queued == ["failure/email", "failure/webhook"])
        }
    }

    @Test func aRolledBackWriterLeavesNeitherAlertNorNotification() async throws {
        try await TestPostgres.withDatabase { database in
            let listener = PostgresListener(connectionString: database.connectionString, channels: ["alertd"], logger: TestPostgres.logger)
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), emails: ["ops@example.com"])
                let run = try await rows.syncRun(integration: integration)
                try await listener.run { events in
                    var iterator = events.makeAsyncIterator()
                    #expect(await iterator.next() == .listening(reconnected: false))

                    await #expect(throws: PostgresError.self) {
                        try await connection.withTransaction { session in
                            try session.query("UPDATE integration_sync_history SET status = 'failed' WHERE id = $1", [run])
                            try session.query("SELECT 1/0")
                        }
                    }
                    #expect(try await Self.alerts(connection, run: run).isEmpty)
                    // The first notification to arrive is the marker sent after the rollback.
                    try await connection.query("SELECT pg_notify('alertd', 'marker')")
                    #expect(await iterator.next() == .notification(PostgresNotification(channel: "alertd", payload: "marker", senderPID: connection.backendPID)))

                    // The same change, committed while a dispatcher waits, queues the alert and notifies.
                    try await database.withConnection { dispatcher in
                        #expect(try await AlertStore(connection: dispatcher, worker: "test").takeWaitingLock(timeout: .seconds(5)))
                        try await rows.setStatus(of: run, to: "failed")
                    }
                    #expect(await iterator.next() == .notification(PostgresNotification(channel: "alertd", payload: "", senderPID: connection.backendPID)))
                    #expect(try await Self.alerts(connection, run: run) == ["failure/email"])
                }
            }
        }
    }

    @Test func aTransactionThatQueuesManyAlertsNotifiesOnce() async throws {
        try await TestPostgres.withDatabase { database in
            let listener = PostgresListener(connectionString: database.connectionString, channels: ["alertd"], logger: TestPostgres.logger)
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), emails: ["ops@example.com"], webhook: "https://hooks.example.com/x")
                var runs: [UUID] = []
                for n in 0..<50 { runs.append(try await rows.syncRun(integration: integration, endpoint: "e\(n)")) }
                let ids = runs
                try await listener.run { events in
                    var iterator = events.makeAsyncIterator()
                    #expect(await iterator.next() == .listening(reconnected: false))
                    let dispatcher = try await database.connect()
                    #expect(try await AlertStore(connection: dispatcher, worker: "test").takeWaitingLock(timeout: .seconds(5)))
                    try await connection.withTransaction { session in
                        for run in ids {
                            try session.query("UPDATE integration_sync_history SET status = 'failed' WHERE id = $1", [run])
                        }
                    }
                    await dispatcher.close()
                    try await connection.query("SELECT pg_notify('alertd', 'marker')")
                    var before: [PostgresListenerEvent] = []
                    while let event = await iterator.next() {
                        if case .notification(let n) = event, n.payload == "marker" { break }
                        before.append(event)
                    }
                    #expect(before == [.notification(PostgresNotification(channel: "alertd", payload: "", senderPID: connection.backendPID))])
                }
                #expect(try await connection.query("SELECT count(*) AS n FROM integration_alert_history")[0].decode("n", as: Int.self) == 100)
            }
        }
    }

    /// The handshake of migration 20251126: writers notify only while a dispatcher holds the
    /// waiting lock, and a dispatcher cannot take it while a writer that did not notify is still
    /// uncommitted, so its last claim before sleeping sees that writer's alert.
    @Test func writersNotifyOnlyWhileADispatcherWaitsAndTheWaitIsHandedOverSafely() async throws {
        try await TestPostgres.withDatabase { database in
            let listener = PostgresListener(connectionString: database.connectionString, channels: ["alertd"], logger: TestPostgres.logger)
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), webhook: "https://hooks.example.com/x")
                var runs: [UUID] = []
                for n in 0..<3 { runs.append(try await rows.syncRun(integration: integration, endpoint: "e\(n)")) }
                let dispatcher = try await database.connect()
                let store = AlertStore(connection: dispatcher, worker: "test")
                try await listener.run { events in
                    var iterator = events.makeAsyncIterator()
                    #expect(await iterator.next() == .listening(reconnected: false))
                    func notificationsBeforeMarker() async throws -> [String] {
                        try await connection.query("SELECT pg_notify('alertd', 'marker')")
                        var payloads: [String] = []
                        while let event = await iterator.next() {
                            guard case .notification(let n) = event else { continue }
                            if n.payload == "marker" { break }
                            payloads.append(n.payload)
                        }
                        return payloads
                    }

                    // No dispatcher waits: the alert is queued, and nobody is notified.
                    try await connection.execute("BEGIN")
                    try await connection.query("UPDATE integration_sync_history SET status = 'failed' WHERE id = $1", [runs[0]])
                    // While that writer is uncommitted, the waiting lock cannot be taken.
                    #expect(try await !store.takeWaitingLock(timeout: .milliseconds(100)))
                    #expect(try await !store.waitingLockHeldElsewhere())
                    try await connection.execute("COMMIT")
                    #expect(try await notificationsBeforeMarker() == [])
                    #expect(try await Self.alerts(connection, run: runs[0]) == ["failure/webhook"])

                    // Once it has committed, it can, and the next writer notifies.
                    #expect(try await store.takeWaitingLock(timeout: .seconds(5)))
                    try await rows.setStatus(of: runs[1], to: "failed")
                    #expect(try await notificationsBeforeMarker() == [""])

                    // Another session sees the lock held; letting it go notifies once (other
                    // instances join in), and writers stop notifying.
                    #expect(try await AlertStore(connection: connection, worker: "other").waitingLockHeldElsewhere())
                    try await store.releaseWaitingLock()
                    try await rows.setStatus(of: runs[2], to: "failed")
                    #expect(try await notificationsBeforeMarker() == [""])
                    #expect(try await Self.alerts(connection, run: runs[2]) == ["failure/webhook"])
                }
                await dispatcher.close()
            }
        }
    }

    @Test func alertsWrittenBeforeTheOutboxAreNotQueued() async throws {
        try await TestPostgres.withDatabase(.platform) { database in
            try await database.withConnection { connection in
                let migrations = try Migration.load(from: TestPostgres.sqlDirectory)
                try await connection.execute(migrations[0].sql)
                let rows = PlatformRows(connection)
                let old = try await rows.alert(integration: try await rows.integration(tenant: try await rows.tenant()))
                try await connection.execute(migrations[1].sql)
                let row = try await connection.query(
                    "SELECT origin, next_attempt_at IS NULL AS unscheduled, created_at IS NULL AS undated, delivery_status FROM integration_alert_history WHERE id = $1",
                    [old]
                )[0]
                #expect(try row.decode("origin", as: String.self) == "manual")
                #expect(try row.decode("unscheduled", as: Bool.self))
                #expect(try row.decode("undated", as: Bool.self))
                #expect(try row.decode("delivery_status", as: String.self) == "pending")
            }
        }
    }
}

import AlertdKit
