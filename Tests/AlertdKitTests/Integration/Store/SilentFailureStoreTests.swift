import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// The sweep for failures that write nothing, against PostgreSQL as alertd's login role: runs and
/// schedules written with past timestamps, so that nothing waits for real time.
@Suite struct SilentFailureStoreTests {
    /// An integration with an address and a URL, and its endpoints.
    struct World {
        let owner: PostgresConnection
        let integration: UUID

        static func make(_ owner: PostgresConnection, emails: [String]? = ["ops@example.com"], webhook: String? = "https://hooks.example.com/x") async throws -> World {
            let rows = PlatformRows(owner)
            let integration = try await rows.integration(tenant: try await rows.tenant(), emails: emails, webhook: webhook)
            return World(owner: owner, integration: integration)
        }

        /// An endpoint configured `ageHours` ago.
        func endpoint(
            _ name: String, frequency: String = "hourly", enabled: Bool = true, nextSyncMinutesAgo: Int? = nil,
            averageSeconds: Int? = nil, ageHours: Int = 48, lastSyncMinutesAgo: Int? = nil
        ) async throws {
            try await owner.query(
                """
                INSERT INTO integration_sync_configs
                       (integration_config_id, endpoint_name, sync_frequency, is_enabled, next_sync_at,
                        average_sync_duration_seconds, created_at, updated_at, last_sync_at)
                VALUES ($1, $2, $3, $4, (now() AT TIME ZONE 'UTC') - make_interval(mins => $5),
                        $6, (now() AT TIME ZONE 'UTC') - make_interval(hours => $7),
                        (now() AT TIME ZONE 'UTC') - make_interval(hours => $7),
                        (now() AT TIME ZONE 'UTC') - make_interval(mins => $8))
                """,
                [integration, name, frequency, enabled, nextSyncMinutesAgo, averageSeconds, ageHours, lastSyncMinutesAgo]
            )
        }

        /// A run of `endpoint` that started `minutesAgo` and took `minutes` (nil: still running).
        @discardableResult
        func run(_ endpoint: String, startedMinutesAgo minutesAgo: Int, minutes: Int? = nil, status: String? = nil) async throws -> UUID {
            try await owner.query(
                """
                INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, sync_completed_at, status)
                VALUES ($1, $2, (now() AT TIME ZONE 'UTC') - make_interval(mins => $3),
                        (now() AT TIME ZONE 'UTC') - make_interval(mins => $3) + make_interval(mins => $4),
                        $5)
                RETURNING id
                """,
                [integration, endpoint, minutesAgo, minutes, status ?? (minutes == nil ? "running" : "success")]
            )[0].decode("id")
        }

        func settings(_ json: String) async throws {
            try await owner.query("UPDATE integration_configs SET configuration_metadata = jsonb_build_object('api_key', 'secret', 'alertd', $2::jsonb) WHERE id = $1", [integration, json])
        }

        /// The alerts of kind `kind`'s incidents, as "type/channel/endpoint" (and the run, when asked).
        func alerts(_ kind: String) async throws -> [String] {
            try await owner.query(
                """
                SELECT a.alert_type, a.alert_channel, i.endpoint_name, a.origin, a.delivery_status
                  FROM integration_alert_history a
                  JOIN integration_alert_incidents i ON i.id = a.incident_id
                 WHERE i.kind = $1
                 ORDER BY i.endpoint_name, a.created_at, a.alert_type, a.alert_channel
                """,
                [kind]
            ).map { row in
                #expect(try row.decode("origin", as: String.self) == "incident")
                #expect(try row.decode("delivery_status", as: String.self) == "pending")
                return "\(try row.decode("alert_type", as: String.self))/\(try row.decode("alert_channel", as: String.self))/\(try row.decode("endpoint_name", as: String.self))"
            }
        }
    }

