import AlertdPostgres
import Foundation

/// The dispatcher's SQL: claiming due alerts under a lease and recording what happened, each in
/// one round trip for a whole batch.
public struct AlertStore: Sendable {
    public let connection: PostgresConnection
    /// This instance's name, written to locked_by and to every attempt.
    public let worker: String

    public init(connection: PostgresConnection, worker: String) {
        self.connection = connection
        self.worker = worker
    }

    /// Leases up to `limit` due alerts of `channels` for `lease`, oldest due first. Rows another
    /// instance holds are skipped, not waited for; rows whose lease expired (a crashed instance's)
    /// are due again. Each claim starts an attempt: attempt_count goes up by one.
    ///
    /// The alerts of a group (the news of an integration's endpoints held to go out as one message,
    /// due together) are claimed together, by one instance.
    ///
    /// Webhooks to the hosts in `excludingDestinations` (those with as many in flight as allowed)
    /// are left for later. Fields a tenant types in are cut to a length a message can carry.
    ///
    /// Planned for each call, not prepared: its best plan depends on how many alerts are due,
    /// which swings from none to a backlog of a hundred thousand within seconds. A prepared
    /// claim's generic plan drained a backlog growing under eight writers at a fifth of the
    /// speed (`alertd bench --only throughput`: about 560 webhooks/s against 1,800).
    public func claim(
        limit: Int, channels: [Channel], lease: Duration, excludingDestinations: [String] = [], health: DestinationClaim? = nil
    ) async throws -> [ClaimedAlert] {
        let sql = health.map { $0.circuits ? Self.claimWithHealthSQL : Self.claimAllHealthySQL } ?? Self.claimSQL
        let rows = try await connection.query(
            sql, [limit, worker, channels, lease.seconds, excludingDestinations] + (health.map { [$0.relay, $0.maxAge.seconds] } ?? [])
        )
        return try rows.map(ClaimedAlert.init(row:))
    }

    /// What the claim needs for destination health (migration 20251130): the SMTP relay's
    /// destination (nil without email), and ALERTD_ALERT_MAX_AGE.
    public struct DestinationClaim: Sendable {
        public let relay: String?
        public let maxAge: Duration
        /// Whether a destination may have its circuit open or be disabled: false when the last
        /// look found every destination healthy or failing with its circuit closed, and the claim
        /// then skips the open circuits' look-ups (planning the full claim costs about a
        /// millisecond more).
        public var circuits = true

        public init(relay: String?, maxAge: Duration, circuits: Bool = true) {
            self.relay = relay
            self.maxAge = maxAge
            self.circuits = circuits
        }
    }

    /// The due alerts, oldest due first, as every claim reads them; `extra` narrows them.
    private static func dueAlerts(extra: String) -> String {
        """
        SELECT id
          FROM integration_alert_history
         WHERE delivery_status = 'pending'
           AND next_attempt_at <= now()
           AND (locked_until IS NULL OR locked_until < now())
           AND alert_channel = ANY ($3::text[])
           AND (cardinality($5::text[]) = 0 OR alert_channel <> 'webhook'
                OR \(destination("recipients")) <> ALL ($5::text[]))
           AND (metadata ->> 'group' IS NULL OR pg_try_advisory_xact_lock(\(groupLockClass), hashtext(metadata ->> 'group')))\(extra)
         ORDER BY next_attempt_at
         LIMIT $1
         FOR UPDATE SKIP LOCKED
        """
    }

