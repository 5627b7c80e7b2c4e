import AlertdPostgres
import Foundation

/// Destination health's SQL (migration 20251130): what attempts showed of each destination, the
/// sweep for alerts waiting too long, and `alertd endpoints`.
///
/// A destination's row changes only here and in the claim (which takes a probe): every instance
/// writes the same table, one row lock at a time, so two instances never both open a circuit,
/// both disable a URL or both tell its owners.
public struct DestinationStore: Sendable {
    public let connection: PostgresConnection
    /// This instance's name: who disabled a URL.
    public let worker: String

    public init(connection: PostgresConnection, worker: String) {
        self.connection = connection
        self.worker = worker
    }

    /// Whether the database has destination health (migration 20251130).
    public func available() async throws -> Bool {
        try await connection.query("SELECT to_regclass('public.alertd_destinations') IS NOT NULL AS present")[0].decode("present", as: Bool.self)
    }

    // MARK: What attempts showed

    /// One destination's part of a batch of outcomes, in the order they came.
    struct Observation: Equatable {
        let destination: String
        var reached = false
        /// Failures after the batch's last success (all of them without one).
        var failures = 0
        /// The last failure's.
        var kind = "reached"
        var error: String?
        var httpStatus: Int?
        var retryAfter: Double?
        /// The batch carried this instance's probe of it.
        var probed = false
    }

    /// Outcomes folded per destination, those that say something of it.
    static func observations(_ outcomes: [AttemptOutcome]) -> [Observation] {
        var order: [String] = []
        var seen: [String: Observation] = [:]
        for outcome in outcomes {
            guard let key = outcome.destination, outcome.signal != nil || outcome.probe else { continue }
            var observation = seen[key] ?? { order.append(key); return Observation(destination: key) }()
            if outcome.probe { observation.probed = true }
            switch outcome.signal {
            case .reached?:
                observation.reached = true
                observation.failures = 0
                observation.retryAfter = nil
            case let signal?:
                observation.failures += 1
                observation.kind = signal.kind
                observation.error = signal.reason.map { String($0.prefix(2000)) }
                observation.httpStatus = signal.httpStatus
                if let wait = signal.retryAfter?.seconds { observation.retryAfter = max(observation.retryAfter ?? 0, wait) }
            case nil:
                break
            }
            seen[key] = observation
        }
        return order.compactMap { seen[$0] }
    }

    /// A destination's change of state, as a report found it.
    public struct Change: Sendable, Equatable {
        public let destination: String
        public let channel: Channel
        public let state: String
        public let was: String
        public let circuitOpen: Bool
        public let circuitWasOpen: Bool
        public let nextProbeAt: Date?
        public let disabledReason: String?
        /// For a URL just disabled: the integrations that use it, and those told by email.
        public let integrations: Int
        public let notified: Int

        public var circuitOpened: Bool { circuitOpen && !circuitWasOpen }
        public var circuitClosed: Bool { circuitWasOpen && !circuitOpen }
        public var disabled: Bool { state == "disabled" && was != "disabled" }
    }

    /// What a report changed: each destination it wrote, and the waiting alerts it let go.
    public struct Report: Sendable, Equatable {
        public var changes: [Change] = []
        /// Alerts that waited for a circuit now closed, due again.
        public var released = 0
        /// Emails queued to tell integrations their URL was disabled.
        public var notices: Int { changes.reduce(0) { $0 + $1.notified } }
    }

