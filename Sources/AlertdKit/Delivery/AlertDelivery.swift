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
    /// Messages per integration, channel and window; nil: no limit.
    let limits: MessageLimits?
    /// ALERTD_ALERT_MAX_AGE, as alerts failed for it say.
    let maxAge: Duration
    let logger: Logger

    /// The deliveries' outcomes as they finish: the batch's email together, each webhook alone.
    public struct Finished: Sendable {
        public let alerts: [ClaimedAlert]
        public let outcomes: [AttemptOutcome]
        /// Whether these went in the batch's SMTP session.
        public let bySMTP: Bool
    }

    /// - Parameters:
    ///   - signer: ALERTD_WEBHOOK_SECRET's secrets (none: none).
    ///   - signing: which secrets sign a webhook: its integration's, `signer`'s or both.
    ///   - smtp: nil when email is not configured: email alerts then fail, saying so.
    ///   - linkBase: `ALERTD_LINK_BASE_URL`, for links to sync runs.
    ///   - retryBackoff: the delay before each retry (`ALERTD_RETRY_*`).
    ///   - limits: holds the messages past an integration's limit (nil: none is held).
    ///   - onSMTPSession: told how each SMTP session went (nil: it delivered what it carried).
    public init(
        templates: AlertTemplates, webhooks: WebhookClient, signer: WebhookSigner, signing: WebhookSigning = .shared, smtp: SMTPClient?, linkBase: String?,
        retryBackoff: Backoff, maxAge: Duration = DestinationSettings.defaultMaxAge, limits: MessageLimits? = nil, onSMTPSession: @escaping @Sendable (SMTPSessionFailure?) -> Void = { _ in }, logger: Logger
    ) {
        self.maxAge = maxAge
        webhook = WebhookDelivery(templates: templates, shared: signer, signing: signing, client: webhooks, linkBase: linkBase)
        email = EmailDelivery(templates: templates, client: smtp, linkBase: linkBase, onSession: onSMTPSession)
        retryPolicy = RetryPolicy(backoff: retryBackoff)
        self.limits = limits
        self.logger = logger
    }

    /// Email alerts with an attempt left go out together in one SMTP session; the rest (webhooks,
    /// and alerts out of attempts, which only get their final outcome) one by one.
    public static func goesBySMTP(_ alert: ClaimedAlert) -> Bool {
        alert.channel == .email && alert.countedAttempt <= alert.maxAttempts && !alert.expired && alert.target?.disabledAt == nil
            && alert.notConfigured.isEmpty
    }

    /// Delivers `alerts` concurrently, calling `finished` as each delivery ends; returns when all
    /// have. Cancelling the task cancels the deliveries. The alerts of a group go out as one
    /// message (`AlertGroups`), each with its outcome.
    public func deliver(_ alerts: [ClaimedAlert], finished: @escaping @Sendable (Finished) async -> Void) async {
        let formed = AlertGroups.form(alerts)
        let (messages, held) = limits?.admit(formed) ?? (formed, [])
        await withDiscardingTaskGroup { group in
            if !held.isEmpty {
                group.addTask {
                    let startedAt = Date()
                    await finished(Finished(
                        alerts: held.flatMap(\.message.members),
                        outcomes: held.flatMap { held in held.message.members.map { self.logged(self.retryPolicy.held($0, held, startedAt: startedAt), $0) } },
                        bySMTP: false
                    ))
                }
            }
            let emails = messages.filter(Self.goesBySMTP)
            if !emails.isEmpty {
                group.addTask {
                    await finished(Finished(alerts: emails.flatMap(\.members), outcomes: await self.deliverEmails(emails), bySMTP: true))
                }
            }
            for message in messages where !Self.goesBySMTP(message) {
                group.addTask {
                    await finished(Finished(alerts: message.members, outcomes: await self.deliver(message), bySMTP: false))
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

    /// Sends one message (an alert, and those it carries) and returns the outcome of each of its
    /// alerts, the carrier's first.
    func deliver(_ message: ClaimedAlert) async -> [AttemptOutcome] {
        let startedAt = Date()
        let clock = ContinuousClock.now
        if let reason = notSent(message) {
            return message.members.map { logged(retryPolicy.notAttempted($0, reason: reason, startedAt: startedAt), $0) }
        }
        if message.countedAttempt > message.maxAttempts {
            return message.members.map { logged(retryPolicy.outOfAttempts($0, startedAt: startedAt), $0) }
        }
        let report: DeliveryReport
        switch message.channel {
        case .webhook:
            report = await webhook.attempt(message, startedAt: startedAt)
        case .email:
            // Only an email alert out of attempts comes here; the others go in a session.
            report = await email.attempt([message], startedAt: startedAt)[0]
        }
        return outcomes(message, report, startedAt: startedAt, duration: ContinuousClock.now - clock)
    }

    /// Why a message is failed without an attempt: it was written by hand to recipients its
    /// integration does not name, its destination is disabled, or it waited longer than
    /// ALERTD_ALERT_MAX_AGE.
    func notSent(_ message: ClaimedAlert) -> String? {
        if !message.notConfigured.isEmpty {
            let named = message.notConfigured.map { message.channel == .webhook ? Self.shown($0) : $0 }.joined(separator: ", ")
            return "Not sent: it was written by hand (origin manual) to \(named), which its integration does not name (alert_emails, alert_webhook_url). alertd sends a hand-written alert only to the integration's own addresses and URL."
        }
        if let target = message.target, let since = target.disabledAt {
            return "Not sent: its webhook URL was disabled \(AlertContext.timestamp(since)) (\(target.disabledReason ?? "no reason recorded")). Enable it again with `alertd endpoints enable <url>` once the receiver is fixed, then `alertd replay` this alert."
        }
        if message.expired {
            return "Not sent: it waited longer than ALERTD_ALERT_MAX_AGE (\(maxAge.settingText)) for its destination\(message.target.map { " (\(Self.shown($0.key)))" } ?? ""); `alertd replay` sends it again."
        }
        return nil
    }

    /// A destination as messages show it: a relay whole, a webhook URL without its path and
    /// query (some carry a token there).
    static func shown(_ key: String) -> String {
        guard !key.hasPrefix("smtp://"), let components = URLComponents(string: key), let host = components.host else { return key }
        return "\(components.scheme ?? "https")://\(host)\(components.port.map { ":\($0)" } ?? "")/…"
    }

    /// Sends email messages in one SMTP session; returns the outcome of each of their alerts, in
    /// the order of `messages`' members.
    func deliverEmails(_ messages: [ClaimedAlert]) async -> [AttemptOutcome] {
        guard !messages.isEmpty else { return [] }
        let startedAt = Date()
        let clock = ContinuousClock.now
        let reports = await email.attempt(messages, startedAt: startedAt)
        let duration = ContinuousClock.now - clock
        return zip(messages, reports).enumerated().flatMap { index, pair in
            // One session, one word on the relay: the first message's.
            var report = pair.1
            if index > 0 { report.signal = nil }
            return outcomes(pair.0, report, startedAt: startedAt, duration: duration)
        }
    }

    /// The outcomes of one message's attempt: its carrier's, then the same for each alert it
    /// carries, retried in step with the carrier.
    private func outcomes(_ message: ClaimedAlert, _ report: DeliveryReport, startedAt: Date, duration: Duration) -> [AttemptOutcome] {
        let carrier = logged(retryPolicy.outcome(for: message, report, startedAt: startedAt, duration: duration), message)
        return [carrier] + message.grouped.map { alert in
            logged(retryPolicy.outcome(for: alert, report, startedAt: startedAt, duration: duration, message: message, retryInStep: carrier.retryIn), alert)
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