    /// What a claimed alert `c` says, as `ClaimedAlert(row:)` reads it; `health` the columns of
    /// destination health.
    private static func claimedColumns(health: String) -> String {
        """
        SELECT c.id, c.alert_type, c.alert_channel, c.origin, c.recipients, c.attempt_count,
               c.max_attempts, c.created_at,
               -- A hand-written row joins no group: its metadata is the tenant's to write.
               CASE WHEN c.origin <> 'manual' THEN c.metadata ->> 'group' END AS group_key,
               CASE c.alert_channel WHEN 'webhook' THEN \(destination("c.recipients")) END AS destination,
               ARRAY(SELECT jsonb_array_elements_text(coalesce(c.metadata -> 'email_delivered', '[]'))) AS email_delivered,
               ARRAY(SELECT jsonb_array_elements_text(coalesce(c.metadata -> 'email_bounced', '[]'))) AS email_bounced,
               \(notConfiguredColumn),
               CASE c.alert_type WHEN 'held' THEN c.metadata -> 'held' END AS held,
               i.id AS integration_id, \(cut("i.integration_name", 500)) AS integration_name, i.integration_type,
               i.environment, i.tenant_id,
               h.id AS sync_id, \(cut("h.endpoint_name", 500)) AS endpoint_name, h.status AS sync_status, h.sync_started_at,
               h.sync_completed_at, h.duration_seconds, h.records_synced, h.records_failed,
               h.records_skipped, \(cut("h.error_message", 8000)) AS error_message, h.retry_count, h.max_retries,
               h.retry_at, h.triggered_by,
               \(incidentColumns),
               \(health)
        """
    }

    /// The recipients of an alert written by hand (origin `manual`: a tenant admin's insert
    /// through the data API, say) that its integration does not name: its `alert_emails` (in any
    /// case), its `alert_webhook_url` (as written, or as the trigger writes it). Such an alert
    /// goes to nobody (`AlertDelivery.notSent`). NULL for every other origin, at no cost.
    static let notConfiguredColumn = """
        CASE WHEN c.origin = 'manual' THEN ARRAY(
                 SELECT r FROM unnest(c.recipients) r
                  WHERE (CASE c.alert_channel
                           WHEN 'email' THEN lower(btrim(r)) = ANY (SELECT lower(btrim(e)) FROM unnest(i.alert_emails) e)
                           WHEN 'webhook' THEN r IN (btrim(i.alert_webhook_url), \(DestinationStore.alertURL("i.alert_webhook_url")))
                           ELSE false
                         END) IS NOT TRUE)
        END AS not_configured
        """

    /// A pending alert's destination in `alertd_destinations`: its webhook URL, or the relay ($6).
    static func target(_ alert: String) -> String {
        "CASE \(alert).alert_channel WHEN 'webhook' THEN \(alert).recipients[1] ELSE $6::text END"
    }

    /// Destination health's columns when the schema has none (before 20251130).
    static let noHealthColumns = """
        NULL::text AS target_key, NULL::boolean AS target_probe, NULL::timestamptz AS target_disabled_at,
        NULL::text AS target_disabled_reason, NULL::boolean AS expired, NULL::integer AS probes_spent,
        NULL::text AS disabled_url, NULL::timestamptz AS disabled_at, NULL::text AS disabled_reason,
        NULL::timestamptz AS disabled_failing_since, NULL::text AS disabled_last_error, NULL::integer AS disabled_undelivered
        """

    /// The claim of due alerts, oldest due first, each claimed alert's row read with `health`'s
    /// columns.
    static func plainClaim(health: String) -> String {
        """
        WITH due AS (
        \(dueAlerts(extra: ""))
        ), claimed AS (
          UPDATE integration_alert_history a
             SET locked_by = $2,
                 locked_until = now() + make_interval(secs => $4),
                 attempt_count = a.attempt_count + 1,
                 last_attempt_at = now()
            FROM due
           WHERE a.id = due.id
          RETURNING a.*
        )
        \(claimedColumns(health: health))
          FROM claimed c
          LEFT JOIN integration_configs i ON i.id = c.integration_config_id
          LEFT JOIN integration_sync_history h ON h.id = c.sync_history_id
          \(incidentJoins)
         ORDER BY c.next_attempt_at
        """
    }

    /// The claim on a schema without destination health (before 20251130).
    static let claimSQL = plainClaim(health: noHealthColumns)

