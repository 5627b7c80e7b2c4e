/// Which secrets sign a Standard Webhooks request (`ALERTD_WEBHOOK_SIGNING`). Chat services get
/// their message unsigned whatever this says.
public enum WebhookSigning: String, Sendable, CaseIterable {
    /// Its integration's own secret (`alertd_signing_secrets`, migration 20251203), alone: no
    /// tenant can verify, or forge, another tenant's webhooks. The default without
    /// ALERTD_WEBHOOK_SECRET.
    case integration
    /// Its integration's secret, then ALERTD_WEBHOOK_SECRET's: while receivers move from the
    /// shared secret to their own (docs/security.md). The default with ALERTD_WEBHOOK_SECRET.
    case both
    /// ALERTD_WEBHOOK_SECRET's alone: an installation with a single tenant.
    case shared

    /// The signer of a webhook to `alert`'s URL: its integration's secrets (`signingSecrets`,
    /// current first) and `shared` as this says. An alert whose integration has none (a schema
    /// before 20251203, a test to a URL given on the command line) is signed with `shared`.
    func signer(for alert: ClaimedAlert, shared: WebhookSigner) -> WebhookSigner {
        let own = alert.signingSecrets
        switch self {
        case .shared: return shared
        case .integration: return own.isEmpty ? shared : WebhookSigner(secrets: own)
        case .both: return WebhookSigner(secrets: own + shared.secrets)
        }
    }

    /// What `alertd config` and the start-up log say of it.
    func describe(shared: WebhookSigner) -> String {
        let sharedText = shared.secrets.isEmpty ? "no ALERTD_WEBHOOK_SECRET" : "ALERTD_WEBHOOK_SECRET: \(shared.secrets.count) secret\(shared.secrets.count == 1 ? "" : "s")"
        switch self {
        case .integration:
            return "integration (each integration's own secret, alertd_signing_secrets; \(sharedText)\(shared.secrets.isEmpty ? "" : ", used only for tests to URLs given on the command line"))"
        case .both:
            return "both (each integration's own secret, then \(sharedText): while receivers move to their own; any tenant holding the shared secret can still forge signatures)"
        case .shared:
            return "shared (\(sharedText), for every integration: a single-tenant installation)"
        }
    }
}
