import Foundation

/// One SMTP session for a batch of email alerts: each alert's message rendered and sent to the
/// recipients it has not reached yet, and the server's replies judged per recipient
/// (`EmailDelivery.report`).
struct EmailDelivery: Sendable {
    let templates: AlertTemplates
    /// nil when email is not configured (ALERTD_SMTP_URL): every email alert then fails.
    let client: SMTPClient?
    let linkBase: String?
    /// Told how each session went (nil: it delivered what it carried), for /metrics and /readyz.
    let onSession: @Sendable (SMTPSessionFailure?) -> Void

    /// An alert's message and whom it goes to this time.
    struct Plan: Sendable {
        let alert: ClaimedAlert
        let message: AlertTemplates.Rendered
        /// Recipients not yet delivered to nor refused, with a valid address.
        let valid: [String]
        /// Recipients not yet delivered to nor refused, whose address is not one.
        let invalid: [String]

        init(alert: ClaimedAlert, message: AlertTemplates.Rendered) {
            self.alert = alert
            self.message = message
            let pending = alert.recipients.filter { !alert.doneRecipients.contains($0) }
            valid = pending.filter(EmailMessage.isValidAddress)
            invalid = pending.filter { !EmailMessage.isValidAddress($0) }
        }
    }

    /// The reports, in the order of `alerts`.
    func attempt(_ alerts: [ClaimedAlert], startedAt: Date) async -> [DeliveryReport] {
        guard let client else {
            return alerts.map { _ in DeliveryReport(decision: .failed(reason: "Email is not configured (ALERTD_SMTP_URL).")) }
        }
        let plans = alerts.map { alert in
            Plan(alert: alert, message: templates.renderMessage(AlertContext(alert: alert, linkBase: linkBase, now: startedAt)))
        }
        let sendable = plans.filter { !$0.valid.isEmpty }
        let settings = client.settings
        let messages = sendable.map { plan in
            EmailMessage(
                from: settings.from, fromName: settings.fromName, to: plan.valid, subject: plan.message.subject,
                text: plan.message.text, html: plan.message.html,
                messageID: "\(plan.alert.id.uuidString.lowercased()).\(plan.alert.attempt)@\(EmailMessage.domain(of: settings.from))", date: startedAt
            )
        }
        let results = await client.send(messages)
        if let first = results.first { onSession(first.sessionFailure) }
        var resultByAlert: [UUID: SMTPClient.MessageResult] = [:]
        for (plan, result) in zip(sendable, results) { resultByAlert[plan.alert.id] = result }
        return plans.map { Self.report(for: $0, result: resultByAlert[$0.alert.id]) }
    }

    /// Judges one alert's recipients by the server's replies: accepted (the message's data was
    /// accepted too), refused for good (5xx, or an address that is not one), or not yet (4xx, or
    /// the session failed before their turn). Those not yet make the alert a retry that goes only
    /// to them; with none left, it is sent, or, when every one was refused, bounced.
    ///
    /// `result` is nil when no message was sent (no valid recipient was left).
    static func report(for plan: Plan, result: SMTPClient.MessageResult?) -> DeliveryReport {
        var replies: [String: String] = [:]
        var accepted: [String] = []
        var bounced: [(address: String, reason: String)] = plan.invalid.map { ($0, "not a valid email address") }
        var temporary: [(address: String, reason: String)] = []
        if let result {
            for address in plan.valid {
                let reply = result.recipients[address] ?? SMTPClient.Reply(code: 0, text: "no reply")
                if reply.isSuccess, let message = result.message, message.isSuccess {
                    accepted.append(address)
                    replies[address] = message.description
                } else if reply.isPermanentFailure {
                    bounced.append((address, reply.description))
                    replies[address] = reply.description
                } else if reply.isSuccess, let message = result.message, message.isPermanentFailure {
                    bounced.append((address, message.description))
                    replies[address] = message.description
                } else {
                    let reason = reply.code == 0
                        ? (result.sessionError ?? reply.text)
                        : (result.message.map { reply.isSuccess ? $0.description : reply.description } ?? reply.description)
                    temporary.append((address, reason))
                    replies[address] = reason
                }
            }
        }
        for (address, reason) in bounced where replies[address] == nil { replies[address] = reason }
        let delivered = plan.alert.deliveredRecipients + accepted
        let everBounced = plan.alert.bouncedRecipients + bounced.map(\.address)
        let sessionFailure = result?.sessionFailure
        let bouncedNote = bounced.isEmpty ? nil : "Bounced: " + bounced.map { "\($0.address) (\($0.reason))" }.joined(separator: "; ")

        let decision: DeliveryDecision
        if !temporary.isEmpty {
            // A session that failed is one reason for every recipient: said once.
            let notYet = sessionFailure.flatMap { failure in temporary.allSatisfy { $0.reason == failure.message } ? failure.message : nil }
                ?? "Not yet delivered to " + temporary.map { "\($0.address) (\($0.reason))" }.joined(separator: "; ")
            decision = .retry(reason: ([bouncedNote].compactMap { $0 } + [notYet]).joined(separator: ". "), notBefore: nil)
        } else if !delivered.isEmpty {
            decision = .delivered
        } else {
            decision = .failed(reason: bouncedNote ?? (everBounced.isEmpty ? "The alert has no email recipients." : "Every recipient was refused."))
        }
        return DeliveryReport(
            decision: decision,
            smtpReply: result?.message?.description ?? (sessionFailure == nil ? temporary.first?.reason : nil) ?? bounced.first?.reason,
            subject: plan.message.subject,
            message: plan.message.text,
            details: json(["recipients": replies]),
            metadataPatch: json(["email_delivered": delivered, "email_bounced": everBounced]),
            deliveredNote: bouncedNote,
            refusedForGood: !everBounced.isEmpty,
            signal: result.flatMap(relaySignal)
        )
    }

    /// What a session said of the relay: it ran (whatever the recipients' fate), or it could not.
    static func relaySignal(_ result: SMTPClient.MessageResult) -> DestinationSignal? {
        guard let failure = result.sessionFailure else { return .reached }
        if failure.message == SMTPClient.shuttingDown { return nil }
        return .unavailable(reason: failure.message, httpStatus: nil, retryAfter: nil)
    }

    static func json(_ object: [String: Any]) -> String {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