    static func alertd(_ database: TestDatabase) async throws -> SilentFailureStore {
        let connection = try await PostgresConnection.connect(try PostgresConnectionString(database.alertdURL), logger: TestPostgres.logger)
        return SilentFailureStore(connection: connection, worker: "test-sweeper")
    }

    static let settings = SilentFailureSettings()

    @Test func anEndpointWhoseScheduledRunDidNotStartIsOverdueOnceAndRunningAgainClosesIt() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { owner in
                let world = try await World.make(owner)
                try await world.endpoint("payroll", frequency: "hourly")
                let last = try await world.run("payroll", startedMinutesAgo: 150, minutes: 5)
                // Ran 45 minutes ago: an hour plus the grace (15 minutes) has not passed.
                try await world.endpoint("employees", frequency: "hourly")
                try await world.run("employees", startedMinutesAgo: 45, minutes: 5)
                let store = try await Self.alertd(database)
                defer { Task { await store.connection.close() } }

                let first = try await store.sweep(Self.settings, limit: 100)
                #expect(first.overdue == .init(incidents: 1, alerts: 2))
                #expect(try await world.alerts("overdue") == ["overdue/email/payroll", "overdue/webhook/payroll"])
                let news = try await owner.query(
                    """
                    SELECT a.sync_history_id, a.metadata ->> 'frequency' AS frequency, (a.metadata ->> 'grace_seconds')::integer AS grace,
                           a.recipients, round(extract(epoch FROM (now() - i.expected_at)) / 60)::integer AS late_minutes
                      FROM integration_alert_history a JOIN integration_alert_incidents i ON i.id = a.incident_id
                     WHERE a.alert_channel = 'webhook'
                    """
                )[0]
                #expect(try news.decode("sync_history_id", as: UUID.self) == last)
                #expect(try news.decode("frequency", as: String.self) == "hourly")
                #expect(try news.decode("grace", as: Int.self) == 900)
                #expect(try news.decode("recipients", as: [String].self) == ["https://hooks.example.com/x"])
                // Due an hour after the last start: 90 minutes ago.
                #expect(try news.decode("late_minutes", as: Int.self) == 90)

                // The endpoint that ran is remembered, to be looked up again only when due.
                let remembered = try await owner.query(
                    "SELECT endpoint_name, round(extract(epoch FROM ((now() AT TIME ZONE 'UTC') - last_started_at)) / 60)::integer AS minutes FROM alertd_endpoint_watch"
                ).map { "\(try $0.decode("endpoint_name", as: String.self)) \(try $0.decode("minutes", as: Int.self))" }
                #expect(remembered == ["employees 45"])

                // Nothing twice: the next sweep, and a restart (a new connection), add nothing.
                #expect(try await store.sweep(Self.settings, limit: 100).queuedAlerts == 0)
                let again = try await Self.alertd(database)
                #expect(try await again.sweep(Self.settings, limit: 100).queuedAlerts == 0)
                await again.connection.close()
                #expect(try await store.state() == (overdue: 1, stuck: 0))

                // Still overdue after the repeat interval: reminded like any incident, about the
                // same last run.
                try await owner.query("UPDATE integration_alert_incidents SET last_notified_at = now() - interval '5 hours'")
                #expect(try await IncidentStore(connection: store.connection, worker: "test-sweeper").queueReminders(limit: 10) == 2)
                let reminders = try await owner.query("SELECT sync_history_id FROM integration_alert_history WHERE alert_type = 'reminder'")
                #expect(try reminders.map { try $0.decode("sync_history_id", as: UUID.self) } == [last, last])

                // A run starts: the next sweep closes the incident with a notice where the news went.
                let resumed = try await world.run("payroll", startedMinutesAgo: 0)
                let closing = try await store.sweep(Self.settings, limit: 100)
                #expect(closing.resumed == .init(incidents: 1, alerts: 2))
                #expect(try await world.alerts("overdue") == [
                    "overdue/email/payroll", "overdue/webhook/payroll", "reminder/email/payroll", "reminder/webhook/payroll",
                    "recovery/email/payroll", "recovery/webhook/payroll",
                ])
                let closed = try await owner.query("SELECT resolved_at IS NOT NULL AS closed, resolved_by_sync_id FROM integration_alert_incidents WHERE kind = 'overdue'")[0]
                #expect(try closed.decode("closed", as: Bool.self))
                #expect(try closed.decode("resolved_by_sync_id", as: UUID.self) == resumed)
                #expect(try await store.state() == (overdue: 0, stuck: 0))
            }
        }
    }

    @Test func nextSyncAtIsTheScheduleWhenThePlatformWritesIt() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { owner in
                let world = try await World.make(owner, emails: nil)
                // Daily: a grace of 6 hours (a quarter of the interval).
                try await world.endpoint("late", frequency: "daily", nextSyncMinutesAgo: 7 * 60)
                try await world.endpoint("within-grace", frequency: "daily", nextSyncMinutesAgo: 5 * 60)
                try await world.endpoint("served", frequency: "daily", nextSyncMinutesAgo: 7 * 60)
                try await world.run("served", startedMinutesAgo: 6 * 60, minutes: 10)
                // A quarter-hour endpoint: the least grace (5 minutes) is more than a quarter.
                try await world.endpoint("quarter", frequency: "every_15_min", nextSyncMinutesAgo: 6)
                try await world.endpoint("quarter-within", frequency: "every_15_min", nextSyncMinutesAgo: 4)
                let store = try await Self.alertd(database)
                defer { Task { await store.connection.close() } }
                #expect(try await store.sweep(Self.settings, limit: 100).overdue == .init(incidents: 2, alerts: 2))
                #expect(try await world.alerts("overdue") == ["overdue/webhook/late", "overdue/webhook/quarter"])
                let expected = try await owner.query(
                    "SELECT endpoint_name, round(extract(epoch FROM (now() - expected_at)) / 60)::integer AS minutes FROM integration_alert_incidents ORDER BY endpoint_name"
                ).map { "\(try $0.decode("endpoint_name", as: String.self)) \(try $0.decode("minutes", as: Int.self))" }
                #expect(expected == ["late 420", "quarter 6"])
            }
        }
    }

    @Test func aRunStillRunningKeepsAScheduledEndpointFromBeingOverdue() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { owner in
                let world = try await World.make(owner)
                try await world.settings(#"{"overdue_grace_minutes": 1}"#)
                try await world.endpoint("running", frequency: "every_15_min", nextSyncMinutesAgo: 5)
                try await world.run("running", startedMinutesAgo: 6)
                try await world.endpoint("late", frequency: "every_15_min", nextSyncMinutesAgo: 5)
                try await world.run("late", startedMinutesAgo: 6, minutes: 1)
                let store = try await Self.alertd(database)
                defer { Task { await store.connection.close() } }
                var settings = Self.settings
                settings.stuck = false
                #expect(try await store.sweep(settings, limit: 100).overdue.incidents == 1)
                #expect(try await world.alerts("overdue") == ["overdue/email/late", "overdue/webhook/late"])
            }
        }
    }

    @Test func onlyScheduledEnabledEndpointsOfActiveIntegrationsThatWantFailuresAreWatched() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { owner in
                let world = try await World.make(owner)
                for frequency in ["manual", "real_time", "monthly"] {
                    try await world.endpoint(frequency, frequency: frequency)
                }
                try await world.endpoint("disabled", enabled: false)
                try await world.endpoint("new", ageHours: 1)
                // The platform's last_sync_at says it ran 30 minutes ago.
                try await world.endpoint("ran", lastSyncMinutesAgo: 30)
                // Still running for 3 hours: a stuck run, not an overdue endpoint.
                try await world.endpoint("slow")
                try await world.run("slow", startedMinutesAgo: 180)
                let store = try await Self.alertd(database)
                defer { Task { await store.connection.close() } }
                var off = Self.settings
                off.stuck = false
                #expect(try await store.sweep(off, limit: 100).overdue.incidents == 0)

                // An integration turns it off, or is inactive, or wants no failures, or has
                // nowhere to send: nothing.
                try await world.endpoint("payroll")
                try await world.settings(#"{"overdue": "off"}"#)
                #expect(try await store.sweep(off, limit: 100).overdue.incidents == 0)
                try await world.settings(#"{"overdue": "on"}"#)
                for change in ["is_active = false", "alert_on_failure = false", "alert_emails = '{}', alert_webhook_url = ' '"] {
                    try await owner.query("UPDATE integration_configs SET is_active = true, alert_on_failure = true, alert_emails = '{ops@example.com}' WHERE id = $1", [world.integration])
                    try await owner.query("UPDATE integration_configs SET \(change) WHERE id = $1", [world.integration])
                    #expect(try await store.sweep(off, limit: 100).overdue.incidents == 0, "\(change)")
                }
                // Back on, by the integration's word against alertd's default off.
                try await owner.query("UPDATE integration_configs SET alert_emails = '{ops@example.com}', alert_webhook_url = 'https://hooks.example.com/x' WHERE id = $1", [world.integration])
                off.overdue = false
                #expect(try await store.sweep(off, limit: 100).overdue.incidents == 1)
                #expect(try await world.alerts("overdue") == ["overdue/email/payroll", "overdue/webhook/payroll"])
                // Turned off while open: closed without a notice.
                try await world.settings(#"{"overdue": "off"}"#)
                let closing = try await store.sweep(off, limit: 100)
                #expect(closing.resumed == .init(incidents: 1, alerts: 0))
            }
        }
    }

    @Test func aRunRunningFarLongerThanUsualIsStuckOnceAndItsEndClosesIt() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { owner in
                let world = try await World.make(owner)
                // The platform's average: 60 s, three times that is under the least (15 min).
                try await world.endpoint("averaged", averageSeconds: 60)
                let averaged = try await world.run("averaged", startedMinutesAgo: 20)
                // Recent runs took 10 minutes: stuck after 30.
                try await world.endpoint("recent")
                for start in [300, 200, 100] {
                    try await world.run("recent", startedMinutesAgo: start, minutes: 10)
                }
                let recent = try await world.run("recent", startedMinutesAgo: 40)
                try await world.endpoint("recent-young")
                for start in [300, 200, 100] {
                    try await world.run("recent-young", startedMinutesAgo: start, minutes: 10)
                }
                try await world.run("recent-young", startedMinutesAgo: 25)
                // Nothing known: stuck after the most (6 hours).
                try await world.endpoint("unknown")
                try await world.run("unknown", startedMinutesAgo: 300)
                // Older than the horizon: the platform's leftovers.
                try await world.run("leftover", startedMinutesAgo: 8 * 24 * 60)
                let store = try await Self.alertd(database)
                defer { Task { await store.connection.close() } }
                var settings = Self.settings
                settings.overdue = false
                let first = try await store.sweep(settings, limit: 100)
                #expect(first.stuck == .init(incidents: 2, alerts: 4))
                let stuck = try await owner.query(
                    """
                    SELECT i.endpoint_name, i.opened_by_sync_id, (a.metadata ->> 'stuck_after_seconds')::integer AS after,
                           (a.metadata ->> 'typical_seconds')::integer AS typical, a.metadata ->> 'typical_from' AS source, a.sync_history_id
                      FROM integration_alert_incidents i JOIN integration_alert_history a ON a.incident_id = i.id
                     WHERE i.kind = 'stuck' AND a.alert_channel = 'webhook'
                     ORDER BY i.endpoint_name
                    """
                ).map { row in
                    #expect(try row.decode("opened_by_sync_id", as: UUID.self) == row.decode("sync_history_id", as: UUID.self))
                    return "\(try row.decode("endpoint_name", as: String.self)) \(try row.decode("after", as: Int.self)) \(try row.decode("typical", as: Int?.self).map(String.init) ?? "-") \(try row.decode("source", as: String?.self) ?? "-")"
                }
                #expect(stuck == ["averaged 900 60 average_sync_duration_seconds", "recent 1800 600 recent_runs"])
                #expect(try await store.sweep(settings, limit: 100).queuedAlerts == 0)

                // An integration's own threshold: its runs of 5 minutes are stuck, the others' not.
                let other = try await World.make(owner, emails: nil)
                try await other.settings(#"{"stuck_after_minutes": 4}"#)
                try await other.run("fixed", startedMinutesAgo: 5)
                try await other.run("fixed-young", startedMinutesAgo: 3)
                #expect(try await store.sweep(settings, limit: 100).stuck == .init(incidents: 1, alerts: 1))

                // The runs end: closed with a notice that says how.
                try await world.owner.query("UPDATE integration_sync_history SET status = 'failed', sync_completed_at = now() AT TIME ZONE 'UTC' WHERE id = $1", [averaged])
                try await world.owner.query("DELETE FROM integration_sync_history WHERE id = $1", [recent])
                let ended = try await store.sweep(settings, limit: 100)
                #expect(ended.stuckEnded == .init(incidents: 2, alerts: 2))
                let notices = try await owner.query(
                    "SELECT alert_channel, sync_history_id, metadata ->> 'sync_status' AS status FROM integration_alert_history WHERE alert_type = 'recovery' ORDER BY alert_channel"
                ).map { "\(try $0.decode("alert_channel", as: String.self)) \(try $0.decode("sync_history_id", as: UUID.self) == averaged) \(try $0.decode("status", as: String.self))" }
                #expect(notices == ["email true failed", "webhook true failed"])
                #expect(try await store.state() == (overdue: 0, stuck: 1))
            }
        }
    }

    @Test func twoInstancesSweepingAtOnceOpenEachIncidentOnce() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { owner in
                let world = try await World.make(owner)
                for n in 0..<30 {
                    try await world.endpoint("endpoint-\(n)", frequency: n % 2 == 0 ? "hourly" : "daily")
                    try await world.run("endpoint-\(n)", startedMinutesAgo: n % 2 == 0 ? 200 : 3000, minutes: 1)
                }
                let stores = [try await Self.alertd(database), try await Self.alertd(database)]
                let sweeps = try await withThrowingTaskGroup(of: SilentFailureStore.Sweep.self) { group in
                    for store in stores {
                        group.addTask {
                            var total = SilentFailureStore.Sweep()
                            // Small batches, so that the two overlap; each sweeps until a sweep of
                            // its own finds nothing more (one that found the other sweeping did
                            // nothing, and tries again).
                            for _ in 0..<500 {
                                let sweep = try await store.sweep(Self.settings, limit: 4)
                                total.overdue.incidents += sweep.overdue.incidents
                                if sweep.swept, sweep.overdue.incidents == 0 { break }
                                if !sweep.swept { try await Task.sleep(for: .milliseconds(5)) }
                            }
                            return total
                        }
                    }
                    return try await group.reduce(into: [SilentFailureStore.Sweep]()) { $0.append($1) }
                }
                for store in stores { await store.connection.close() }
                #expect(sweeps.map(\.overdue.incidents).reduce(0, +) == 30)
                let counts = try await owner.query(
                    "SELECT count(DISTINCT i.id)::integer AS incidents, count(a.id)::integer AS alerts FROM integration_alert_incidents i JOIN integration_alert_history a ON a.incident_id = i.id"
                )[0]
                #expect(try counts.decode("incidents", as: Int.self) == 30)
                #expect(try counts.decode("alerts", as: Int.self) == 60)
            }
        }
    }
}
