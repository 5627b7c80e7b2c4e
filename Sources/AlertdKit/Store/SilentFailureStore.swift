import AlertdPostgres
import AlertdSupport
import Foundation

/// The SQL of failures that write nothing: endpoints whose scheduled run did not start
/// (overdue) and runs still running far longer than usual (stuck). alertd's sweep runs it; no
/// writer does.
///
/// Each is an incident of its own kind (`integration_alert_incidents.kind`), opened with its
/// news alerts in one statement and closed with its notice in one statement: a restart loses
/// nothing and repeats nothing, and the unique index on open incidents (per endpoint and kind)
/// decides between two instances. A sweep also takes a transaction-level advisory lock, tried
/// and never waited for, so that one instance at a time does the work.
public struct SilentFailureStore: Sendable {
    public let connection: PostgresConnection
    public let worker: String

    public init(connection: PostgresConnection, worker: String) {
        self.connection = connection
        self.worker = worker
    }

    /// What one sweep did.
    public struct Sweep: Sendable, Equatable {
        /// False when another instance held the sweep's lock: this one did nothing.
        public var swept = true
        /// Incidents opened, and the alerts that carry their news.
        public var overdue = Change()
        public var stuck = Change()
        /// Incidents closed, and the notices queued for them.
        public var resumed = Change()
        public var stuckEnded = Change()

        public struct Change: Sendable, Equatable {
            public var incidents = 0
            public var alerts = 0

            public init(incidents: Int = 0, alerts: Int = 0) {
                self.incidents = incidents
                self.alerts = alerts
            }
        }

        public init() {}

        public var queuedAlerts: Int { overdue.alerts + stuck.alerts + resumed.alerts + stuckEnded.alerts }
    }

    /// The sweep's advisory lock (class, object): 1634497140 is the waiting lock's, 1634497141
    /// a group's, 1634497142 an integration's grouping.
    static let sweepLock = (classID: 1634497143, objectID: 0)

    /// One sweep, in one transaction: closes what ended (a run started, a stuck run left
    /// `running`), then opens what is new, at most `limit` of each.
    public func sweep(_ settings: SilentFailureSettings, limit: Int) async throws -> Sweep {
        let worker = self.worker
        return try await connection.withTransaction { session in
            var sweep = Sweep()
            let lock = try session.query("SELECT pg_try_advisory_xact_lock($1, $2) AS mine", [Self.sweepLock.classID, Self.sweepLock.objectID])
            guard try lock[0].decode("mine", as: Bool.self) else {
                sweep.swept = false
                return sweep
            }
            func change(_ rows: PostgresRows) throws -> Sweep.Change {
                var incidents = Set<UUID>()
                var alerts = 0
                for row in rows {
                    incidents.insert(try row.decode("incident_id"))
                    if try row.decode("alert_id", as: UUID?.self) != nil { alerts += 1 }
                }
                return Sweep.Change(incidents: incidents.count, alerts: alerts)
            }
            let overdueOn = settings.overdue
            let grace = settings.overdueGrace.seconds
            sweep.resumed = try change(session.query(Self.closeOverdue, [limit, worker, overdueOn]))
            sweep.stuckEnded = try change(session.query(Self.closeStuck, [limit, worker]))
            sweep.overdue = try change(session.query(Self.openOverdue, [limit, worker, overdueOn, grace]))
            sweep.stuck = try change(session.query(Self.openStuck, [
                limit, worker, settings.stuck, settings.stuckAfterMinimum.seconds, settings.stuckAfterMaximum.seconds,
                Double(SilentFailureSettings.stuckFactor), SilentFailureSettings.stuckHorizon.seconds,
            ]))
            return sweep
        }
    }

    /// The plan of the overdue statement, as `EXPLAIN (ANALYZE, BUFFERS)` gives it, in a
    /// transaction rolled back: `alertd bench --only sweep --explain`.
    public func explainOverdue(_ settings: SilentFailureSettings, limit: Int) async throws -> String {
        let worker = self.worker
        return try await connection.withSession { session in
            try session.execute("BEGIN")
            defer { _ = try? session.execute("ROLLBACK") }
            let rows = try session.query(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + Self.openOverdue,
                [limit, worker, settings.overdue, settings.overdueGrace.seconds]
            )
            return try rows.map { try $0.decode("QUERY PLAN", as: String.self) }.joined(separator: "\n")
        }
    }