    /// The claim when no circuit is open and no destination disabled: the plain claim, with the
    /// columns of destination health each alert's outcome needs.
    static let claimAllHealthySQL = plainClaim(health: healthColumns(probe: "false", disabledAt: "NULL::timestamptz", disabledReason: "NULL::text"))

    /// Destination health's columns of claimed alert `c`: its destination, whether it is the
    /// probe, its destination's disabling, whether it waited too long ($7), its probes, and what
    /// a `webhook_disabled` notice tells.
    static func healthColumns(probe: String, disabledAt: String, disabledReason: String) -> String {
        """
            \(target("c")) AS target_key, \(probe) AS target_probe,
            \(disabledAt) AS target_disabled_at, \(disabledReason) AS target_disabled_reason,
            c.origin <> 'test' AND coalesce((c.metadata -> 'replays' -> -1 ->> 'at')::timestamptz, c.created_at)
              < now() - make_interval(secs => $7) AS expired,
            CASE WHEN c.metadata ->> 'probes' ~ '^[0-9]{1,6}$' THEN (c.metadata ->> 'probes')::integer END AS probes_spent,
            c.metadata -> 'destination' ->> 'url' AS disabled_url,
            (c.metadata -> 'destination' ->> 'disabled_at')::timestamptz AS disabled_at,
            c.metadata -> 'destination' ->> 'reason' AS disabled_reason,
            (c.metadata -> 'destination' ->> 'failing_since')::timestamptz AS disabled_failing_since,
            c.metadata -> 'destination' ->> 'last_error' AS disabled_last_error,
            (c.metadata -> 'destination' ->> 'undelivered')::integer AS disabled_undelivered
        """
    }

    /// The claim with destination health. Alerts for a destination whose circuit is open are not
    /// claimed: those due are set aside (`parked`: next_attempt_at NULL, metadata -> 'parked'
    /// says for what and when they were due), so later claims read past none of them. When an
    /// open circuit's probe is due and no instance holds it, the claim takes it (`probe_by`,
    /// `probe_until`, the destination's row locked and skipped by the others) with the waiting
    /// alert tried longest ago, so that probes go round the waiting alerts. Alerts for a
    /// disabled destination are claimed to be failed unsent, as are alerts that waited longer
    /// than ALERTD_ALERT_MAX_AGE ($7 seconds).
    ///
    /// With every destination healthy this costs two look-ups of an empty partial index.
    static let claimWithHealthSQL = """
        WITH circuits AS MATERIALIZED (
          SELECT coalesce(array_agg(destination) FILTER (WHERE circuit_opened_at IS NOT NULL), '{}') AS open,
                 count(*) FILTER (WHERE state = 'disabled') > 0 AS any_disabled
            FROM alertd_destinations
           WHERE circuit_opened_at IS NOT NULL OR state = 'disabled'
        ), probes AS (
          SELECT d.destination, x.id
            FROM alertd_destinations d
            CROSS JOIN LATERAL (
              SELECT a.id
                FROM integration_alert_history a
               WHERE a.delivery_status = 'pending'
                 AND (a.next_attempt_at <= now() OR (a.next_attempt_at IS NULL AND a.metadata ? 'parked'))
                 AND (a.locked_until IS NULL OR a.locked_until < now())
                 AND a.alert_channel = d.channel
                 AND \(target("a")) = d.destination
               ORDER BY a.last_attempt_at NULLS FIRST, a.created_at
               LIMIT 1
               FOR UPDATE SKIP LOCKED
            ) x
           WHERE d.circuit_opened_at IS NOT NULL
             AND d.next_probe_at <= now()
             AND (d.probe_until IS NULL OR d.probe_until < now())
             AND d.channel = ANY ($3::text[])
           FOR UPDATE OF d SKIP LOCKED
        ), probing AS (
          UPDATE alertd_destinations d
             SET probe_by = $2, probe_until = now() + make_interval(secs => $4), updated_at = now()
            FROM probes p
           WHERE d.destination = p.destination
          RETURNING d.destination
        ), parked AS (
          UPDATE integration_alert_history a
             SET next_attempt_at = NULL,
                 metadata = coalesce(a.metadata, '{}') || jsonb_build_object('parked', jsonb_build_object(
                              'destination', w.target, 'since', now(), 'due_at', a.next_attempt_at))
            FROM (SELECT w.id, \(target("w")) AS target
                    FROM integration_alert_history w
                   WHERE w.delivery_status = 'pending'
                     AND w.next_attempt_at <= now()
                     AND (w.locked_until IS NULL OR w.locked_until < now())
                     AND w.alert_channel = ANY ($3::text[])
                     AND cardinality((SELECT open FROM circuits)) > 0
                     AND \(target("w")) = ANY ((SELECT open FROM circuits)::text[])
                     AND w.id NOT IN (SELECT id FROM probes)
                   ORDER BY w.next_attempt_at
                   LIMIT 1000
                   FOR UPDATE SKIP LOCKED) w
           WHERE a.id = w.id
          RETURNING a.id
        ), flowing AS (
        \(dueAlerts(extra: """

