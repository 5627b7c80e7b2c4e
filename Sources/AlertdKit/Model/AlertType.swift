import AlertdPostgres

/// What an alert says happened to its sync run: `integration_alert_history.alert_type`.
public enum AlertType: String, Sendable, CaseIterable, PostgresEncodable, PostgresDecodable {
    /// The run failed.
    case failure
    /// The run finished partially: some records failed.
    case warning
    /// The run succeeded (sent when the integration has `alert_on_success`, and for tests).
    case success
    /// The run succeeded and closed its endpoint's incident: the recovery notice.
    case recovery
    /// The endpoint's incident is still open after the repeat interval.
    case reminder
    /// The endpoint's scheduled run did not start (found by alertd's sweep).
    case overdue
    /// The run is still running far longer than its endpoint usually takes (found by alertd's
    /// sweep).
    case stuck
    /// The integration's webhook URL was disabled (a 410 Gone, or failing too long): the email
    /// that tells its addresses (written by alertd, origin `destination`).
    case webhookDisabled = "webhook_disabled"
    /// How many of an integration's alerts its message limit held in a window that is over
    /// (written by alertd, origin `limit`; `MessageLimits`).
    case held
}