    /// Overdue endpoints and stuck runs open now, for /metrics.
    public func state() async throws -> (overdue: Int, stuck: Int) {
        let rows = try await connection.query(
            """
            SELECT count(*) FILTER (WHERE kind = 'overdue')::integer AS overdue,
                   count(*) FILTER (WHERE kind = 'stuck')::integer AS stuck
              FROM integration_alert_incidents
             WHERE resolved_at IS NULL AND kind <> 'run'
            """
        )
        return (try rows[0].decode("overdue"), try rows[0].decode("stuck"))
    }

    // MARK: The SQL

    /// SQL for the interval of an endpoint's `sync_frequency` (the column or expression
    /// `frequency`), NULL for words that schedule nothing.
    public static func interval(_ frequency: String) -> String {
        "CASE \(frequency) "
            + SilentFailureSettings.scheduled.map { "WHEN '\($0.frequency)' THEN make_interval(secs => \(Int($0.interval.seconds))) " }.joined()
            + "END"
    }

    /// Whether the integration's `configuration_metadata -> 'alertd' ->> key` (in `settings`)
    /// turns a watch on or off, else `fallback`.
    static func switched(_ settings: String, _ key: String, _ fallback: String) -> String {
        "coalesce(CASE lower(\(settings) ->> '\(key)') WHEN 'off' THEN false WHEN 'false' THEN false WHEN 'on' THEN true WHEN 'true' THEN true END, \(fallback))"
    }

    /// A whole number of minutes in `settings ->> key`, as an interval, else NULL.
    static func minutes(_ settings: String, _ key: String) -> String {
        "CASE WHEN \(settings) ->> '\(key)' ~ '^[0-9]{1,6}$' AND (\(settings) ->> '\(key)')::integer > 0 THEN make_interval(mins => (\(settings) ->> '\(key)')::integer) END"
    }

    /// The integration's addresses (trimmed, blanks dropped, duplicates folded, first-seen order
    /// kept; NULL for none) and its webhook URL with any credentials in it redacted, as the
    /// trigger writes them.
    static func recipients(_ config: String) -> String {
        """
        (SELECT array_agg(address ORDER BY first_seen)
           FROM (SELECT btrim(e) AS address, min(n) AS first_seen
                   FROM unnest(\(config).alert_emails) WITH ORDINALITY AS t(e, n)
                  WHERE btrim(e) <> ''
                  GROUP BY btrim(e)) addresses) AS emails,
        regexp_replace(nullif(btrim(\(config).alert_webhook_url), ''),
                       '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\\1[redacted]@') AS webhook
        """
    }

    /// The tail of an opening statement, after its `opened` CTE (the incidents it inserted, with
    /// their news alerts' ids): the news alerts of type `type`, one per channel the incident has
    /// an id for, to the recipients of `row` (a CTE joined `from` on `opened p`), about run `run`;
    /// then one row per incident opened and its alerts.
    static func news(type: String, from: String, row: String, run: String, metadata: String) -> String {
        """
        news AS (
          INSERT INTO integration_alert_history
                 (id, integration_config_id, sync_history_id, alert_type, alert_channel, recipients,
                  sent_at, delivery_status, origin, metadata, incident_id)
          SELECT m.alert_id, \(row).integration_config_id, \(run), '\(type)', m.channel, m.recipients,
                 NULL, 'pending', 'incident', \(metadata), p.id
            FROM opened p
            JOIN \(from)
           CROSS JOIN LATERAL (VALUES ('email', p.news_email_alert_id, \(row).emails),
                                      ('webhook', p.news_webhook_alert_id, ARRAY[\(row).webhook])) AS m(channel, alert_id, recipients)
           WHERE m.alert_id IS NOT NULL
          RETURNING id, incident_id
        )
        SELECT p.id AS incident_id, n.id AS alert_id FROM opened p LEFT JOIN news n ON n.incident_id = p.id
        """
    }