           AND (cardinality((SELECT open FROM circuits)) = 0
                OR coalesce(\(target("integration_alert_history")), '') <> ALL ((SELECT open FROM circuits)::text[]))
        """))
        ), due AS (
          SELECT id FROM flowing UNION SELECT id FROM probes
        ), claimed AS (
          UPDATE integration_alert_history a
             SET locked_by = $2,
                 locked_until = now() + make_interval(secs => $4),
                 attempt_count = a.attempt_count + 1,
                 last_attempt_at = now(),
                 next_attempt_at = coalesce(a.next_attempt_at, now()),
                 metadata = CASE WHEN a.metadata ? 'parked' THEN a.metadata - 'parked' ELSE a.metadata END
            FROM due
           WHERE a.id = due.id
          RETURNING a.*
        )
        \(claimedColumns(health: healthColumns(probe: "c.id IN (SELECT id FROM probes)", disabledAt: "dd.disabled_at", disabledReason: "dd.disabled_reason")))
          FROM claimed c
          LEFT JOIN integration_configs i ON i.id = c.integration_config_id
          LEFT JOIN integration_sync_history h ON h.id = c.sync_history_id
          LEFT JOIN alertd_destinations dd
                 ON (SELECT any_disabled FROM circuits) AND dd.destination = \(target("c")) AND dd.state = 'disabled'
          \(incidentJoins)
         ORDER BY c.next_attempt_at
        """

    /// The advisory lock class of a group's claim: the first claim that meets an alert of a group
    /// (`metadata ->> 'group'`) takes the group's lock to the end of its statement, and another
    /// instance claiming at the same moment skips the group's alerts, so that its message is
    /// not split between the two. (1634497140 is the waiting lock's.)
    static let groupLockClass = 1634497141

    /// SQL for a webhook alert's destination: the lower-cased host and port of its URL (as libcurl
    /// counts connections per host), "" if it has none.
    /// The dispatcher counts webhooks in flight by this key.
    static func destination(_ recipients: String) -> String {
        "coalesce(lower(substring(\(recipients)[1] from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?((?:\\[[^]]*\\]|[^/?#:]*)(?::[0-9]*)?)')), '')"
    }

    /// The incident of claimed alert `c`, as columns: `ClaimedAlert.Incident` reads them.
    static let incidentColumns = """
        inc.incident_id, inc.incident_opened_at, inc.incident_severity, inc.incident_resolved_at,
        inc.incident_reminders_sent, inc.incident_failed_runs, inc.incident_recent_runs, inc.incident_last_failed_at,
        inc.incident_last_error, coalesce(inc.incident_kind, 'run') AS incident_kind, inc.incident_endpoint,
        inc.incident_expected_at, inc.watch_frequency, inc.watch_grace_seconds, inc.watch_stuck_after_seconds,
        inc.watch_typical_seconds, inc.watch_typical_from
        """

