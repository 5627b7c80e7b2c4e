import AlertdSupport
import Foundation
import Logging

/// The one delivery path, for `alertd run` and `alertd --test-notification` alike: a batch's
/// email alerts go out together in one SMTP session, each webhook on its own, and every alert
/// comes back with the outcome to record, whatever happens to it.
public struct AlertDelivery: Sendable {
    let webhook: WebhookDelivery
    let email: EmailDelivery
    let retryPolicy: RetryPolicy
    let logger: Logger

    /// The deliveries' outcomes as they finish: the batch's email together, each webhook alone.
    public struct Finished: Sendable {
        public let alerts: [ClaimedAlert]
        public let outcomes: [AttemptOutcome]
        /// Whether these went in the batch's SMTP session.
        public let bySMTP: Bool
    }

    /// - Parameters:
    ///   - signer: signs webhooks (no secret: unsigned).
    ///   - smtp: nil when email is not configured: email alerts then fail, saying so.
    ///   - linkBase: `ALERTD_LINK_BASE_URL`, for links to sync runs.
    ///   - retryBackoff: the delay before each retry (`ALERTD_RETRY_*`).
    ///   - onSMTPSession: told how each SMTP session went (nil: it delivered what it carried).
    public init(
        templates: AlertTemplates, webhooks: WebhookClient, signer: WebhookSigner, smtp: SMTPClient?, linkBase: String?, retryBackoff: Backoff,
        onSMTPSession: @escaping @Sendable (SMTPSessionFailure?) -> Void = { _ in }, logger: Logger
    ) {
        webhook = WebhookDelivery(templates: templates, signer: signer, client: webhooks, linkBase: linkBase)
        email = EmailDelivery(templates: templates, client: smtp, linkBase: linkBase, onSession: onSMTPSession)
        retryPolicy = RetryPolicy(backoff: retryBackoff)
        self.logger = logger
    }

    /// Email alerts with an attempt left go out together in one SMTP session; the rest (webhooks,
    /// and alerts out of attempts, which only get their final outcome) one by one.
    public static func goesBySMTP(_ alert: ClaimedAlert) -> Bool {
        alert.channel == .email && alert.attempt <= alert.maxAttempts
    }

    /// Delivers `alerts` concurrently, calling `finished` as each delivery ends; returns when all
    /// have. Cancelling the task cancels the deliveries.
    public func deliver(_ alerts: [ClaimedAlert], finished: @escaping @Sendable (Finished) async -> Void) async {
        await withDiscardingTaskGroup { group in
            let emails = alerts.filter(Self.goesBySMTP)
            if !emails.isEmpty {
                group.addTask {
                    await finished(Finished(alerts: emails, outcomes: await self.deliverEmails(emails), bySMTP: true))
                }
            }
            for alert in alerts where !Self.goesBySMTP(alert) {
                group.addTask {
                    await finished(Finished(alerts: [alert], outcomes: [await self.deliver(alert)], bySMTP: false))
                }
            }
        }
    }

    /// Delivers `alerts` and returns their outcomes, in no particular order.
    public func deliver(_ alerts: [ClaimedAlert]) async -> [AttemptOutcome] {
        let collected = Collected()
        await deliver(alerts) { await collected.add($0.outcomes) }
        return await collected.outcomes
    }

    private actor Collected {
        var outcomes: [AttemptOutcome] = []
        func add(_ more: [AttemptOutcome]) { outcomes += more }
    }

    func deliver(_ alert: ClaimedAlert) async -> AttemptOutcome {
        let startedAt = Date()
        let clock = ContinuousClock.now
        if alert.attempt > alert.maxAttempts {
            return logged(retryPolicy.outOfAttempts(alert, startedAt: startedAt), alert)
        }
        let report: DeliveryReport
        switch alert.channel {
        case .webhook:
            report = await webhook.attempt(alert, startedAt: startedAt)
        case .email:
            // Only an email alert out of attempts comes here; the others go in a session.
            report = await email.attempt([alert], startedAt: startedAt)[0]
        }
        return logged(retryPolicy.outcome(for: alert, report, startedAt: startedAt, duration: ContinuousClock.now - clock), alert)
    }

    func deliverEmails(_ alerts: [ClaimedAlert]) async -> [AttemptOutcome] {
        guard !alerts.isEmpty else { return [] }
        let startedAt = Date()
        let clock = ContinuousClock.now
        let reports = await email.attempt(alerts, startedAt: startedAt)
        let duration = ContinuousClock.now - clock
        return zip(alerts, reports).map { alert, report in
            logged(retryPolicy.outcome(for: alert, report, startedAt: startedAt, duration: duration), alert)
        }
    }

    /// One line per attempt: what a person reads to follow deliveries.
    private func logged(_ outcome: AttemptOutcome, _ alert: ClaimedAlert) -> AttemptOutcome {
        var fields: Logger.Metadata = [
            "alert": "\(alert.id)", "channel": "\(alert.channel.rawValue)", "attempt": "\(alert.attempt)",
            "integration": "\(alert.integration.map { $0.id.uuidString.lowercased() } ?? "none")",
            "outcome": "\(outcome.result.rawValue)", "duration_ms": "\(Int(outcome.duration.seconds * 1000))",
        ]
        if let status = outcome.httpStatus { fields["http_status"] = "\(status)" }
        if let error = outcome.error { fields["error"] = "\(error.prefix(300))" }
        if let retryIn = outcome.retryIn { fields["retry_in_s"] = "\(retryIn.seconds)" }
        logger.info("delivery", metadata: fields)
        return outcome
    }
}