    /// The tail of a closing statement, after its `closing` CTE (the incidents to close, locked,
    /// with `run_id`, the run that closed each, if one did): closes them, queues a notice
    /// (alert_type 'recovery') where each one's news went when a run closed it, and returns one
    /// row per incident closed and its notices.
    static func closed(returning extra: String, metadata: String) -> String {
        """
        closed AS (
          UPDATE integration_alert_incidents i
             SET resolved_at = now(), resolved_by_sync_id = closing.run_id
            FROM closing
           WHERE i.id = closing.id AND i.resolved_at IS NULL
          RETURNING i.id, i.integration_config_id, closing.run_id, i.news_email_alert_id, i.news_webhook_alert_id\(extra)
        ), notices AS (
          INSERT INTO integration_alert_history
                 (integration_config_id, sync_history_id, alert_type, alert_channel, recipients,
                  sent_at, delivery_status, origin, metadata, incident_id)
          SELECT d.integration_config_id, d.run_id, 'recovery', news.alert_channel, news.recipients,
                 NULL, 'pending', 'incident', \(metadata), d.id
            FROM closed d
            JOIN integration_alert_history news ON news.id IN (d.news_email_alert_id, d.news_webhook_alert_id)
           WHERE d.run_id IS NOT NULL
          RETURNING id, incident_id
        )
        SELECT d.id AS incident_id, n.id AS alert_id FROM closed d LEFT JOIN notices n ON n.incident_id = d.id
        """
    }

