import AlertdPostgres
import AlertdSupport
import Foundation
import Logging

/// `alertd run`: waits for due alerts, claims them in batches, delivers them and records every
/// attempt, until shutdown.
///
/// It wakes on a notification on channel `alertd`, when its listener (re)connects, on the slow
/// poll, and when the next retry or lease falls due. Notifications are only hints: the alert rows
/// are the truth, so a missed notification delays an alert by one poll at most.
public final class Dispatcher: Sendable {
    public let configuration: AlertdConfiguration
    let templates: AlertTemplates
    let webhooks: WebhookClient
    let smtp: SMTPClient?
    public let logger: Logger
    private let wake = WakeSignal()

    public init(configuration: AlertdConfiguration, templates: AlertTemplates, logger: Logger) {
        self.configuration = configuration
        self.templates = templates
        self.webhooks = WebhookClient(settings: configuration.webhook)
        self.smtp = configuration.smtp.map(SMTPClient.init(settings:))
        self.logger = logger
    }

    /// Runs until `shutdown` is requested; the batch in flight then finishes and is recorded.
    public func run(until shutdown: ShutdownSignal) async throws {
        let wake = self.wake
        shutdown.onRequest { wake.signal() }
        // Connecting retries until the database answers; a shutdown request ends the wait.
        let database = configuration.database
        let logger = self.logger
        let connecting = Task { try await PostgresConnection.connect(database, retrying: .reconnect, logger: logger) }
        shutdown.onRequest { connecting.cancel() }
        let connection: PostgresConnection
        do {
            connection = try await connecting.value
        } catch where shutdown.isRequested {
            logger.info("alertd stopped before the database answered")
            return
        }
        defer { Task { await connection.close() } }
        let store = AlertStore(connection: connection, worker: configuration.instance)
        let listener = PostgresListener(connectionString: configuration.database, channels: ["alertd"], logger: logger)
        logger.info("alertd started", metadata: [
            "version": "\(AlertdVersion.string)",
            "instance": "\(configuration.instance)",
            "db": "\(configuration.database.host ?? "local socket")",
            "channels": "\(configuration.channels.joined(separator: ","))",
        ])
        try await listener.run { events in
            let listening = Task {
                for await event in events {
                    if case .disconnected = event { continue }
                    wake.signal()
                }
            }
            defer { listening.cancel() }
            var failures = 0
            while !shutdown.isRequested {
                do {
                    let claimed = try await store.claim(limit: configuration.batchSize, channels: configuration.channels, lease: configuration.lease)
                    failures = 0
                    if claimed.isEmpty {
                        await wake.wait(timeout: try await nextWait(store))
                        continue
                    }
                    if let outcomes = await deliverWithinGrace(claimed, shutdown: shutdown) {
                        try await record(outcomes, store: store)
                    } else {
                        try await store.release(claimed.map(\.id))
                        logger.warning("released in-flight alerts at shutdown", metadata: [
                            "alerts": "\(claimed.count)", "grace_s": "\(configuration.shutdownGrace.seconds)",
                        ])
                    }
                } catch {
                    failures += 1
                    let delay = Backoff.reconnect.delay(attempt: failures)
                    logger.warning("database call failed; trying again", metadata: ["error": "\(error)", "retry_in_s": "\(delay.seconds)"])
                    await wake.wait(timeout: delay)
                }
            }
        }
        logger.info("alertd stopped", metadata: ["instance": "\(configuration.instance)"])
    }

    /// Delivers a batch; nil if shutdown was requested and the grace period ran out first. The
    /// deliveries left behind are abandoned with the process; their leases are released.
    private func deliverWithinGrace(_ claimed: [ClaimedAlert], shutdown: ShutdownSignal) async -> [AttemptOutcome]? {
        let grace = configuration.shutdownGrace
        // A race that does not wait for its loser: a blocking transfer cannot be cut short.
        return await withCheckedContinuation { (continuation: CheckedContinuation<[AttemptOutcome]?, Never>) in
            let once = ResumeOnce()
            Task {
                let outcomes = await self.deliver(claimed)
                if once.claim() { continuation.resume(returning: outcomes) }
            }
            Task {
                while !shutdown.isRequested && !once.isClaimed {
                    try? await Task.sleep(for: .milliseconds(50))
                }
                guard !once.isClaimed else { return }
                try? await Task.sleep(for: grace)
                if once.claim() { continuation.resume(returning: nil) }
            }
        }
    }

    /// Until the next retry or lease falls due, at most the poll interval.
    private func nextWait(_ store: AlertStore) async throws -> Duration {
        guard let due = try await store.nextDue(channels: configuration.channels) else { return configuration.pollInterval }
        let seconds = max(due.timeIntervalSinceNow, 0.01)
        return min(.milliseconds(Int64(seconds * 1000)), configuration.pollInterval)
    }