    /// The join `incidentColumns` reads (`inc`): the incident, for a reminder or a recovery
    /// notice the runs that failed while it was open (read through the integration's alerts,
    /// newest first), and for an overdue endpoint or a stuck run what alertd expected (its news
    /// alert's metadata). The columns of 20251129 are read through to_jsonb, so that this alertd
    /// claims on a database without them too.
    ///
    /// One subquery, planned on its own (OFFSET 0 keeps the planner from pulling its five
    /// relations up into the claim's join search, which made planning the claim about three times
    /// as costly as before incidents), and run only for an alert of an incident.
    static let incidentJoins = """
        LEFT JOIN LATERAL (
          SELECT n.id AS incident_id, n.opened_at AS incident_opened_at, n.severity AS incident_severity,
                 n.resolved_at AS incident_resolved_at, n.reminders_sent AS incident_reminders_sent,
                 s.failed_runs AS incident_failed_runs, s.recent_runs AS incident_recent_runs,
                 lr.sync_started_at AS incident_last_failed_at, \(cut("lr.error_message", 2000)) AS incident_last_error,
                 nj.row ->> 'kind' AS incident_kind, \(cut("n.endpoint_name", 500)) AS incident_endpoint,
                 (nj.row ->> 'expected_at')::timestamptz AS incident_expected_at,
                 na.metadata ->> 'frequency' AS watch_frequency, (na.metadata ->> 'grace_seconds')::integer AS watch_grace_seconds,
                 (na.metadata ->> 'stuck_after_seconds')::integer AS watch_stuck_after_seconds,
                 (na.metadata ->> 'typical_seconds')::integer AS watch_typical_seconds, na.metadata ->> 'typical_from' AS watch_typical_from
            FROM integration_alert_incidents n
            LEFT JOIN LATERAL (
              SELECT count(*)::integer AS failed_runs,
                     (array_agg(r.run ORDER BY r.at DESC))[1:20] AS recent_runs,
                     (array_agg(r.run ORDER BY r.at DESC))[1] AS last_run
                FROM (SELECT a.sync_history_id AS run, max(a.created_at) AS at
                        FROM integration_alert_history a
                       WHERE c.alert_type IN ('recovery', 'reminder')
                         AND a.incident_id = n.id
                         AND a.alert_type IN ('failure', 'warning')
                         AND a.sync_history_id IS NOT NULL
                       GROUP BY a.sync_history_id) r
               HAVING count(*) > 0
            ) s ON true
            LEFT JOIN integration_sync_history lr ON lr.id = s.last_run
            CROSS JOIN LATERAL (SELECT to_jsonb(n) AS row) nj
            LEFT JOIN integration_alert_history na
                   ON nj.row ->> 'kind' IN ('overdue', 'stuck')
                  AND na.id = coalesce(n.news_webhook_alert_id, n.news_email_alert_id)
           WHERE c.incident_id IS NOT NULL AND n.id = c.incident_id
          OFFSET 0
        ) inc ON true
        """

    /// SQL that cuts a text column to `limit` characters, saying so.
    static func cut(_ column: String, _ limit: Int) -> String {
        "CASE WHEN length(\(column)) > \(limit) THEN left(\(column), \(limit)) || ' [cut: ' || length(\(column)) || ' characters in all]' ELSE \(column) END"
    }

