import AlertdPostgres
import Foundation

/// The alerts held by their integration's message limit (`delivery_status = 'held'`), and the
/// one notice per integration, channel and window that tells how many (alert type `held`,
/// origin `limit`; migration 20251204).
public struct HeldAlertStore: Sendable {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// The notices' advisory lock (class, object): one instance writes them at a time
    /// (1634497140 to 1634497143 are the waiting lock's, a group's, an integration's grouping
    /// and the silent-failure sweep's).
    static let lock = (classID: 1634497144, objectID: 0)

    /// For every window of `window` length that is over and held alerts not yet told: one notice
    /// per integration and channel, to the integration's own addresses or URL, saying how many
    /// were held, of which types, by which limit; the held alerts then name it
    /// (`metadata -> 'held' ->> 'notice'`; `none` when the integration has no address for the
    /// channel any more). Returns how many notices were written (0 when another instance is at
    /// it), or nil on a schema without message limits (before 20251204).
    public func writeNotices(window: Duration) async throws -> Int? {
        try await connection.withTransaction { session in
            let state = try session.query(
                "SELECT to_regclass('public.idx_alert_history_held') IS NOT NULL AS present, pg_try_advisory_xact_lock($1, $2) AS mine",
                [Self.lock.classID, Self.lock.objectID]
            )
            guard try state[0].decode("present", as: Bool.self) else { return nil }
            guard try state[0].decode("mine", as: Bool.self) else { return 0 }
            return try session.query(Self.noticesSQL, [window.seconds]).count
        }
    }

    static let noticesSQL = """
        WITH per_type AS (
          SELECT a.integration_config_id, a.alert_channel, a.metadata -> 'held' ->> 'window_start' AS window_start,
                 a.alert_type, count(*)::int AS n, max((a.metadata -> 'held' ->> 'limit')::int) AS message_limit,
                 min(a.last_attempt_at) AS first_at, max(a.last_attempt_at) AS last_at
            FROM integration_alert_history a
           WHERE a.delivery_status = 'held' AND NOT (a.metadata -> 'held' ? 'notice')
           GROUP BY 1, 2, 3, 4
        ), windows AS (
          SELECT integration_config_id, alert_channel, window_start, sum(n)::int AS held, max(message_limit) AS message_limit,
                 min(first_at) AS first_held_at, max(last_at) AS last_held_at, jsonb_object_agg(alert_type, n) AS types
            FROM per_type
           WHERE window_start::timestamptz + make_interval(secs => $1) <= now()
           GROUP BY 1, 2, 3
        ), config AS (
          SELECT i.id, \(SilentFailureStore.recipients("i"))
            FROM integration_configs i
           WHERE i.id IN (SELECT integration_config_id FROM windows)
        ), notices AS (
          INSERT INTO integration_alert_history
                 (integration_config_id, alert_type, alert_channel, recipients, sent_at, delivery_status, origin, next_attempt_at, metadata)
          SELECT w.integration_config_id, 'held', w.alert_channel,
                 CASE w.alert_channel WHEN 'email' THEN c.emails ELSE ARRAY[c.webhook] END,
                 NULL, 'pending', 'limit', now(),
                 jsonb_build_object('held', jsonb_build_object(
                   'integration_id', w.integration_config_id, 'count', w.held, 'limit', w.message_limit, 'window_start', w.window_start,
                   'window_end', to_jsonb(w.window_start::timestamptz + make_interval(secs => $1)),
                   'first_held_at', to_jsonb(w.first_held_at), 'last_held_at', to_jsonb(w.last_held_at), 'types', w.types))
            FROM windows w
            JOIN config c ON c.id = w.integration_config_id
           WHERE CASE w.alert_channel WHEN 'email' THEN cardinality(c.emails) > 0 ELSE c.webhook IS NOT NULL END
          RETURNING id, integration_config_id, alert_channel, metadata -> 'held' ->> 'window_start' AS window_start
        ), told AS (
          UPDATE integration_alert_history a
             SET metadata = jsonb_set(a.metadata, '{held,notice}', coalesce(to_jsonb(n.id::text), '"none"'))
            FROM windows w
            LEFT JOIN notices n ON n.integration_config_id = w.integration_config_id AND n.alert_channel = w.alert_channel
                                AND n.window_start = w.window_start
           WHERE a.delivery_status = 'held' AND NOT (a.metadata -> 'held' ? 'notice')
             AND a.integration_config_id = w.integration_config_id AND a.alert_channel = w.alert_channel
             AND a.metadata -> 'held' ->> 'window_start' = w.window_start
          RETURNING a.id
        )
        SELECT id FROM notices
        """
}