    /// Opens an incident of kind 'overdue' for each watched endpoint whose scheduled run did not
    /// start, and queues its news. $1 limit, $2 worker, $3 overdue on by default, $4 the least
    /// grace in seconds.
    ///
    /// An endpoint is watched when it is enabled, its integration active with alert_on_failure
    /// on and somewhere to send, its sync_frequency schedules runs, and overdue is not off for
    /// the integration. It is overdue when its next_sync_at is past by more than the grace and no
    /// run started at or after it, or, without next_sync_at, when no run started
    /// within its interval plus the grace and it was not created or changed within that time.
    /// Runs count by integration and endpoint name. A run still running keeps it from being
    /// overdue (a stuck run is told as stuck).
    ///
    /// Cheap on a large history: the endpoints are read once, with their integration; only those
    /// past due by what is known of them without the runs (the newest start this sweep saw
    /// before, kept in alertd_endpoint_watch, and the platform's last_sync_at when it writes it)
    /// are looked up among the runs, each through the integration's runs by start time
    /// (idx_sync_history_config) within the window, and what that finds is remembered. An
    /// endpoint running on schedule is looked up about once per interval.
    static let openOverdue = """
        WITH watched AS MATERIALIZED (
          SELECT e.integration_config_id, e.endpoint_name, e.sync_frequency, e.next_sync_at,
                 cs.settings, f.every, g.grace,
                 CASE WHEN e.next_sync_at IS NOT NULL THEN e.next_sync_at
                      ELSE (now() AT TIME ZONE 'UTC') - f.every - g.grace END AS watch_from,
                 c.alert_emails, c.alert_webhook_url
            FROM integration_sync_configs e
            JOIN integration_configs c ON c.id = e.integration_config_id
            LEFT JOIN alertd_integration_settings() cs ON cs.integration_config_id = c.id
            LEFT JOIN alertd_endpoint_watch w
                   ON w.integration_config_id = e.integration_config_id AND w.endpoint_name = e.endpoint_name
           CROSS JOIN LATERAL (SELECT \(interval("e.sync_frequency")) AS every) f
           CROSS JOIN LATERAL (
             SELECT coalesce(\(minutes("cs.settings", "overdue_grace_minutes")),
                             greatest(f.every / 4, make_interval(secs => $4))) AS grace
           ) g
           WHERE e.is_enabled
             AND coalesce(c.is_active, true)
             AND coalesce(c.alert_on_failure, true)
             AND (cardinality(c.alert_emails) > 0 OR nullif(btrim(c.alert_webhook_url), '') IS NOT NULL)
             AND f.every IS NOT NULL
             AND \(switched("cs.settings", "overdue", "$3"))
             AND CASE WHEN e.next_sync_at IS NOT NULL
                      THEN e.next_sync_at + g.grace < (now() AT TIME ZONE 'UTC')
                           AND coalesce(greatest(w.last_started_at, e.last_sync_at), '-infinity') < e.next_sync_at
                      ELSE greatest(e.created_at, e.updated_at, w.last_started_at, e.last_sync_at) + f.every + g.grace
                           < (now() AT TIME ZONE 'UTC')
                 END
             AND NOT EXISTS (SELECT 1 FROM integration_alert_incidents i
                              WHERE i.integration_config_id = e.integration_config_id
                                AND i.endpoint_name = e.endpoint_name
                                AND i.kind = 'overdue'
                                AND i.resolved_at IS NULL)
        ), probed AS MATERIALIZED (
          SELECT w.*, s.started, r.running
            FROM watched w
            LEFT JOIN LATERAL (
              SELECT max(h.sync_started_at) AS started FROM integration_sync_history h
               WHERE h.integration_config_id = w.integration_config_id
                 AND h.sync_started_at >= w.watch_from
                 AND h.endpoint_name = w.endpoint_name
            ) s ON true
            LEFT JOIN LATERAL (
              SELECT 1 AS running FROM integration_sync_history h
               WHERE h.status = 'running'
                 AND h.integration_config_id = w.integration_config_id
                 AND h.endpoint_name = w.endpoint_name
               LIMIT 1
            ) r ON true
        ), remembered AS (
          INSERT INTO alertd_endpoint_watch AS m (integration_config_id, endpoint_name, last_started_at, checked_at)
          SELECT p.integration_config_id, p.endpoint_name, p.started, now() FROM probed p WHERE p.started IS NOT NULL
          ON CONFLICT (integration_config_id, endpoint_name) DO UPDATE
             SET last_started_at = greatest(m.last_started_at, EXCLUDED.last_started_at), checked_at = EXCLUDED.checked_at
        ), silent AS MATERIALIZED (
          SELECT p.* FROM probed p
           WHERE p.started IS NULL AND p.running IS NULL
           ORDER BY p.watch_from
           LIMIT $1
        ), overdue AS (
          SELECT s.*, last_run.id AS last_run_id,
                 coalesce(s.next_sync_at, last_run.sync_started_at + s.every) AS expected_at,
                 \(recipients("s"))
            FROM silent s
            LEFT JOIN LATERAL (
              SELECT h.id, h.sync_started_at FROM integration_sync_history h
               WHERE h.integration_config_id = s.integration_config_id
                 AND h.endpoint_name = s.endpoint_name
               ORDER BY h.sync_started_at DESC
               LIMIT 1
            ) last_run ON true
        ), opened AS (
          INSERT INTO integration_alert_incidents
                 (integration_config_id, endpoint_name, kind, severity, news_sync_id,
                  news_email_alert_id, news_webhook_alert_id, settings, expected_at, watch_from)
          SELECT o.integration_config_id, o.endpoint_name, 'overdue', 'failure', o.last_run_id,
                 CASE WHEN o.emails IS NOT NULL THEN gen_random_uuid() END,
                 CASE WHEN o.webhook IS NOT NULL THEN gen_random_uuid() END,
                 o.settings, o.expected_at AT TIME ZONE 'UTC', o.watch_from AT TIME ZONE 'UTC'
            FROM overdue o
          ON CONFLICT (integration_config_id, endpoint_name, kind) WHERE resolved_at IS NULL DO NOTHING
          RETURNING id, integration_config_id, endpoint_name, news_email_alert_id, news_webhook_alert_id
        ), \(news(type: "overdue", from: "overdue o ON o.integration_config_id = p.integration_config_id AND o.endpoint_name = p.endpoint_name", row: "o", run: "o.last_run_id", metadata: """
                  jsonb_build_object('frequency', o.sync_frequency, 'grace_seconds', extract(epoch FROM o.grace)::integer, 'queued_by', $2::text)
                  """))
        """