    /// Writes what `outcomes` showed of their destinations: failures in a row and since when,
    /// circuits opened (after `circuitFailures` failures that say the destination is unavailable,
    /// or at once for a Retry-After) and closed (by any answer), probes' results and the next
    /// probe's time, URLs disabled (410 Gone, or failing for `disableAfter`) with one email to
    /// each integration that uses the URL. The alerts that waited for a circuit now closed are due
    /// again, oldest first. One transaction; the destinations' rows locked in one order.
    public func report(_ outcomes: [AttemptOutcome], settings: DestinationSettings) async throws -> Report {
        let observations = Self.observations(outcomes).sorted { $0.destination < $1.destination }
        guard !observations.isEmpty else { return Report() }
        let keys = observations.map(\.destination)
        let channels = keys.map { $0.hasPrefix("smtp://") ? Channel.email.rawValue : Channel.webhook.rawValue }
        let worker = self.worker
        let parameters: [(any PostgresEncodable)?] = [
            keys, observations.map(\.reached), observations.map(\.failures), observations.map(\.kind), observations.map(\.error),
            observations.map(\.httpStatus), observations.map(\.retryAfter), observations.map(\.probed),
            settings.circuitFailures, settings.disableAfter?.seconds, settings.probeInitial.seconds, settings.probeMaximum.seconds,
            settings.disableAfter?.settingText ?? "off", worker,
        ]
        let rows = try await connection.withTransaction { session in
            try session.query(
                "INSERT INTO alertd_destinations (destination, channel) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (destination) DO NOTHING",
                [keys, channels]
            )
            return try session.query(Self.reportSQL, parameters)
        }
        var report = Report()
        for row in rows {
            report.released = try row.decode("released", as: Int.self)
            report.changes.append(Change(
                destination: try row.decode("destination"),
                channel: try row.decode("channel"),
                state: try row.decode("state"),
                was: try row.decode("was"),
                circuitOpen: try row.decode("circuit_open"),
                circuitWasOpen: try row.decode("circuit_was_open"),
                nextProbeAt: try row.decode("next_probe_at"),
                disabledReason: try row.decode("disabled_reason"),
                integrations: try row.decode("integrations"),
                notified: try row.decode("notified")
            ))
        }
        if report.released > 0 || report.notices > 0 {
            try await connection.query("SELECT pg_notify('alertd', '')")
        }
        return report
    }

    /// The URL as integrations' `alert_webhook_url` is written to the alerts: trimmed, any
    /// credentials in it replaced (the trigger's rule).
    static func alertURL(_ column: String) -> String {
        "regexp_replace(btrim(\(column)), '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\\1[redacted]@')"
    }

    /// What lets a waiting alert (`a`) go: due again when it was due before it was set aside (at
    /// once, if that was later), its `parked` note removed.
    static let released = """
        next_attempt_at = least(coalesce((a.metadata -> 'parked' ->> 'due_at')::timestamptz, now()), now()),
                     metadata = a.metadata - 'parked'
        """

