import AlertdPostgres

/// How an alert reaches people: `integration_alert_history.alert_channel`. The table also allows
/// `sms`, which alertd does not send: such alerts are never claimed and stay pending.
public enum Channel: String, Sendable, CaseIterable, PostgresEncodable, PostgresDecodable {
    /// To `integration_configs.alert_emails`, over SMTP, every due email alert in one session.
    case email
    /// To `integration_configs.alert_webhook_url`, a signed POST.
    case webhook
}
