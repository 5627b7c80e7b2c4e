import AlertdPostgres

/// Where an alert stands: `integration_alert_history.delivery_status`.
public enum DeliveryStatus: String, Sendable, CaseIterable, PostgresEncodable, PostgresDecodable {
    /// Not delivered yet: due at `next_attempt_at`, or being delivered under a lease.
    case pending
    /// Delivered (to every email recipient that was not refused for good).
    case sent
    /// Given up on: a final refusal, or no attempt left.
    case failed
    /// Every email recipient was refused for good.
    case bounced
    /// A repeat of an open incident: recorded by the trigger, never sent.
    case suppressed
    /// Over its integration's message limit: recorded, not sent (`metadata -> 'held'` names the
    /// window). `alertd replay` sends it.
    case held
}