    /// $1–$8 the observations; $9 ALERTD_CIRCUIT_FAILURES (NULL: off), $10 and $13
    /// ALERTD_DESTINATION_DISABLE_AFTER in seconds (NULL: off) and as written, $11 and $12 the
    /// first and the longest wait between probes, $14 this instance.
    static let reportSQL = """
        WITH r AS (
          SELECT *
            FROM unnest($1::text[], $2::boolean[], $3::integer[], $4::text[], $5::text[], $6::integer[], $7::float8[], $8::boolean[])
              AS r(destination, reached, failures, kind, error, http_status, retry_after, probed)
        ), o AS (
          SELECT d.* FROM alertd_destinations d WHERE d.destination IN (SELECT destination FROM r) ORDER BY d.destination FOR UPDATE
        ), s AS (
          SELECT o.*, r.reached, r.failures AS new_failures, r.kind, r.error, r.http_status AS status, r.retry_after, r.probed,
                 CASE WHEN r.reached THEN r.failures ELSE o.consecutive_failures + r.failures END AS failures_now,
                 CASE WHEN r.failures > 0 THEN r.kind ELSE 'reached' END AS last_kind
            FROM o JOIN r USING (destination)
        ), t AS (
          SELECT s.*,
                 CASE WHEN s.failures_now = 0 THEN NULL
                      WHEN s.reached OR s.failing_since IS NULL THEN now()
                      ELSE s.failing_since END AS failing_since_now
            FROM s
        ), u AS (
          SELECT t.*,
                 CASE WHEN t.state = 'disabled' THEN 'disabled'
                      WHEN t.channel = 'webhook' AND t.last_kind = 'gone' THEN 'disabled'
                      WHEN t.channel = 'webhook' AND t.failures_now > 0 AND $10::float8 IS NOT NULL
                           AND t.failing_since_now <= now() - make_interval(secs => $10::float8) THEN 'disabled'
                      WHEN t.failures_now > 0 THEN 'failing'
                      ELSE 'healthy' END AS state_now
            FROM t
        ), v AS (
          SELECT u.*,
                 CASE WHEN u.state_now <> 'failing' OR u.last_kind <> 'unavailable' THEN NULL
                      WHEN u.circuit_opened_at IS NOT NULL THEN u.circuit_opened_at
                      WHEN $9::integer IS NOT NULL AND (u.failures_now >= $9::integer OR u.retry_after IS NOT NULL) THEN now()
                 END AS circuit_now
            FROM u
        ), w AS (
          SELECT v.*,
                 CASE WHEN v.circuit_now IS NULL THEN 0 WHEN v.probed THEN v.probes_failed + 1 ELSE v.probes_failed END AS probes_failed_now,
                 v.state_now = 'disabled' AND v.state <> 'disabled' AS disabling
            FROM v
        ), updated AS (
          UPDATE alertd_destinations d
             SET consecutive_failures = w.failures_now,
                 failing_since = w.failing_since_now,
                 last_error = CASE WHEN w.new_failures > 0 THEN w.error ELSE d.last_error END,
                 last_http_status = CASE WHEN w.new_failures > 0 THEN w.status ELSE d.last_http_status END,
                 last_failure_at = CASE WHEN w.new_failures > 0 THEN now() ELSE d.last_failure_at END,
                 last_success_at = CASE WHEN w.reached THEN now() ELSE d.last_success_at END,
                 state = w.state_now,
                 circuit_opened_at = w.circuit_now,
                 probes_failed = w.probes_failed_now,
                 next_probe_at = CASE
                   WHEN w.circuit_now IS NULL THEN NULL
                   WHEN w.circuit_opened_at IS NULL OR w.probed OR w.retry_after IS NOT NULL THEN now() + greatest(
                     make_interval(secs => least($12::float8, $11::float8 * 2 ^ least(w.probes_failed_now, 30)) * (0.8 + random() * 0.4)),
                     make_interval(secs => coalesce(w.retry_after, 0)))
                   ELSE d.next_probe_at END,
                 probe_by = CASE WHEN w.probed OR w.circuit_now IS NULL THEN NULL ELSE d.probe_by END,
                 probe_until = CASE WHEN w.probed OR w.circuit_now IS NULL THEN NULL ELSE d.probe_until END,
                 disabled_at = CASE WHEN w.disabling THEN now() ELSE d.disabled_at END,
                 disabled_reason = CASE
                   WHEN NOT w.disabling THEN d.disabled_reason
                   WHEN w.last_kind = 'gone' THEN 'the receiver answered 410 Gone: ' || coalesce(w.error, 'HTTP 410')
                   ELSE 'failing since ' || to_char(w.failing_since_now AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')
                        || ' without a success (ALERTD_DESTINATION_DISABLE_AFTER ' || $13::text || '); last error: ' || coalesce(w.error, 'none recorded')
                   END,
                 disabled_by = CASE WHEN w.disabling THEN $14::text ELSE d.disabled_by END,
                 updated_at = now()
            FROM w
           WHERE d.destination = w.destination
          RETURNING d.destination, d.channel, d.state, d.circuit_opened_at, d.next_probe_at, d.disabled_at, d.disabled_reason,
                    d.failing_since, d.last_error, w.state AS was, w.circuit_opened_at AS circuit_was, w.disabling
        ), released AS (
          UPDATE integration_alert_history a
             SET \(released)
           WHERE a.delivery_status = 'pending' AND a.next_attempt_at IS NULL AND a.metadata ? 'parked'
             AND a.metadata -> 'parked' ->> 'destination' IN (
                   SELECT destination FROM updated WHERE circuit_was IS NOT NULL AND circuit_opened_at IS NULL)
          RETURNING a.id
        ), owners AS (
          SELECT c.id AS integration_id, n.destination, n.disabled_at, n.disabled_reason, n.failing_since, n.last_error,
                 ARRAY(SELECT DISTINCT btrim(e) FROM unnest(c.alert_emails) e WHERE btrim(e) <> '') AS emails
            FROM updated n
            JOIN integration_configs c ON \(alertURL("c.alert_webhook_url")) = n.destination
           WHERE n.disabling AND n.channel = 'webhook'
        ), notices AS (
          INSERT INTO integration_alert_history
                 (integration_config_id, alert_type, alert_channel, recipients, sent_at, delivery_status, origin, metadata, next_attempt_at)
          SELECT o.integration_id, 'webhook_disabled', 'email', o.emails, NULL, 'pending', 'destination',
                 jsonb_build_object('destination', jsonb_build_object(
                   'url', o.destination, 'reason', o.disabled_reason, 'disabled_at', o.disabled_at,
                   'failing_since', o.failing_since, 'last_error', left(o.last_error, 2000),
                   'undelivered', (SELECT count(*) FROM integration_alert_history a
                                    WHERE a.integration_config_id = o.integration_id AND a.alert_channel = 'webhook'
                                      AND a.recipients[1] = o.destination
                                      AND (a.delivery_status = 'pending'
                                           OR (a.delivery_status = 'failed' AND a.created_at >= coalesce(o.failing_since, o.disabled_at)))))),
                 now()
            FROM owners o
           WHERE cardinality(o.emails) > 0
          RETURNING integration_config_id
        )
        SELECT u.destination, u.channel, u.state, u.was, u.circuit_opened_at IS NOT NULL AS circuit_open,
               u.circuit_was IS NOT NULL AS circuit_was_open, u.next_probe_at, u.disabled_reason,
               (SELECT count(*) FROM owners o WHERE o.destination = u.destination)::integer AS integrations,
               (SELECT count(*) FROM owners o WHERE o.destination = u.destination AND cardinality(o.emails) > 0)::integer AS notified,
               (SELECT count(*) FROM released)::integer AS released,
               (SELECT count(*) FROM notices)::integer AS queued
          FROM updated u
         ORDER BY u.destination
        """

