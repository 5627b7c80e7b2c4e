import AlertdPostgres
import Foundation

/// The audit from a terminal: `alertd history`, `alertd show` and `alertd replay`. The SQL here
/// is the SQL docs/audit-queries.md gives for the Supabase SQL editor.
public struct AuditStore: Sendable {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    public struct Filter: Sendable {
        public var integration: UUID?
        public var syncRun: UUID?
        public var status: String?
        public var channel: String?
        public var incident: UUID?
        public var since: Date?
        public var until: Date?
        public var limit = 50

        public init() {}
    }

    /// One alert as the audit shows it; every value as text, nil where the row has NULL.
    public typealias Record = [(key: String, value: String?)]

    static let alertColumns = """
        a.id, a.created_at, i.integration_name, a.integration_config_id AS integration_id, a.sync_history_id,
        a.alert_type, a.alert_channel, a.origin, a.delivery_status, a.attempt_count, a.max_attempts,
        a.recipients, a.sent_at, a.last_attempt_at, a.next_attempt_at, a.locked_by, a.delivery_error, a.incident_id
        """

    /// Recent alerts, newest first.
    public func history(_ filter: Filter) async throws -> [Record] {
        let rows = try await connection.query(
            """
            SELECT \(Self.alertColumns)
              FROM integration_alert_history a
              LEFT JOIN integration_configs i ON i.id = a.integration_config_id
             WHERE ($1::uuid IS NULL OR a.integration_config_id = $1)
               AND ($2::uuid IS NULL OR a.sync_history_id = $2)
               AND ($3::text IS NULL OR a.delivery_status = $3)
               AND ($4::text IS NULL OR a.alert_channel = $4)
               AND ($5::timestamptz IS NULL OR a.created_at >= $5)
               AND ($6::timestamptz IS NULL OR a.created_at < $6)
               AND ($8::uuid IS NULL OR a.incident_id = $8)
             ORDER BY a.created_at DESC NULLS LAST, a.id
             LIMIT $7
            """,
            [filter.integration, filter.syncRun, filter.status, filter.channel, filter.since, filter.until, filter.limit, filter.incident]
        )
        return rows.map(Self.record)
    }

    /// One alert and every attempt of it, oldest first; nil when there is no such alert.
    public func show(_ id: UUID) async throws -> (alert: Record, attempts: [Record])? {
        let alerts = try await connection.query(
            """
            SELECT \(Self.alertColumns), n.endpoint_name AS incident_endpoint,
                   coalesce(to_jsonb(n) ->> 'kind', 'run') AS incident_kind, n.opened_at AS incident_opened_at,
                   n.resolved_at AS incident_resolved_at, a.subject, a.metadata
              FROM integration_alert_history a
              LEFT JOIN integration_configs i ON i.id = a.integration_config_id
              LEFT JOIN integration_alert_incidents n ON n.id = a.incident_id
             WHERE a.id = $1
            """,
            [id]
        )
        guard let alert = alerts.first else { return nil }
        let attempts = try await connection.query(
            """
            SELECT attempt_number, started_at, duration_ms, outcome, http_status, smtp_reply, error, worker
              FROM integration_alert_attempts
             WHERE alert_id = $1
             ORDER BY attempt_number
            """,
            [id]
        )
        return (Self.record(alert) + (try await destination(of: id)), attempts.map(Self.record))
    }

    /// The state of an alert's destination (destination health, migration 20251130): for a
    /// webhook its URL's, for an email waiting behind the relay's circuit the relay's. Empty
    /// without the migration, or when alertd has not met the destination yet.
    func destination(of id: UUID) async throws -> Record {
        let present = try await connection.query("SELECT to_regclass('public.alertd_destinations') IS NOT NULL AS present")[0].decode("present", as: Bool.self)
        guard present else { return [] }
        return try await connection.query(
            """
            SELECT d.destination, d.state AS destination_state,
                   CASE WHEN d.circuit_opened_at IS NULL THEN 'closed' ELSE 'open' END AS destination_circuit,
                   d.failing_since AS destination_failing_since, d.next_probe_at AS destination_next_probe_at,
                   d.last_error AS destination_last_error, d.disabled_at AS destination_disabled_at,
                   d.disabled_reason AS destination_disabled_reason
              FROM integration_alert_history a
              JOIN alertd_destinations d
                ON d.destination = coalesce(a.metadata -> 'parked' ->> 'destination',
                                            CASE a.alert_channel WHEN 'webhook' THEN a.recipients[1] END)
             WHERE a.id = $1
            """,
            [id]
        ).first.map(Self.record) ?? []
    }