    /// Writes test alerts for an integration, one per channel it has, already leased to this
    /// instance, and returns them claimed: `alertd --test-notification --integration`.
    public func createTestAlerts(integration: UUID, channels: [Channel], lease: Duration) async throws -> [ClaimedAlert] {
        let rows = try await connection.query(
            """
            WITH config AS (
              SELECT c.id,
                     ARRAY(SELECT DISTINCT btrim(e) FROM unnest(c.alert_emails) e WHERE btrim(e) <> '') AS emails,
                     nullif(btrim(c.alert_webhook_url), '') AS webhook
                FROM integration_configs c WHERE c.id = $1
            ), wanted AS (
              SELECT config.id, 'email' AS channel, config.emails AS recipients FROM config
               WHERE cardinality(config.emails) > 0 AND 'email' = ANY ($3::text[])
              UNION ALL
              SELECT config.id, 'webhook',
                     ARRAY[regexp_replace(config.webhook, '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\\1[redacted]@')]
                FROM config WHERE config.webhook IS NOT NULL AND 'webhook' = ANY ($3::text[])
            ), claimed AS (
              INSERT INTO integration_alert_history
                     (integration_config_id, alert_type, alert_channel, recipients, sent_at, delivery_status, origin,
                      attempt_count, max_attempts, last_attempt_at, locked_by, locked_until, metadata)
              SELECT id, 'success', channel, recipients, NULL, 'pending', 'test', 1, 1, now(), $2,
                     now() + make_interval(secs => $4), '{"test": true}'
                FROM wanted
              RETURNING *
            )
            SELECT c.id, c.alert_type, c.alert_channel, c.origin, c.recipients, c.attempt_count, c.max_attempts, c.created_at,
                   NULL AS group_key, CASE c.alert_channel WHEN 'webhook' THEN \(Self.destination("c.recipients")) END AS destination,
                   ARRAY[]::text[] AS email_delivered, ARRAY[]::text[] AS email_bounced, NULL::text[] AS not_configured,
                   i.id AS integration_id, i.integration_name, i.integration_type, i.environment, i.tenant_id,
                   NULL::uuid AS sync_id, NULL AS endpoint_name, NULL AS sync_status, NULL::timestamp AS sync_started_at,
                   NULL::timestamp AS sync_completed_at, NULL::int AS duration_seconds, NULL::int AS records_synced,
                   NULL::int AS records_failed, NULL::int AS records_skipped, NULL AS error_message, NULL::int AS retry_count,
                   NULL::int AS max_retries, NULL::timestamp AS retry_at, NULL AS triggered_by,
                   \(Self.incidentColumns),
                   \(Self.noHealthColumns)
              FROM claimed c JOIN integration_configs i ON i.id = c.integration_config_id
              \(Self.incidentJoins)
             ORDER BY c.alert_channel
            """,
            [integration, worker, channels, lease.seconds]
        )
        return try rows.map(ClaimedAlert.init(row:))
    }

    /// Records attempts and their alerts' new state, for alerts this instance still holds.
    /// Returns the ids it recorded; an alert whose lease another instance took over is skipped.
    /// An alert failed without an attempt (`AttemptOutcome.attempted`) gets no attempt row, and
    /// its claim's count is given back.
    @discardableResult
    public func record(_ outcomes: [AttemptOutcome]) async throws -> Set<UUID> {
        guard !outcomes.isEmpty else { return [] }
        let rows = try await connection.preparedQuery(
            """
            WITH r AS (
              SELECT *
                FROM unnest($2::uuid[], $3::int[], $4::text[], $5::timestamptz[], $6::int[], $7::int[],
                            $8::text[], $9::text[], $10::float8[], $11::text[], $12::text[], $13::text[], $14::text[],
                            $15::boolean[])
                  AS r(id, attempt, outcome, started_at, duration_ms, http_status, smtp_reply, error,
                       retry_in, subject, message, details, metadata_patch, attempted)
            ), attempts AS (
              INSERT INTO integration_alert_attempts
                     (alert_id, attempt_number, started_at, duration_ms, outcome, http_status, smtp_reply,
                      error, worker, details)
              SELECT r.id, r.attempt, r.started_at, r.duration_ms, r.outcome, r.http_status, r.smtp_reply,
                     r.error, $1, coalesce(r.details::jsonb, '{}')
                FROM r
                JOIN integration_alert_history a ON a.id = r.id AND a.locked_by = $1
               WHERE r.attempted
              ON CONFLICT (alert_id, attempt_number) DO NOTHING
            )
            UPDATE integration_alert_history a
               SET delivery_status = CASE r.outcome WHEN 'retry' THEN 'pending' ELSE r.outcome END,
                   delivery_error = r.error,
                   sent_at = CASE r.outcome WHEN 'sent' THEN now()::timestamp ELSE a.sent_at END,
                   next_attempt_at = CASE r.outcome WHEN 'retry' THEN now() + make_interval(secs => r.retry_in)
                                     ELSE a.next_attempt_at END,
                   subject = coalesce(r.subject, a.subject),
                   message = coalesce(r.message, a.message),
                   metadata = coalesce(a.metadata, '{}') || coalesce(r.metadata_patch::jsonb, '{}'),
                   attempt_count = CASE WHEN r.attempted THEN a.attempt_count ELSE greatest(a.attempt_count - 1, 0) END,
                   locked_by = NULL,
                   locked_until = NULL
              FROM r
             WHERE a.id = r.id AND a.locked_by = $1
            RETURNING a.id
            """,
            [
                worker,
                outcomes.map(\.alertID),
                outcomes.map(\.attempt),
                outcomes.map(\.result.rawValue),
                outcomes.map(\.startedAt),
                outcomes.map { Int(($0.duration.seconds * 1000).rounded()) },
                outcomes.map(\.httpStatus),
                outcomes.map(\.smtpReply),
                outcomes.map(\.error),
                outcomes.map { $0.retryIn?.seconds },
                outcomes.map(\.subject),
                outcomes.map(\.message),
                outcomes.map(\.details),
                outcomes.map(\.metadataPatch),
                outcomes.map(\.attempted),
            ]
        )
        return Set(try rows.map { try $0.decode("id", as: UUID.self) })
    }