    // MARK: The sweep

    /// What a sweep did.
    public struct Sweep: Sendable, Equatable {
        /// Waiting alerts failed for waiting longer than ALERTD_ALERT_MAX_AGE.
        public var expired = 0
        /// Waiting alerts whose destination's circuit had closed, due again.
        public var released = 0
    }

    /// Fails the alerts that waited for their destination longer than `settings.maxAge` (never
    /// attempted for it: no attempt row), and lets go of waiting alerts whose destination's
    /// circuit is closed (parked by a claim that raced the closing, on another instance).
    public func sweep(_ settings: DestinationSettings) async throws -> Sweep {
        let row = try await connection.query(
            """
            WITH waiting AS (
              SELECT a.id, coalesce((a.metadata -> 'replays' -> -1 ->> 'at')::timestamptz, a.created_at)
                       < now() - make_interval(secs => $1) AS too_old,
                     EXISTS (SELECT 1 FROM alertd_destinations d
                              WHERE d.destination = a.metadata -> 'parked' ->> 'destination'
                                AND d.circuit_opened_at IS NOT NULL) AS circuit_open
                FROM integration_alert_history a
               WHERE a.delivery_status = 'pending' AND a.next_attempt_at IS NULL AND a.metadata ? 'parked'
                 AND (a.locked_until IS NULL OR a.locked_until < now())
               FOR UPDATE OF a SKIP LOCKED
            ), expired AS (
              UPDATE integration_alert_history a
                 SET delivery_status = 'failed',
                     delivery_error = 'Not sent: it waited longer than ALERTD_ALERT_MAX_AGE (' || $2 || ') for its destination, unavailable since '
                                      || coalesce(to_char((SELECT d.failing_since FROM alertd_destinations d
                                                            WHERE d.destination = a.metadata -> 'parked' ->> 'destination') AT TIME ZONE 'UTC',
                                                          'YYYY-MM-DD HH24:MI:SS "UTC"'), 'then')
                                      || '; `alertd replay` sends it again.',
                     metadata = (a.metadata - 'parked') || jsonb_build_object('waited_for', a.metadata -> 'parked')
                FROM waiting w
               WHERE a.id = w.id AND w.too_old
              RETURNING a.id
            ), released AS (
              UPDATE integration_alert_history a
                 SET \(Self.released)
                FROM waiting w
               WHERE a.id = w.id AND NOT w.too_old AND NOT w.circuit_open
              RETURNING a.id
            )
            SELECT (SELECT count(*) FROM expired)::integer AS expired, (SELECT count(*) FROM released)::integer AS released
            """,
            [settings.maxAge.seconds, settings.maxAge.settingText]
        )[0]
        let sweep = Sweep(expired: try row.decode("expired"), released: try row.decode("released"))
        if sweep.released > 0 { try await connection.query("SELECT pg_notify('alertd', '')") }
        return sweep
    }