    /// Queues final failures (failed or bounced) again, due now, with `extraAttempts` more
    /// attempts, and notes each replay in the alert's metadata (`replays`: when, by whom, what
    /// it was). Email recipients that bounced are tried again; those already delivered are not.
    /// A suppressed alert (a repeat of an incident) is sent when named by its id, unless its own
    /// run already has an alert of its type on its channel. Returns the alerts queued.
    public func replay(ids: [UUID]? = nil, failedSince since: Date? = nil, by who: String, extraAttempts: Int = 10) async throws -> [UUID] {
        let rows = try await connection.withTransaction { session in
            let rows = try session.query(
                """
                UPDATE integration_alert_history
                   SET metadata = (coalesce(metadata, '{}') - 'email_bounced')
                                  || jsonb_build_object('replays', coalesce(metadata -> 'replays', '[]') || jsonb_build_array(
                                       jsonb_build_object('at', now(), 'by', $3::text, 'status', delivery_status,
                                                          'error', delivery_error, 'attempts', attempt_count))),
                       delivery_status = 'pending',
                       delivery_error = NULL,
                       next_attempt_at = now(),
                       max_attempts = attempt_count + $4,
                       locked_by = NULL,
                       locked_until = NULL
                 WHERE (delivery_status IN ('failed', 'bounced') OR ($1::uuid[] IS NOT NULL AND delivery_status IN ('suppressed', 'held')))
                   AND ($1::uuid[] IS NULL OR id = ANY ($1::uuid[]))
                   -- A suppressed repeat whose own run has an alert of its type on its channel
                   -- (the run failed twice while its incident was open): that one is replayed.
                   AND NOT (delivery_status = 'suppressed' AND origin = 'trigger' AND EXISTS (
                         SELECT 1 FROM integration_alert_history twin
                          WHERE twin.sync_history_id = integration_alert_history.sync_history_id
                            AND twin.alert_type = integration_alert_history.alert_type
                            AND twin.alert_channel = integration_alert_history.alert_channel
                            AND twin.origin = 'trigger' AND twin.delivery_status <> 'suppressed'))
                   AND ($2::timestamptz IS NULL OR coalesce(last_attempt_at, created_at) >= $2)
                RETURNING id
                """,
                [ids, since, who, extraAttempts]
            )
            if !rows.isEmpty { try session.query("SELECT pg_notify('alertd', '')") }
            return rows
        }
        return try rows.map { try $0.decode("id", as: UUID.self) }
    }

