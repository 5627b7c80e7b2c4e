import AlertdPostgres
import AlertdSupport
import Foundation

/// The SQL of incidents that alertd runs itself: publishing the defaults, queueing reminders,
/// and the figures /metrics shows. The trigger opens, counts and closes incidents.
public struct IncidentStore: Sendable {
    public let connection: PostgresConnection
    public let worker: String

    public init(connection: PostgresConnection, worker: String) {
        self.connection = connection
        self.worker = worker
    }

    /// The defaults as the database holds them.
    public struct Defaults: Sendable, Equatable {
        public let enabled: Bool
        /// nil: no reminders.
        public let repeatInterval: Duration?
        public let groupWait: Duration
        /// zero: no grouping.
        public let groupInterval: Duration
        public let updatedBy: String?
    }

    /// Writes `settings` to `alertd_settings` when they differ from what is there, and returns
    /// what was there before (nil when nothing changed).
    public func publish(_ settings: IncidentSettings) async throws -> Defaults? {
        let rows = try await connection.query(
            """
            WITH before AS (
              SELECT incidents, extract(epoch FROM repeat_interval)::float8 AS repeat_seconds,
                     extract(epoch FROM group_wait)::float8 AS wait_seconds,
                     extract(epoch FROM group_interval)::float8 AS interval_seconds, updated_by
                FROM alertd_settings FOR UPDATE
            ), changed AS (
              UPDATE alertd_settings s
                 SET incidents = $1, repeat_interval = make_interval(secs => $2), group_wait = make_interval(secs => $4),
                     group_interval = make_interval(secs => $5), updated_at = now(), updated_by = $3
                FROM before
               WHERE before.incidents IS DISTINCT FROM $1 OR before.repeat_seconds IS DISTINCT FROM $2
                  OR before.wait_seconds IS DISTINCT FROM $4 OR before.interval_seconds IS DISTINCT FROM $5
              RETURNING s.singleton
            )
            SELECT before.* FROM before, changed
            """,
            [settings.enabled, settings.repeatInterval?.seconds ?? 0, worker, settings.groupWait.seconds, settings.groupInterval.seconds]
        )
        guard let row = rows.first else { return nil }
        func duration(_ column: String) throws -> Duration {
            .milliseconds(Int64((try row.decode(column, as: Double.self) * 1000).rounded()))
        }
        let repeatInterval = try duration("repeat_seconds")
        return Defaults(
            enabled: try row.decode("incidents"),
            repeatInterval: repeatInterval > .zero ? repeatInterval : nil,
            groupWait: try duration("wait_seconds"),
            groupInterval: try duration("interval_seconds"),
            updatedBy: try row.decode("updated_by")
        )
    }

    /// Queues one reminder per channel for each open incident whose news or last reminder is
    /// older than its repeat interval (the integration's, else the default), at most `limit`
    /// incidents at a time, and returns how many reminders it queued.
    ///
    /// One statement: the incident is locked, stamped and its reminders written together, and
    /// an incident another instance holds is skipped, so two instances never both remind.
    /// A reminder goes where the incident's news went; its sync run is the last that failed.
    public func queueReminders(limit: Int) async throws -> Int {
        let rows = try await connection.query(
            """
            WITH due AS (
              SELECT i.id
                FROM integration_alert_incidents i
                LEFT JOIN alertd_settings s ON true
               CROSS JOIN LATERAL (
                 SELECT coalesce(CASE WHEN jsonb_typeof(i.settings -> 'repeat_interval_minutes') = 'number'
                                      THEN make_interval(secs => 60 * least((i.settings ->> 'repeat_interval_minutes')::float8, 1e7)) END,
                                 s.repeat_interval, interval '4 hours') AS every
               ) r
               WHERE i.resolved_at IS NULL
                 AND r.every > interval '0'
                 AND i.last_notified_at <= now() - r.every
               ORDER BY i.last_notified_at
               LIMIT $1
               FOR UPDATE OF i SKIP LOCKED
            ), reminded AS (
              UPDATE integration_alert_incidents i
                 SET last_notified_at = now(), reminders_sent = i.reminders_sent + 1
                FROM due
               WHERE i.id = due.id AND i.resolved_at IS NULL
              RETURNING i.id, i.integration_config_id, i.reminders_sent, i.news_email_alert_id, i.news_webhook_alert_id
            )
            INSERT INTO integration_alert_history
                   (integration_config_id, sync_history_id, alert_type, alert_channel, recipients,
                    sent_at, delivery_status, origin, metadata, incident_id)
            SELECT m.integration_config_id, last_run.id, 'reminder', news.alert_channel, news.recipients,
                   NULL, 'pending', 'incident', jsonb_build_object('reminder', m.reminders_sent, 'queued_by', $2::text), m.id
              FROM reminded m
              JOIN integration_alert_history news
                ON news.id IN (m.news_email_alert_id, m.news_webhook_alert_id)
              LEFT JOIN LATERAL (
                SELECT a.sync_history_id AS id
                  FROM integration_alert_history a
                 WHERE a.incident_id = m.id
                   AND a.alert_type IN ('failure', 'warning', 'overdue', 'stuck')
                   AND a.sync_history_id IS NOT NULL
                 ORDER BY a.created_at DESC
                 LIMIT 1
              ) last_run ON true
            RETURNING id
            """,
            [limit, worker]
        )
        return rows.count
    }

    /// What /metrics shows of incidents: how many endpoints' failure incidents (kind `run`) are
    /// open, and how many alerts their repeats were recorded as, suppressed. The kind is read
    /// through to_jsonb, so that this alertd reads it on a schema before 20251129 too.
    public struct State: Sendable, Equatable {
        public let open: Int
        public let suppressedAlerts: Int
    }

    public func state() async throws -> State {
        let rows = try await connection.query(
            """
            SELECT count(*)::integer AS open,
                   coalesce(sum((SELECT count(*) FROM integration_alert_history a
                                   WHERE a.incident_id = i.id
                                     AND a.delivery_status = 'suppressed')), 0)::integer AS suppressed
              FROM integration_alert_incidents i
             WHERE i.resolved_at IS NULL AND coalesce(to_jsonb(i) ->> 'kind', 'run') = 'run'
            """
        )
        return State(open: try rows[0].decode("open"), suppressedAlerts: try rows[0].decode("suppressed"))
    }
}