    /// Destinations by state, open circuits, and the alerts waiting for one: what /metrics shows;
    /// with `relay`, whether that relay's circuit is open (what /readyz says).
    public func state(relay: String? = nil) async throws -> DispatcherMetrics.DestinationState {
        let rows = try await connection.query(
            """
            SELECT d.state, count(*)::integer AS n, count(*) FILTER (WHERE d.circuit_opened_at IS NOT NULL)::integer AS open,
                   (SELECT count(*) FROM integration_alert_history a
                     WHERE a.delivery_status = 'pending' AND a.next_attempt_at IS NULL AND a.metadata ? 'parked')::integer AS waiting
              FROM (VALUES ('healthy'), ('failing'), ('disabled')) AS s(state)
              LEFT JOIN alertd_destinations d ON d.state = s.state
             GROUP BY d.state
            """
        )
        var state = DispatcherMetrics.DestinationState()
        for row in rows {
            state.waiting = try row.decode("waiting")
            guard let name = try row.decode("state", as: String?.self) else { continue }
            state.byState[name] = try row.decode("n")
            state.openCircuits += try row.decode("open", as: Int.self)
        }
        if let relay, let row = try await connection.query(
            "SELECT failing_since, last_error FROM alertd_destinations WHERE destination = $1 AND circuit_opened_at IS NOT NULL", [relay]
        ).first {
            let since = try row.decode("failing_since", as: Date?.self).map { "failing since \(AlertContext.timestamp($0))" } ?? "failing"
            state.relay = "\(relay), \(since): \(try row.decode("last_error", as: String?.self) ?? "no error recorded")"
        }
        return state
    }

    // MARK: alertd endpoints

    /// The SQL of `alertd endpoints` (and of docs/audit-queries.md): every destination, the
    /// failing and disabled first, with its alerts waiting.
    public static let listSQL = """
        SELECT d.destination, d.channel, d.state,
               CASE WHEN d.circuit_opened_at IS NULL THEN 'closed' ELSE 'open' END AS circuit,
               d.consecutive_failures, d.failing_since, d.last_error, d.last_http_status, d.last_success_at,
               d.circuit_opened_at, d.next_probe_at, d.probe_by,
               (SELECT count(*) FROM integration_alert_history a
                 WHERE a.delivery_status = 'pending' AND a.next_attempt_at IS NULL AND a.metadata ? 'parked'
                   AND a.metadata -> 'parked' ->> 'destination' = d.destination) AS waiting,
               d.disabled_at, d.disabled_reason, d.disabled_by, d.enabled_at, d.enabled_by
          FROM alertd_destinations d
         WHERE ($1::text IS NULL OR d.state = $1)
         ORDER BY CASE d.state WHEN 'disabled' THEN 0 WHEN 'failing' THEN 1 ELSE 2 END, d.failing_since NULLS LAST, d.destination
        """

    public func list(state: String? = nil) async throws -> [AuditStore.Record] {
        try await connection.query(Self.listSQL, [state]).map { row in row.columns.map { ($0, row[$0]) } }
    }

    /// The SQL of `alertd endpoints enable` (and of docs/audit-queries.md): the destination is
    /// healthy again, its circuit closed, who enabled it and when recorded (the last disabling
    /// is kept beside it); its waiting alerts are due again.
    public static let enableSQL = """
        WITH enabled AS (
          UPDATE alertd_destinations
             SET state = 'healthy', consecutive_failures = 0, failing_since = NULL, circuit_opened_at = NULL,
                 next_probe_at = NULL, probes_failed = 0, probe_by = NULL, probe_until = NULL,
                 enabled_at = now(), enabled_by = $2, updated_at = now()
           WHERE destination = $1
          RETURNING destination, disabled_at, disabled_reason
        ), released AS (
          UPDATE integration_alert_history a
             SET \(released)
           WHERE a.delivery_status = 'pending' AND a.next_attempt_at IS NULL AND a.metadata ? 'parked'
             AND a.metadata -> 'parked' ->> 'destination' IN (SELECT destination FROM enabled)
          RETURNING a.id
        )
        SELECT e.destination, e.disabled_at, e.disabled_reason, (SELECT count(*) FROM released)::integer AS released,
               pg_notify('alertd', '')
          FROM enabled e
        """

    /// Enables `destination` again; nil when alertd knows no such destination.
    public func enable(_ destination: String, by who: String) async throws -> (disabledAt: Date?, reason: String?, released: Int)? {
        guard let row = try await connection.query(Self.enableSQL, [destination, who]).first else { return nil }
        return (try row.decode("disabled_at"), try row.decode("disabled_reason"), try row.decode("released"))
    }
}
