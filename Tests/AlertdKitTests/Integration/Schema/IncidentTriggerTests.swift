import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// The trigger's incidents: news once, repeats recorded suppressed, a recovery notice when the
/// endpoint succeeds again.
@Suite struct IncidentTriggerTests {
    struct Alert: Sendable, Equatable {
        let id: UUID
        let run: UUID?
        let type: String
        let channel: String
        let status: String
        let error: String?
        let incident: UUID?
        let due: Bool
        let recipients: [String]
    }

    static func alerts(_ connection: PostgresConnection, integration: UUID) async throws -> [Alert] {
        try await connection.query(
            """
            SELECT id, sync_history_id, alert_type, alert_channel, delivery_status, delivery_error, incident_id,
                   next_attempt_at IS NOT NULL AS due, recipients
              FROM integration_alert_history WHERE integration_config_id = $1
             ORDER BY created_at, alert_channel
            """,
            [integration]
        ).map {
            Alert(
                id: try $0.decode("id"), run: try $0.decode("sync_history_id"), type: try $0.decode("alert_type"),
                channel: try $0.decode("alert_channel"), status: try $0.decode("delivery_status"),
                error: try $0.decode("delivery_error"), incident: try $0.decode("incident_id"),
                due: try $0.decode("due"), recipients: try $0.decode("recipients")
            )
        }
    }

    static func openIncidents(_ connection: PostgresConnection, integration: UUID) async throws -> Int {
        try await connection.query(
            "SELECT count(*)::integer AS n FROM integration_alert_incidents WHERE integration_config_id = $1 AND resolved_at IS NULL",
            [integration]
        )[0].decode("n")
    }