    /// Closes each open overdue incident whose endpoint ran again (a run started at or after its
    /// `watch_from`), with a notice (alert_type 'recovery') where its news went; one whose
    /// endpoint is no longer watched (disabled, removed, integration inactive, overdue turned
    /// off) closes without one. $1 limit, $2 worker, $3 overdue on by default.
    static let closeOverdue = """
        WITH closing AS (
          SELECT i.id, run.id AS run_id
            FROM integration_alert_incidents i
            LEFT JOIN integration_configs c ON c.id = i.integration_config_id
            LEFT JOIN alertd_integration_settings() cs ON cs.integration_config_id = i.integration_config_id
            LEFT JOIN integration_sync_configs e
                   ON e.integration_config_id = i.integration_config_id AND e.endpoint_name = i.endpoint_name
            LEFT JOIN LATERAL (
              SELECT h.id FROM integration_sync_history h
               WHERE h.integration_config_id = i.integration_config_id
                 AND h.sync_started_at >= (i.watch_from AT TIME ZONE 'UTC')
                 AND h.endpoint_name = i.endpoint_name
               ORDER BY h.sync_started_at
               LIMIT 1
            ) run ON true
           WHERE i.kind = 'overdue'
             AND i.resolved_at IS NULL
             AND (run.id IS NOT NULL
                  OR e.id IS NULL OR NOT coalesce(e.is_enabled, false)
                  OR NOT coalesce(c.is_active, true) OR NOT coalesce(c.alert_on_failure, true)
                  OR \(interval("e.sync_frequency")) IS NULL
                  OR NOT \(switched("cs.settings", "overdue", "$3")))
           ORDER BY i.opened_at
           LIMIT $1
           FOR UPDATE OF i SKIP LOCKED
        ), \(closed(returning: "", metadata: "jsonb_build_object('queued_by', $2::text)"))
        """