    /// Incidents, newest first: the open ones, or with `all` the resolved ones too, each with the
    /// runs that failed while it was open and the alerts suppressed. Of every kind: an endpoint
    /// failing (run), overdue, or with a run stuck.
    public func incidents(all: Bool, integration: UUID? = nil, id: UUID? = nil, limit: Int = 50) async throws -> [Record] {
        let rows = try await connection.query(
            """
            SELECT n.id, n.opened_at, i.integration_name, n.integration_config_id AS integration_id, n.endpoint_name,
                   coalesce(to_jsonb(n) ->> 'kind', 'run') AS kind, n.severity, CASE WHEN n.resolved_at IS NULL THEN 'open' ELSE 'resolved' END AS state,
                   r.failed_runs, r.suppressed_alerts, r.last_failed_at, n.reminders_sent, n.last_notified_at,
                   n.opened_by_sync_id, n.news_sync_id, (to_jsonb(n) ->> 'expected_at')::timestamptz AS expected_at,
                   n.resolved_at, n.resolved_by_sync_id, n.settings
              FROM integration_alert_incidents n
              LEFT JOIN integration_configs i ON i.id = n.integration_config_id
              LEFT JOIN LATERAL (
                SELECT count(DISTINCT a.sync_history_id) FILTER (WHERE a.alert_type IN ('failure', 'warning')) AS failed_runs,
                       count(*) FILTER (WHERE a.delivery_status = 'suppressed') AS suppressed_alerts,
                       max(a.created_at) FILTER (WHERE a.alert_type IN ('failure', 'warning')) AS last_failed_at
                  FROM integration_alert_history a
                 WHERE a.incident_id = n.id
              ) r ON true
             WHERE ($1 OR n.resolved_at IS NULL)
               AND ($2::uuid IS NULL OR n.integration_config_id = $2)
               AND ($3::uuid IS NULL OR n.id = $3)
             ORDER BY n.opened_at DESC, n.id
             LIMIT $4
            """,
            [all || id != nil, integration, id, limit]
        )
        return rows.map(Self.record)
    }

    /// The delivery status of each of `ids` that exists.
    public func statuses(_ ids: [UUID]) async throws -> [UUID: String] {
        var result: [UUID: String] = [:]
        for row in try await connection.query("SELECT id, delivery_status FROM integration_alert_history WHERE id = ANY ($1::uuid[])", [ids]) {
            result[try row.decode("id")] = try row.decode("delivery_status")
        }
        return result
    }

    static func record(_ row: PostgresRow) -> Record {
        row.columns.map { column in (column, row[column]) }
    }
}

/// How the audit commands print what they found.
public enum AuditFormat {
    /// The columns `alertd history` prints of each alert.
    public static let alertColumns: [(key: String, title: String, width: Int)] = [
        ("created_at", "CREATED", 22), ("id", "ALERT", 36), ("integration_name", "INTEGRATION", 24),
        ("alert_type", "TYPE", 8), ("alert_channel", "CHANNEL", 7), ("delivery_status", "STATUS", 10),
        ("attempt_count", "TRIES", 5), ("incident_id", "INCIDENT", 8), ("delivery_error", "ERROR", 60),
    ]

    /// A table for a terminal: one line per record, the columns chosen, long values cut.
    public static func table(_ records: [AuditStore.Record], columns: [(key: String, title: String, width: Int)]) -> String {
        var lines: [[String]] = [columns.map(\.title)]
        for record in records {
            let values = Dictionary(record.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
            lines.append(columns.map { column in
                let value = (values[column.key] ?? nil).map(singleLine) ?? "-"
                return value.count > column.width ? String(value.prefix(column.width - 1)) + "…" : value
            })
        }
        let widths = columns.indices.map { index in lines.map { $0[index].count }.max() ?? 0 }
        return lines.map { cells in
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    /// A time as the commands print it: 2026-11-24 09:30:00 UTC.
    public static func utc(_ date: Date) -> String {
        DatabaseTool.format(date)
    }

    /// `key: value` lines, in the record's order.
    public static func fields(_ record: AuditStore.Record) -> String {
        let width = record.map(\.key.count).max() ?? 0
        return record.map { "\($0.key.padding(toLength: width, withPad: " ", startingAt: 0))  \($0.value.map(singleLine) ?? "-")" }.joined(separator: "\n")
    }

    /// Records as JSON objects (values as text, NULL as null).
    public static func json(_ object: Any) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data("null".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    public static func jsonObject(_ record: AuditStore.Record) -> [String: Any] {
        Dictionary(record.map { ($0.key, $0.value.map { $0 as Any } ?? NSNull()) }, uniquingKeysWith: { first, _ in first })
    }

    /// Control characters (a tenant's CR/LF, escape sequences) shown, never obeyed, by a terminal.
    static func singleLine(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "·" : $0 }))
    }
}