    @Test func theFirstFailureIsNewsAndRepeatsAreRecordedSuppressedNamingTheNews() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), emails: ["ops@example.com"], webhook: "https://hooks.example.com/x")
                let first = try await rows.syncRun(integration: integration, status: "failed")
                let second = try await rows.syncRun(integration: integration, status: "failed")
                let third = try await rows.syncRun(integration: integration, status: "partial")
                // Another endpoint of the same integration has news of its own.
                let other = try await rows.syncRun(integration: integration, status: "failed", endpoint: "payroll")

                let alerts = try await Self.alerts(connection, integration: integration)
                #expect(alerts.count == 8)
                let news = alerts.filter { $0.run == first }
                #expect(news.map(\.status) == ["pending", "pending"])
                #expect(news.allSatisfy { $0.due && $0.error == nil })
                let incident = try #require(news.first?.incident)
                #expect(news.allSatisfy { $0.incident == incident })
                for run in [second, third] {
                    let repeats = alerts.filter { $0.run == run }
                    #expect(repeats.map(\.status) == ["suppressed", "suppressed"])
                    #expect(repeats.allSatisfy { !$0.due && $0.incident == incident })
                    for alert in repeats {
                        let newsAlert = try #require(news.first { $0.channel == alert.channel })
                        #expect(alert.error?.contains("a repeat of incident \(incident.postgresText)") == true)
                        #expect(alert.error?.hasSuffix("the news went out as alert \(newsAlert.id.postgresText)") == true, "\(alert.error ?? "")")
                    }
                }
                let payroll = alerts.filter { $0.run == other }
                #expect(payroll.map(\.status) == ["pending", "pending"])
                #expect(payroll.first?.incident != incident)
                #expect(try await Self.openIncidents(connection, integration: integration) == 2)
            }
        }
    }

    @Test func aFailureAfterWarningsIsNewsAndLaterRepeatsNameIt() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), webhook: "https://hooks.example.com/x")
                let warning = try await rows.syncRun(integration: integration, status: "partial")
                let again = try await rows.syncRun(integration: integration, status: "partial")
                let failure = try await rows.syncRun(integration: integration, status: "failed")
                let later = try await rows.syncRun(integration: integration, status: "partial")
                let alerts = try await Self.alerts(connection, integration: integration)
                #expect(alerts.map(\.run) == [warning, again, failure, later])
                #expect(alerts.map(\.status) == ["pending", "suppressed", "pending", "suppressed"])
                #expect(Set(alerts.map(\.incident)).count == 1)
                #expect(alerts[3].error?.hasSuffix("the news went out as alert \(alerts[2].id.postgresText)") == true)
                let severity: String = try await connection.query("SELECT severity FROM integration_alert_incidents")[0].decode("severity")
                #expect(severity == "failure")
            }
        }
    }

    @Test func aSuccessClosesTheIncidentWithARecoveryNoticeWhereTheNewsWent() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                // alert_on_success is off: the recovery notice goes anyway, a plain success does not.
                let integration = try await rows.integration(tenant: try await rows.tenant(), alertOnSuccess: false, emails: ["ops@example.com"], webhook: "https://hooks.example.com/x")
                try await rows.syncRun(integration: integration, status: "failed")
                try await rows.syncRun(integration: integration, status: "failed")
                // The addresses change while the incident is open: the notice follows the news.
                try await connection.query("UPDATE integration_configs SET alert_emails = '{new@example.com}' WHERE id = $1", [integration])
                let fix = try await rows.syncRun(integration: integration, status: "running")
                try await rows.setStatus(of: fix, to: "success")
                try await rows.syncRun(integration: integration, status: "success")

                let alerts = try await Self.alerts(connection, integration: integration)
                let recovery = alerts.filter { $0.type == "recovery" }
                #expect(recovery.map(\.channel) == ["email", "webhook"])
                #expect(recovery.allSatisfy { $0.run == fix && $0.status == "pending" && $0.due })
                #expect(recovery.first?.recipients == ["ops@example.com"])
                #expect(recovery.first?.incident == alerts.first?.incident)
                #expect(alerts.count == 6)
                #expect(try await Self.openIncidents(connection, integration: integration) == 0)
                let closed = try await connection.query("SELECT resolved_by_sync_id, resolved_at IS NOT NULL AS resolved FROM integration_alert_incidents")
                #expect(try closed[0].decode("resolved_by_sync_id", as: UUID.self) == fix)

                // The next failure is news again, of a new incident.
                let next = try await rows.syncRun(integration: integration, status: "failed")
                let after = try await Self.alerts(connection, integration: integration).filter { $0.run == next }
                #expect(after.map(\.status) == ["pending", "pending"])
                #expect(after.first?.incident != alerts.first?.incident)
            }
        }
    }

    @Test func incidentsCanBeTurnedOffPerIntegrationAndByDefault() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let tenant = try await rows.tenant()
                func statuses(metadata: String?) async throws -> [String] {
                    let integration = try await rows.integration(tenant: tenant, type: "t\(UUID().uuidString.prefix(8))", webhook: "https://hooks.example.com/x")
                    if let metadata {
                        try await connection.query("UPDATE integration_configs SET configuration_metadata = $2::jsonb WHERE id = $1", [integration, metadata])
                    }
                    for _ in 0..<3 { try await rows.syncRun(integration: integration, status: "failed") }
                    return try await Self.alerts(connection, integration: integration).map(\.status)
                }
                #expect(try await statuses(metadata: nil) == ["pending", "suppressed", "suppressed"])
                #expect(try await statuses(metadata: #"{"alertd": {"incidents": "off"}}"#) == ["pending", "pending", "pending"])
                #expect(try await statuses(metadata: #"{"alertd": {"incidents": false}}"#) == ["pending", "pending", "pending"])
                #expect(try await statuses(metadata: #"{"other": "keys", "alertd": {"incidents": "OFF"}}"#) == ["pending", "pending", "pending"])
                try await connection.query("UPDATE alertd_settings SET incidents = false")
                #expect(try await statuses(metadata: nil) == ["pending", "pending", "pending"])
                #expect(try await statuses(metadata: #"{"alertd": {"incidents": "on"}}"#) == ["pending", "suppressed", "suppressed"])
            }
        }
    }

    /// Each alert's due time (seconds after the first alert's) and group, by endpoint, for the
    /// grouping tests.
    /// Each alert of the integration by endpoint and type: when it is due, in seconds after the
    /// integration's first alert was written (`due`) and after its own (`wait`: 0 is at once,
    /// however long the writes took), its group and status.
    static func schedule(_ connection: PostgresConnection, integration: UUID, channel: String = "webhook") async throws -> [String: (due: Double, wait: Double, group: String?, status: String)] {
        let rows = try await connection.query(
            """
            SELECT h.endpoint_name, a.alert_type, a.delivery_status, a.metadata ->> 'group' AS grp,
                   extract(epoch FROM a.next_attempt_at - min(a.created_at) OVER ())::float8 AS due,
                   extract(epoch FROM a.next_attempt_at - a.created_at)::float8 AS wait
              FROM integration_alert_history a JOIN integration_sync_history h ON h.id = a.sync_history_id
             WHERE a.integration_config_id = $1 AND a.alert_channel = $2 AND a.delivery_status <> 'suppressed'
            """,
            [integration, channel]
        )
        var schedule: [String: (due: Double, wait: Double, group: String?, status: String)] = [:]
        for row in rows {
            let key = "\(try row.decode("endpoint_name", as: String.self))/\(try row.decode("alert_type", as: String.self))"
            schedule[key] = (
                try row.decode("due", as: Double?.self) ?? -1, try row.decode("wait", as: Double?.self) ?? -1, try row.decode("grp"), try row.decode("delivery_status")
            )
        }
        return schedule
    }

    @Test func theFirstEndpointIsNewsAtOnceAndTheOthersWithinTheIntervalShareOneDueTimeAndGroup() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                try await connection.query("UPDATE alertd_settings SET group_interval = interval '1 minute'")
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), emails: ["ops@example.com"], webhook: "https://hooks.example.com/x")
                for endpoint in ["employees", "payroll", "benefits"] {
                    try await rows.syncRun(integration: integration, status: "failed", endpoint: endpoint)
                }
                // A repeat of a held endpoint is suppressed, as any repeat.
                try await rows.syncRun(integration: integration, status: "failed", endpoint: "payroll")
                for channel in ["webhook", "email"] {
                    let schedule = try await Self.schedule(connection, integration: integration, channel: channel)
                    let first = try #require(schedule["employees/failure"])
                    #expect(first.due < 1 && first.group == nil && first.status == "pending", "\(channel)")
                    let payroll = try #require(schedule["payroll/failure"])
                    let benefits = try #require(schedule["benefits/failure"])
                    // Held a minute after the first, to the next point of a 6 s grid, together.
                    #expect(payroll.due > 59.9 && payroll.due < 66.1, "\(channel): \(payroll.due)")
                    #expect(benefits.due == payroll.due && benefits.group != nil && benefits.group == payroll.group)
                }
                let suppressed: Int = try await connection.query(
                    "SELECT count(*)::integer AS n FROM integration_alert_history WHERE integration_config_id = $1 AND delivery_status = 'suppressed'", [integration]
                )[0].decode("n")
                #expect(suppressed == 2)

                // The held endpoint recovers before its group went out: the recovery notice is due
                // after the news, never before it.
                let fixed = try await rows.syncRun(integration: integration, status: "success", endpoint: "payroll")
                let schedule = try await Self.schedule(connection, integration: integration)
                let recovery = try #require(schedule["payroll/recovery"])
                #expect(recovery.due > schedule["payroll/failure"]!.due, "\(fixed)")
            }
        }
    }

    @Test func groupWaitHoldsTheFirstTooAndEachIntegrationSetsItsOwn() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                try await connection.query("UPDATE alertd_settings SET group_interval = interval '1 minute'")
                let rows = PlatformRows(connection)
                let tenant = try await rows.tenant()
                func schedule(metadata: String?) async throws -> [String: (due: Double, wait: Double, group: String?, status: String)] {
                    let integration = try await rows.integration(tenant: tenant, type: "t\(UUID().uuidString.prefix(8))", webhook: "https://hooks.example.com/x")
                    if let metadata {
                        try await connection.query("UPDATE integration_configs SET configuration_metadata = $2::jsonb WHERE id = $1", [integration, metadata])
                    }
                    for endpoint in ["a", "b"] { try await rows.syncRun(integration: integration, status: "failed", endpoint: endpoint) }
                    return try await Self.schedule(connection, integration: integration)
                }
                // No grouping for this integration: both at once.
                let off = try await schedule(metadata: #"{"alertd": {"group_interval_seconds": 0}}"#)
                #expect(off["a/failure"]!.wait < 1 && off["b/failure"]!.wait < 1 && off["b/failure"]!.group == nil)
                // A value that is not whole seconds is ignored: the default (a minute) applies and
                // the writer's transaction is untouched.
                let bad = try await schedule(metadata: #"{"alertd": {"group_interval_seconds": "soon", "group_wait_seconds": -3}}"#)
                #expect(bad["a/failure"]!.wait < 1 && bad["b/failure"]!.due > 59.9)
                // A group wait holds the first too, and the second joins it.
                let waiting = try await schedule(metadata: #"{"alertd": {"group_wait_seconds": 30, "group_interval_seconds": "120"}}"#)
                #expect(waiting["a/failure"]!.due > 29.9 && waiting["a/failure"]!.due < 42.1)
                #expect(waiting["b/failure"]!.due == waiting["a/failure"]!.due && waiting["b/failure"]!.group == waiting["a/failure"]!.group)
                // The defaults come from alertd_settings.
                try await connection.query("UPDATE alertd_settings SET group_interval = interval '0'")
                let none = try await schedule(metadata: nil)
                #expect(none["b/failure"]!.wait < 1)
                try await connection.query("UPDATE alertd_settings SET group_interval = interval '5 minutes'")
                let five = try await schedule(metadata: nil)
                #expect(five["b/failure"]!.due > 299.9 && five["b/failure"]!.due < 330.1)
                // Incidents off: no grouping either, every failure at once.
                let incidentsOff = try await schedule(metadata: #"{"alertd": {"incidents": "off"}}"#)
                #expect(incidentsOff["b/failure"]!.wait < 1)
            }
        }
    }

    @Test func ofEndpointsOpeningIncidentsAtOnceOneIsNewsAndTheOthersShareOneGroup() async throws {
        try await TestPostgres.withDatabase { database in
            let integration = try await database.withConnection { connection in
                // An hour: held news is due on a grid of 6 minutes. Writers whose transactions
                // start on either side of a grid point land in two groups (documented), so the
                // writers start well clear of one, by the database's clock.
                try await connection.query("UPDATE alertd_settings SET group_interval = interval '1 hour'")
                let left: Double = try await connection.query("SELECT (360 - extract(epoch FROM now()) % 360)::float8 AS left")[0].decode("left")
                if left < 20 { try await Task.sleep(for: .milliseconds(Int64(left * 1000) + 200)) }
                let rows = PlatformRows(connection)
                return try await rows.integration(tenant: try await rows.tenant(), webhook: "https://hooks.example.com/x")
            }
            // Six endpoints fail at once, each writer's transaction held open a while after its
            // write: none sees another's incident.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0..<6 {
                    group.addTask {
                        let writer = try await database.connect()
                        try await writer.execute("BEGIN")
                        try await PlatformRows(writer).syncRun(integration: integration, status: "failed", endpoint: "endpoint-\(n)")
                        try await Task.sleep(for: .milliseconds(300))
                        try await writer.execute("COMMIT")
                        await writer.close()
                    }
                }
                try await group.waitForAll()
            }
            try await database.withConnection { connection in
                let schedule = try await Self.schedule(connection, integration: integration).values
                #expect(schedule.count == 6)
                #expect(schedule.filter { $0.wait < 1 }.count == 1)
                let held = schedule.filter { $0.wait >= 1 }
                #expect(held.count == 5)
                #expect(Set(held.map(\.due)).count == 1 && Set(held.map(\.group)).count == 1 && held.allSatisfy { $0.group != nil })
            }
        }
    }

    @Test func ofConcurrentFailuresOfOneEndpointExactlyOneIsNews() async throws {
        try await TestPostgres.withDatabase { database in
            let integration = try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                return try await rows.integration(tenant: try await rows.tenant(), webhook: "https://hooks.example.com/x")
            }
            // Eight writers fail the endpoint at once, each in a transaction held open a while
            // after its write: they all look for the endpoint's incident before any commits, so
            // all but one wait on the first one's incident and find it when it commits.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let writer = try await database.connect()
                        try await writer.execute("BEGIN")
                        try await PlatformRows(writer).syncRun(integration: integration, status: "failed")
                        try await Task.sleep(for: .milliseconds(200))
                        try await writer.execute("COMMIT")
                        await writer.close()
                    }
                }
                try await group.waitForAll()
            }
            try await database.withConnection { connection in
                let alerts = try await Self.alerts(connection, integration: integration)
                #expect(alerts.count == 8)
                #expect(alerts.filter { $0.status == "pending" }.count == 1)
                #expect(alerts.filter { $0.status == "suppressed" }.count == 7)
                #expect(Set(alerts.map(\.incident)).count == 1)
                #expect(try await Self.openIncidents(connection, integration: integration) == 1)
            }
        }
    }

    @Test func tenantMembersReadTheirOwnIncidentsAndAnonNothing() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let mine = try await rows.tenant("Mine")
                let theirs = try await rows.tenant("Theirs")
                let user = UUID()
                try await rows.member(user, of: mine)
                for tenant in [mine, theirs] {
                    let integration = try await rows.integration(tenant: tenant, webhook: "https://hooks.example.com/x")
                    try await rows.syncRun(integration: integration, status: "failed")
                }
                try await connection.actAsAuthenticatedUser(user)
                let visible = try await connection.query(
                    "SELECT c.tenant_id FROM integration_alert_incidents i JOIN integration_configs c ON c.id = i.integration_config_id"
                )
                #expect(try visible.map { try $0.decode("tenant_id", as: UUID.self) } == [mine])
                let denied = await #expect(throws: PostgresError.self) {
                    try await connection.query("DELETE FROM integration_alert_incidents")
                }
                #expect(denied?.message.contains("permission denied") == true)
                try await connection.execute("RESET ROLE")
                try await connection.execute("SET ROLE anon")
                let anon = await #expect(throws: PostgresError.self) {
                    try await connection.query("SELECT count(*) FROM integration_alert_incidents")
                }
                #expect(anon?.message.contains("permission denied") == true)
            }
        }
    }

    @Test func anIntegrationsIncidentsGoWithIt() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let tenant = try await rows.tenant()
                let gone = try await rows.integration(tenant: tenant, type: "adp", webhook: "https://hooks.example.com/x")
                let kept = try await rows.integration(tenant: tenant, type: "paycom", webhook: "https://hooks.example.com/x")
                try await rows.syncRun(integration: gone, status: "failed")
                try await rows.syncRun(integration: kept, status: "failed")
                try await connection.query("DELETE FROM integration_configs WHERE id = $1", [gone])
                let left = try await connection.query("SELECT integration_config_id FROM integration_alert_incidents")
                #expect(try left.map { try $0.decode("integration_config_id", as: UUID.self) } == [kept])
            }
        }
    }
}