    /// Gives back leases this instance holds without an attempt made (at shutdown): the alerts are
    /// due again at once, for any instance, and the attempt is not counted.
    public func release(_ ids: [UUID]) async throws {
        guard !ids.isEmpty else { return }
        try await connection.preparedQuery(
            """
            UPDATE integration_alert_history
               SET locked_by = NULL, locked_until = NULL, attempt_count = greatest(attempt_count - 1, 0)
             WHERE id = ANY ($1::uuid[]) AND locked_by = $2
            """,
            [ids, worker]
        )
    }

    /// Extends the leases this instance still holds on `ids` to `lease` from now.
    public func renew(_ ids: [UUID], lease: Duration) async throws {
        guard !ids.isEmpty else { return }
        try await connection.preparedQuery(
            """
            UPDATE integration_alert_history
               SET locked_until = now() + make_interval(secs => $3)
             WHERE id = ANY ($1::uuid[]) AND locked_by = $2
            """,
            [ids, worker, lease.seconds]
        )
    }

    /// How the dispatcher's sessions plan, kept across reconnects: with whatever the statistics
    /// say, and whatever size the table had when a statement was prepared.
    ///
    /// - The claim always goes down `idx_alert_history_due` in due order and stops at its limit.
    ///   Planned from statistics taken before a burst (they say almost nothing is pending), it
    ///   gathered every due row with a bitmap scan and sorted them, for each claim: 49 ms for 100
    ///   alerts out of 26,000, against under 1 ms.
    /// - Prepared statements (record, renew, release) are planned for each call: a generic plan
    ///   made while the table was small hashed all of it for every batch once it had grown.
    /// - No JIT: with sorts discouraged a plan's cost looks enormous, and JIT compiled each claim
    ///   for 280 ms.
    public static let sessionSettings =
        "SET enable_bitmapscan = off; SET enable_sort = off; SET plan_cache_mode = force_custom_plan; SET jit = off"

    // MARK: The waiting lock

    /// The advisory lock a dispatcher holds while it waits for work: the trigger notifies only
    /// while someone holds it (migration 20251126_alertd_notify_when_waited_for explains the
    /// handshake). Two int4 keys; 1634497140 is "alrt".
    public static let waitingLock = (classID: 1_634_497_140, objectID: 1)