    /// Opens an incident of kind 'stuck' for each run still running past its threshold, and
    /// queues its news. $1 limit, $2 worker, $3 stuck on by default, $4 and $5 the least and the
    /// most a threshold can be (seconds), $6 the factor, $7 the horizon (seconds).
    ///
    /// The threshold is the integration's stuck_after_minutes if it has one; else the factor
    /// times the endpoint's typical duration (its average_sync_duration_seconds, else the median
    /// of its last 20 completed runs, when there are at least 3), between the least and the
    /// most; else the most. Runs older than the horizon are left alone. Runs still running are a
    /// handful (idx_sync_history_running); the typical duration is looked up for those past the
    /// least threshold only.
    static let openStuck = """
        WITH shortest AS (
          -- The shortest threshold any integration sets: runs younger than it and the least are
          -- not read at all.
          SELECT least(make_interval(secs => $4), min(\(minutes("s.settings", "stuck_after_minutes")))) AS age
            FROM alertd_integration_settings() s
        ), running AS MATERIALIZED (
          SELECT h.id, h.integration_config_id, h.endpoint_name, h.sync_started_at,
                 cs.settings,
                 \(minutes("cs.settings", "stuck_after_minutes")) AS fixed,
                 c.alert_emails, c.alert_webhook_url
            FROM integration_sync_history h
            JOIN integration_configs c ON c.id = h.integration_config_id
            LEFT JOIN alertd_integration_settings() cs ON cs.integration_config_id = c.id
           WHERE h.status = 'running'
             AND h.sync_started_at < (now() AT TIME ZONE 'UTC') - (SELECT age FROM shortest)
             AND h.sync_started_at > (now() AT TIME ZONE 'UTC') - make_interval(secs => $7)
             AND coalesce(c.is_active, true)
             AND coalesce(c.alert_on_failure, true)
             AND (cardinality(c.alert_emails) > 0 OR nullif(btrim(c.alert_webhook_url), '') IS NOT NULL)
             AND \(switched("cs.settings", "stuck", "$3"))
             AND NOT EXISTS (SELECT 1 FROM integration_alert_incidents i
                              WHERE i.integration_config_id = h.integration_config_id
                                AND i.endpoint_name = h.endpoint_name
                                AND i.kind = 'stuck'
                                AND i.resolved_at IS NULL)
        ), candidates AS MATERIALIZED (
          SELECT r.*, \(recipients("r")) FROM running r
           WHERE r.sync_started_at < (now() AT TIME ZONE 'UTC') - coalesce(r.fixed, make_interval(secs => $4))
        ), judged AS (
          SELECT r.*, t.typical_seconds, t.typical_from,
                 coalesce(extract(epoch FROM r.fixed)::float8,
                          -- greatest() passes over a NULL: nothing typical is the most.
                          CASE WHEN t.typical_seconds IS NOT NULL THEN least(greatest($6 * t.typical_seconds, $4), $5) END,
                          $5) AS after_seconds
            FROM candidates r
            LEFT JOIN integration_sync_configs e
                   ON e.integration_config_id = r.integration_config_id AND e.endpoint_name = r.endpoint_name
            LEFT JOIN LATERAL (
              SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY q.duration_seconds) AS median, count(*) AS runs
                FROM (SELECT p.duration_seconds FROM integration_sync_history p
                       WHERE r.fixed IS NULL AND coalesce(e.average_sync_duration_seconds, 0) <= 0
                         AND p.integration_config_id = r.integration_config_id
                         AND p.sync_started_at < r.sync_started_at
                         AND p.endpoint_name = r.endpoint_name
                         AND p.status IN ('success', 'partial')
                         AND p.duration_seconds IS NOT NULL
                       ORDER BY p.sync_started_at DESC
                       LIMIT 20) q
            ) recent ON true
           CROSS JOIN LATERAL (
             SELECT CASE WHEN r.fixed IS NOT NULL THEN NULL
                         WHEN e.average_sync_duration_seconds > 0 THEN e.average_sync_duration_seconds::float8
                         WHEN recent.runs >= 3 THEN recent.median END AS typical_seconds,
                    CASE WHEN r.fixed IS NOT NULL THEN 'stuck_after_minutes'
                         WHEN e.average_sync_duration_seconds > 0 THEN 'average_sync_duration_seconds'
                         WHEN recent.runs >= 3 THEN 'recent_runs' END AS typical_from
           ) t
        ), stuck AS (
          SELECT * FROM judged j
           WHERE j.sync_started_at < (now() AT TIME ZONE 'UTC') - make_interval(secs => j.after_seconds)
           ORDER BY j.sync_started_at
           LIMIT $1
        ), opened AS (
          INSERT INTO integration_alert_incidents
                 (integration_config_id, endpoint_name, kind, severity, opened_by_sync_id, news_sync_id,
                  news_email_alert_id, news_webhook_alert_id, settings)
          SELECT s.integration_config_id, s.endpoint_name, 'stuck', 'failure', s.id, s.id,
                 CASE WHEN s.emails IS NOT NULL THEN gen_random_uuid() END,
                 CASE WHEN s.webhook IS NOT NULL THEN gen_random_uuid() END,
                 s.settings
            FROM stuck s
          ON CONFLICT (integration_config_id, endpoint_name, kind) WHERE resolved_at IS NULL DO NOTHING
          RETURNING id, opened_by_sync_id, news_email_alert_id, news_webhook_alert_id
        ), \(news(type: "stuck", from: "stuck s ON s.id = p.opened_by_sync_id", row: "s", run: "s.id", metadata: """
                  jsonb_build_object('stuck_after_seconds', round(s.after_seconds)::integer, 'typical_seconds', round(s.typical_seconds)::integer,
                                     'typical_from', s.typical_from, 'queued_by', $2::text)
                  """))
        """

    /// Closes each open stuck incident whose run left 'running' (or is gone), with a notice
    /// (alert_type 'recovery') where its news went when the run is still there. $1 limit,
    /// $2 worker.
    static let closeStuck = """
        WITH closing AS (
          SELECT i.id, h.id AS run_id, h.status
            FROM integration_alert_incidents i
            LEFT JOIN integration_sync_history h ON h.id = i.opened_by_sync_id
           WHERE i.kind = 'stuck'
             AND i.resolved_at IS NULL
             AND (h.id IS NULL OR h.status IS DISTINCT FROM 'running')
           ORDER BY i.opened_at
           LIMIT $1
           FOR UPDATE OF i SKIP LOCKED
        ), \(closed(returning: ", closing.status", metadata: "jsonb_build_object('sync_status', d.status, 'queued_by', $2::text)"))
        """
}