    /// Records outcomes, trying again for a while if the database is away: an attempt that is not
    /// recorded is delivered again once its lease expires.
    private func record(_ outcomes: [AttemptOutcome], store: AlertStore) async throws {
        var attempt = 0
        while true {
            do {
                let recorded = try await store.record(outcomes)
                let lost = outcomes.count - recorded.count
                if lost > 0 {
                    logger.warning("leases lost before their outcome was recorded", metadata: ["alerts": "\(lost)"])
                }
                return
            } catch {
                attempt += 1
                guard attempt < 5 else { throw error }
                try await Task.sleep(for: Backoff.reconnect.delay(attempt: attempt))
            }
        }
    }

    /// Delivers a batch concurrently; every alert gets an outcome, whatever happens to it. The
    /// batch's email goes out in one SMTP session.
    func deliver(_ alerts: [ClaimedAlert]) async -> [AttemptOutcome] {
        let emails = alerts.filter { $0.channel == "email" && $0.attempt <= $0.maxAttempts }
        let others = alerts.filter { !($0.channel == "email" && $0.attempt <= $0.maxAttempts) }
        async let emailOutcomes = deliverEmails(emails)
        let otherOutcomes = await withTaskGroup(of: AttemptOutcome.self) { group in
            for alert in others {
                group.addTask { await self.deliver(alert) }
            }
            var outcomes: [AttemptOutcome] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        return await emailOutcomes + otherOutcomes
    }

    func deliver(_ alert: ClaimedAlert) async -> AttemptOutcome {
        let startedAt = Date()
        let clock = ContinuousClock.now
        func outcome(_ result: AttemptOutcome.Result, error: String? = nil) -> AttemptOutcome {
            var outcome = AttemptOutcome(alertID: alert.id, attempt: alert.attempt, result: result, startedAt: startedAt, duration: ContinuousClock.now - clock)
            outcome.error = error
            return outcome
        }
        if alert.attempt > alert.maxAttempts {
            return outcome(.failed, error: "Gave up: \(alert.maxAttempts) attempts were started and none was recorded as finished (alertd stopped during them).")
        }
        switch alert.channel {
        case "webhook":
            return await deliverWebhook(alert, startedAt: startedAt, clock: clock)
        default:
            return outcome(.failed, error: "alert channel \(alert.channel) is not supported")
        }
    }

    func deliverWebhook(_ alert: ClaimedAlert, startedAt: Date, clock: ContinuousClock.Instant) async -> AttemptOutcome {
        let context = AlertContext(alert: alert, linkBase: configuration.linkBaseURL, now: startedAt)
        let message = templates.renderMessage(context)
        var result = AttemptOutcome(alertID: alert.id, attempt: alert.attempt, result: .failed, startedAt: startedAt, duration: .zero)
        result.subject = message.subject

        let decision: DeliveryDecision
        if alert.recipients.first.map({ $0.isEmpty }) ?? true {
            decision = .failed(reason: "The alert has no webhook URL.")
        } else {
            do {
                let body = try templates.renderWebhookBody(context)
                result.message = String(decoding: body, as: UTF8.self)
                let id = "msg_\(alert.id.uuidString.lowercased())"
                let timestamp = Int(startedAt.timeIntervalSince1970)
                var headers: [(name: String, value: String)] = [
                    ("Content-Type", "application/json"),
                    ("webhook-id", id),
                    ("webhook-timestamp", String(timestamp)),
                ]
                if !configuration.webhookSigner.secrets.isEmpty {
                    headers.append(("webhook-signature", configuration.webhookSigner.signature(id: id, timestamp: timestamp, body: body)))
                }
                let response = await webhooks.send(WebhookRequest(url: alert.recipients[0], body: body, headers: headers))
                if case .answered(let status, _, _) = response { result.httpStatus = status }
                decision = response.decision()
            } catch {
                decision = .failed(reason: "\(error)")
            }
        }
        return finish(result, decision: decision, alert: alert, clock: clock)
    }

    func deliverEmails(_ alerts: [ClaimedAlert]) async -> [AttemptOutcome] {
        guard !alerts.isEmpty else { return [] }
        let startedAt = Date()
        let clock = ContinuousClock.now
        guard let smtp else {
            return alerts.map { finish(AttemptOutcome(alertID: $0.id, attempt: $0.attempt, result: .failed, startedAt: startedAt, duration: .zero), decision: .failed(reason: "Email is not configured (ALERTD_SMTP_URL)."), alert: $0, clock: clock) }
        }
        struct Plan {
            let alert: ClaimedAlert
            let message: AlertTemplates.Rendered
            let valid: [String]
            let invalid: [String]
        }
        let plans = alerts.map { alert -> Plan in
            let rendered = templates.renderMessage(AlertContext(alert: alert, linkBase: configuration.linkBaseURL, now: startedAt))
            let pending = alert.recipients.filter { !alert.doneRecipients.contains($0) }
            return Plan(
                alert: alert, message: rendered,
                valid: pending.filter(EmailMessage.isValidAddress),
                invalid: pending.filter { !EmailMessage.isValidAddress($0) }
            )
        }
        let sendable = plans.filter { !$0.valid.isEmpty }
        let messages = sendable.map { plan in
            EmailMessage(
                from: smtp.settings.from, to: plan.valid, subject: plan.message.subject, text: plan.message.text, html: plan.message.html,
                messageID: "\(plan.alert.id.uuidString.lowercased()).\(plan.alert.attempt)@alertd", date: startedAt
            )
        }
        let results = await smtp.send(messages)
        var resultByAlert: [UUID: SMTPClient.MessageResult] = [:]
        for (plan, result) in zip(sendable, results) { resultByAlert[plan.alert.id] = result }

        return plans.map { plan in
            var replies: [String: String] = [:]
            var accepted: [String] = []
            var bounced: [(String, String)] = plan.invalid.map { ($0, "not a valid email address") }
            var temporary: [(String, String)] = []
            if let result = resultByAlert[plan.alert.id] {
                for address in plan.valid {
                    let reply = result.recipients[address] ?? SMTPClient.Reply(code: 0, text: "no reply")
                    let message = result.message
                    if reply.isSuccess, let message, message.isSuccess {
                        accepted.append(address)
                        replies[address] = message.description
                    } else if reply.isPermanentFailure {
                        bounced.append((address, reply.description))
                        replies[address] = reply.description
                    } else if reply.isSuccess, let message, message.isPermanentFailure {
                        bounced.append((address, message.description))
                        replies[address] = message.description
                    } else {
                        let reason = reply.code == 0 ? (result.sessionError ?? reply.text) : (result.message.map { reply.isSuccess ? $0.description : reply.description } ?? reply.description)
                        temporary.append((address, reason))
                        replies[address] = reason
                    }
                }
            }
            for (address, reason) in bounced where replies[address] == nil { replies[address] = reason }
            let delivered = plan.alert.deliveredRecipients + accepted
            let everBounced = plan.alert.bouncedRecipients + bounced.map(\.0)

            var outcome = AttemptOutcome(alertID: plan.alert.id, attempt: plan.alert.attempt, result: .sent, startedAt: startedAt, duration: .zero)
            outcome.subject = plan.message.subject
            outcome.message = plan.message.text
            outcome.smtpReply = resultByAlert[plan.alert.id]?.message?.description ?? temporary.first?.1 ?? bounced.first?.1
            outcome.details = Self.json(["recipients": replies])
            outcome.metadataPatch = Self.json(["email_delivered": delivered, "email_bounced": everBounced])
            let bouncedNote = bounced.isEmpty ? nil : "Bounced: " + bounced.map { "\($0.0) (\($0.1))" }.joined(separator: "; ")
            let decision: DeliveryDecision
            if !temporary.isEmpty {
                decision = .retry(reason: ([bouncedNote].compactMap { $0 } + ["Not yet delivered to " + temporary.map { "\($0.0) (\($0.1))" }.joined(separator: "; ")]).joined(separator: ". "), notBefore: nil)
            } else if !delivered.isEmpty {
                decision = .delivered
            } else {
                decision = .failed(reason: bouncedNote ?? (everBounced.isEmpty ? "The alert has no email recipients." : "Every recipient was refused."))
            }
            var finished = finish(outcome, decision: decision, alert: plan.alert, clock: clock)
            finished.smtpReply = outcome.smtpReply
            finished.details = outcome.details
            finished.metadataPatch = outcome.metadataPatch
            if case .delivered = decision { finished.error = bouncedNote }
            if case .failed = decision, !everBounced.isEmpty { finished = finished.with(result: .bounced) }
            return finished
        }
    }

    static func json(_ object: [String: Any]) -> String {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Turns a decision into the recorded outcome: a retry becomes final once the attempts run out.
    func finish(_ partial: AttemptOutcome, decision: DeliveryDecision, alert: ClaimedAlert, clock: ContinuousClock.Instant) -> AttemptOutcome {
        let result: AttemptOutcome.Result
        var error: String?
        var retryIn: Duration?
        switch decision {
        case .delivered:
            result = .sent
        case .failed(let reason):
            result = .failed
            error = reason
        case .retry(let reason, let notBefore):
            if alert.attempt >= alert.maxAttempts {
                result = .failed
                error = "Gave up after \(alert.attempt) attempts: \(reason)"
            } else {
                result = .retry
                error = reason
                retryIn = max(configuration.retryBackoff.delay(attempt: alert.attempt), notBefore ?? .zero)
            }
        }
        var outcome = AttemptOutcome(alertID: alert.id, attempt: alert.attempt, result: result, startedAt: partial.startedAt, duration: ContinuousClock.now - clock)
        outcome.httpStatus = partial.httpStatus
        outcome.subject = partial.subject
        outcome.message = partial.message
        outcome.error = error
        outcome.retryIn = retryIn
        logger.info("delivery", metadata: [
            "alert": "\(alert.id)", "channel": "\(alert.channel)", "attempt": "\(alert.attempt)",
            "outcome": "\(result.rawValue)", "duration_ms": "\(Int(outcome.duration.seconds * 1000))",
        ])
        return outcome
    }
}

/// Lets exactly one of several racers resume a continuation.
final class ResumeOnce: @unchecked Sendable {
    // Invariant: `claimed` is read and written with `lock` held.
    private let lock = NSLock()
    private var claimed = false

    /// True for the first caller only.
    func claim() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if claimed { return false }
        claimed = true
        return true
    }

    var isClaimed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return claimed
    }
}