    /// Takes the waiting lock for this session. It waits, up to `timeout`, for the transactions
    /// of writers that queued an alert without notifying to end, so a claim made after it sees
    /// their alerts. Returns false if the wait timed out: a writer's transaction is still open,
    /// or another session holds the lock.
    public func takeWaitingLock(timeout: Duration) async throws -> Bool {
        let milliseconds = max(1, Int(timeout.seconds * 1000))
        do {
            try await connection.withTransaction { session in
                try session.query("SELECT set_config('lock_timeout', $1, true)", ["\(milliseconds)ms"])
                try session.query("SELECT pg_advisory_lock($1, $2)", [Self.waitingLock.classID, Self.waitingLock.objectID])
            }
            return true
        } catch let error as PostgresError where error.sqlState == "55P03" {
            return false
        }
    }

    /// Lets the waiting lock go, so writers stop notifying, and notifies once: other instances
    /// that sleep on the strength of this one's lock wake and share the backlog. It lets go of
    /// every session-level advisory lock of this session (it holds no other), so a lock taken
    /// twice, or taken by a statement whose transaction then failed, is gone too.
    public func releaseWaitingLock() async throws {
        try await connection.query("SELECT pg_advisory_unlock_all(), pg_notify('alertd', '')")
    }

    /// Whether another session holds the waiting lock: another instance is waiting, so writers
    /// notify.
    public func waitingLockHeldElsewhere() async throws -> Bool {
        try await connection.query(
            """
            SELECT EXISTS (
              SELECT 1 FROM pg_locks
               WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 2
                 AND mode = 'ExclusiveLock' AND granted AND pid <> pg_backend_pid()
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            ) AS held
            """,
            [Self.waitingLock.classID, Self.waitingLock.objectID]
        )[0].decode("held", as: Bool.self)
    }

    /// When the next pending alert of `channels` falls due (a retry, or a lease running out); nil
    /// when none is pending. With destination `health`, also when the next probe of an open
    /// circuit with alerts waiting falls due.
    public func nextDue(channels: [Channel], health: Bool = false) async throws -> Date? {
        try await connection.query(
            """
            SELECT least(
                     (SELECT min(greatest(next_attempt_at, coalesce(locked_until, next_attempt_at)))
                        FROM integration_alert_history
                       WHERE delivery_status = 'pending' AND next_attempt_at IS NOT NULL
                         AND alert_channel = ANY ($1::text[])),
                     \(health ? Self.nextProbeSQL : "NULL::timestamptz")) AS due
            """,
            [channels]
        )[0].decode("due", as: Date?.self)
    }

    /// The next probe of an open circuit that has alerts waiting.
    static let nextProbeSQL = """
        (SELECT min(greatest(d.next_probe_at, coalesce(d.probe_until, d.next_probe_at)))
           FROM alertd_destinations d
          WHERE d.circuit_opened_at IS NOT NULL AND d.channel = ANY ($1::text[])
            AND EXISTS (SELECT 1 FROM integration_alert_history a
                         WHERE a.delivery_status = 'pending' AND a.next_attempt_at IS NULL AND a.metadata ? 'parked'
                           AND a.metadata -> 'parked' ->> 'destination' = d.destination))
        """

    /// Pending alerts per channel, and how long the oldest one due now (not under a lease) has
    /// waited: what /metrics shows of the queue. The table's, not just this instance's.
    public func queueState() async throws -> DispatcherMetrics.QueueState {
        let rows = try await connection.query(
            """
            SELECT alert_channel,
                   count(*) AS pending,
                   coalesce(extract(epoch FROM now() - min(next_attempt_at)
                              FILTER (WHERE next_attempt_at <= now()
                                        AND (locked_until IS NULL OR locked_until <= now()))), 0)::float8 AS oldest_due_s
              FROM integration_alert_history
             WHERE delivery_status = 'pending'
             GROUP BY alert_channel
            """
        )
        var state = DispatcherMetrics.QueueState(pending: [:], oldestDueAge: [:])
        for row in rows {
            let channel = try row.decode("alert_channel", as: String.self)
            state.pending[channel] = try row.decode("pending", as: Int.self)
            state.oldestDueAge[channel] = try row.decode("oldest_due_s", as: Double.self)
        }
        return state
    }
}
