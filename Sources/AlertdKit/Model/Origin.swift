import AlertdPostgres

/// Who wrote an alert: `integration_alert_history.origin`.
public enum Origin: String, Sendable, CaseIterable, PostgresEncodable, PostgresDecodable {
    /// The trigger on `integration_sync_history`, in the writer's transaction.
    case trigger
    /// A person or a tool, by INSERT (and `alertd history replay`).
    case manual
    /// `alertd --test-notification`: delivered at once, never retried.
    case test
    /// alertd's sweeps: a reminder of an incident still open, an overdue endpoint, a stuck run.
    case incident
    /// alertd disabled the integration's webhook URL: the email that says so.
    case destination
    /// alertd held alerts over the integration's message limit: the message that says so.
    case limit
}
