import AlertdPostgres
import AlertdSupport
import Foundation
import Logging

/// `alertd run`: waits for due alerts, claims them, delivers them and records every attempt,
/// until shutdown.
///
/// It wakes on a notification on channel `alertd`, when its listener (re)connects, on the slow
/// poll, when the next retry or lease falls due, and when deliveries finish. Notifications are
/// only hints: the alert rows are the truth, so a missed notification delays an alert by one poll
/// at most.
///
/// Claiming, delivering and recording overlap: up to `maxInFlight` alerts are out at once, each
/// webhook finishing on its own time, and a recorder writes the outcomes in batches on a second
/// connection. A receiver that never answers holds at most `webhook.perHost` alerts; the others
/// keep flowing.
public final class Dispatcher: Sendable {
    public let configuration: AlertdConfiguration
    let templates: AlertTemplates
    let webhooks: WebhookClient
    let smtp: SMTPClient?
    public let logger: Logger
    /// Counts and readiness, for the status server (`ALERTD_HTTP_ADDRESS`).
    public let metrics = DispatcherMetrics()
    private let wake = WakeSignal()
    /// Waits between database calls that failed: short, so that work resumes soon after the
    /// database is back.
    static let databaseRetry = Backoff(initial: .milliseconds(100), maximum: .seconds(5))
    /// Webhooks in flight per connection allowed to a host: the rest wait in libcurl's queue.
    /// A queue this deep keeps every connection busy while the dispatcher's threads are busy
    /// with claims and outcomes: with 4, one fast receiver took about 4,500 webhooks/s, with 8
    /// about 6,300 (`alertd bench --only backlog`). A receiver that never answers holds 8 × its
    /// connections.
    static let queuedPerConnection = 8

    public init(configuration: AlertdConfiguration, templates: AlertTemplates, logger: Logger) {
        self.configuration = configuration
        self.templates = templates
        self.webhooks = WebhookClient(settings: configuration.webhook)
        self.smtp = configuration.smtp.map(SMTPClient.init(settings:))
        self.logger = logger
    }

    /// Runs until `shutdown` is requested; the deliveries in flight then finish and are recorded
    /// within the shutdown grace.
    public func run(until shutdown: ShutdownSignal) async throws {
        let wake = self.wake
        let metrics = self.metrics
        shutdown.onRequest {
            metrics.setStopping()
            wake.signal()
        }
        // Connecting retries until the database answers; a shutdown request ends the wait.
        let database = configuration.database
        let logger = self.logger
        let connecting = Task {
            let claims = try await PostgresConnection.connect(database, retrying: .reconnect, logger: logger)
            let records = try await PostgresConnection.connect(database, retrying: .reconnect, logger: logger)
            try await claims.onReconnect {
                metrics.databaseReconnected()
                wake.sessionReplaced()
            }
            try await records.onReconnect { metrics.databaseReconnected() }
            for connection in [claims, records] {
                try await connection.keepSessionSettings(AlertStore.sessionSettings)
            }
            return (claims, records)
        }
        shutdown.onRequest { connecting.cancel() }
        let connections: (claims: PostgresConnection, records: PostgresConnection)
        do {
            connections = try await connecting.value
        } catch where shutdown.isRequested {
            await webhooks.shutdown()
            logger.info("alertd stopped before the database answered")
            return
        }
        metrics.setDatabaseError(nil)
        defer {
            Task {
                await connections.claims.close()
                await connections.records.close()
            }
        }
        let store = AlertStore(connection: connections.claims, worker: configuration.instance)
        let inFlight = InFlightAlerts()
        let outcomes = OutcomeQueue()
        let recorder = Task {
            await self.recordOutcomes(outcomes, store: AlertStore(connection: connections.records, worker: configuration.instance), inFlight: inFlight)
        }
        let listener = PostgresListener(
            connectionString: configuration.database, channels: ["alertd"],
            healthCheckInterval: configuration.listenCheckInterval,
            healthCheckTimeout: min(configuration.listenCheckInterval, .seconds(10)),
            logger: logger
        )
        logger.info("alertd started", metadata: [
            "version": "\(AlertdVersion.string)",
            "instance": "\(configuration.instance)",
            "db": "\(configuration.database.host ?? "local socket")",
            "channels": "\(configuration.channels.joined(separator: ","))",
            "webhook_allow": "\(configuration.webhook.policy.allowedNetworks.map(\.description) + configuration.webhook.policy.allowedHosts.sorted())",
            "webhooks_signed": "\(!configuration.webhookSigner.secrets.isEmpty)",
            "max_in_flight": "\(configuration.maxInFlight)",
            "http_address": "\(configuration.httpAddress.map(\.description) ?? "off")",
        ])
        try await listener.run { events in
            let listening = Task {
                for await event in events {
                    switch event {
                    case .disconnected:
                        metrics.setListening(false)
                        continue
                    case .listening(let reconnected):
                        metrics.setListening(true, reconnected: reconnected)
                    case .notification:
                        break
                    }
                    wake.notify()
                }
            }
            defer { listening.cancel() }
            let renewing = Task { await self.renewLeases(store: store, inFlight: inFlight) }
            // The queue's size and age for /metrics, read only when something serves them.
            let reading = configuration.httpAddress == nil ? nil : Task {
                await self.readQueue(store: AlertStore(connection: connections.records, worker: configuration.instance))
            }
            defer { reading?.cancel() }
            await self.claimAndDeliver(store: store, inFlight: inFlight, outcomes: outcomes, shutdown: shutdown)
            await self.finishInFlight(store: store, inFlight: inFlight)
            renewing.cancel()
        }
        outcomes.close()
        await recorder.value
        await webhooks.shutdown()
        logger.info("alertd stopped", metadata: ["instance": "\(configuration.instance)"])
    }

    /// Claims due alerts while there is room in flight, and starts their deliveries.
    ///
    /// A host with more due webhooks than it may have in flight (a backlog, or a slow receiver)
    /// is "deep": claims are then sized to its free places, taken once a quarter of them are free,
    /// so that no claim takes rows only to give them back. While every deep host is full, the
    /// table is searched for other hosts' work every `otherWorkInterval`, or
    /// `notifiedOtherWorkInterval` after a notification, and no more often: that search reads
    /// past the deep hosts' backlogs.
    private func claimAndDeliver(store: AlertStore, inFlight: InFlightAlerts, outcomes: OutcomeQueue, shutdown: ShutdownSignal) async {
        // libcurl opens at most `perHost` connections to a host and queues the rest; a few
        // times that many in flight keeps every connection busy, while a receiver that never
        // answers still holds a bounded share.
        let perHost = configuration.webhook.perHost * Self.queuedPerConnection
        var failures = 0
        var deep: Set<String> = []
        var lastOtherWorkSearch = ContinuousClock.now - Self.otherWorkInterval
        // Whether this session holds the waiting lock, so that writers notify.
        var holdingWaitingLock = false
        while !shutdown.isRequested {
            if wake.takeSessionReplaced() { holdingWaitingLock = false }
            let room = configuration.maxInFlight - inFlight.count
            guard room > 0 else {
                await wake.wait(timeout: configuration.pollInterval)
                continue
            }
            var limit = min(configuration.batchSize, room)
            // A notification hastens it, to `notifiedOtherWorkInterval`: new alerts may be for
            // a host with room. Not sooner: under a stream of writes notifications come every
            // few milliseconds, and each search reads past every deep host's backlog.
            let sinceSearch = ContinuousClock.now - lastOtherWorkSearch
            let searchOtherWork = deep.isEmpty || sinceSearch >= Self.otherWorkInterval
                || (wake.notified && sinceSearch >= Self.notifiedOtherWorkInterval)
            if !deep.isEmpty {
                let free = deep.reduce(0) { $0 + max(0, perHost - inFlight.count(to: $1)) }
                if searchOtherWork {
                    limit = min(limit, max(free, configuration.batchSize / 4))
                } else if free >= max(1, perHost / 4) {
                    limit = min(limit, free)
                } else {
                    await wake.wait(timeout: wake.notified ? Self.notifiedOtherWorkInterval : Self.otherWorkInterval)
                    continue
                }
            }
            // One SMTP session at a time: email claimed while one is under way would only wait
            // in line for it, its lease running; left in the table, it joins the next session.
            let channels = inFlight.sendingEmail ? configuration.channels.filter { $0 != "email" } : configuration.channels
            do {
                let saturated = inFlight.saturatedDestinations(limit: perHost)
                if searchOtherWork {
                    lastOtherWorkSearch = .now
                    wake.clearNotified()
                }
                let claimed = channels.isEmpty ? [] : try await store.claim(
                    limit: limit, channels: channels, lease: configuration.lease, excludingDestinations: saturated
                )
                failures = 0
                metrics.setDatabaseError(nil)
                if claimed.count < limit {
                    // The due work is all out: no host is deep now.
                    deep = deep.filter { saturated.contains($0) }
                }
                if claimed.isEmpty {
                    if !holdingWaitingLock {
                        switch try await Self.takeWaitingLock(store) {
                        case .taken:
                            // Writers that queued alerts without notifying have committed: one
                            // more claim sees them, and from now on writers notify.
                            holdingWaitingLock = true
                            continue
                        case .writerOpen:
                            await wake.wait(timeout: Self.unnotifiedPollInterval)
                            continue
                        case .heldElsewhere:
                            break
                        }
                    }
                    // With deliveries out, their end is the next thing to happen; else the next due
                    // alert. While holding the lock, look at least every `waitingLockCheckInterval`:
                    // a claim on a connection found broken makes it again, and takes the lock anew.
                    let wait = inFlight.count > 0 ? (deep.isEmpty ? configuration.pollInterval : Self.otherWorkInterval) : try await nextWait(store)
                    await wake.wait(timeout: holdingWaitingLock ? min(wait, Self.waitingLockCheckInterval) : wait)
                    continue
                }
                let (admitted, excess) = inFlight.admit(claimed, perDestination: perHost)
                start(admitted, inFlight: inFlight, outcomes: outcomes)
                metrics.setInFlight(inFlight.count)
                deep.formUnion(saturated)
                if !excess.isEmpty {
                    // More for one host than may be in flight: given back unattempted, for later,
                    // and the host's next claims are sized to its free places.
                    deep.formUnion(excess.compactMap(\.destination))
                    try await store.release(excess.map(\.id))
                }
                if holdingWaitingLock && claimed.count >= Self.backlogClaim {
                    // A backlog: claims follow one another without a pause, and notifications
                    // would only slow the writers. Last: a failure here strands no claimed alert.
                    try await store.releaseWaitingLock()
                    holdingWaitingLock = false
                }
            } catch {
                failures += 1
                metrics.setDatabaseError("\(error)")
                let delay = Self.databaseRetry.delay(attempt: failures)
                logger.warning("database call failed; trying again", metadata: ["error": "\(error)", "retry_in_s": "\(delay.seconds)"])
                await wake.wait(timeout: delay)
            }
        }
    }

    /// What came of trying to take the waiting lock before sleeping.
    enum WaitingLockAttempt {
        /// This session holds it: writers notify from now on.
        case taken
        /// A writer's transaction that queued an alert without notifying is still open: look
        /// again soon.
        case writerOpen
        /// Another instance holds it, so writers notify: sleep as usual.
        case heldElsewhere
    }

    static func takeWaitingLock(_ store: AlertStore) async throws -> WaitingLockAttempt {
        if try await store.takeWaitingLock(timeout: waitingLockTimeout) { return .taken }
        return try await store.waitingLockHeldElsewhere() ? .heldElsewhere : .writerOpen
    }

    /// How long a dispatcher with nothing due waits for writers that skipped their notification
    /// to commit, before it takes the waiting lock and sleeps.
    static let waitingLockTimeout: Duration = .milliseconds(200)
    /// How often to look for work while the waiting lock cannot be taken because a writer's
    /// transaction is open.
    static let unnotifiedPollInterval: Duration = .milliseconds(100)
    /// The longest sleep while holding the waiting lock.
    static let waitingLockCheckInterval: Duration = .seconds(5)
    /// A claim this large means a backlog: the waiting lock is let go.
    static let backlogClaim = 32

    /// While every host with a backlog is full, how often the table is searched for other work.
    static let otherWorkInterval: Duration = .milliseconds(250)
    /// The same after a notification.
    static let notifiedOtherWorkInterval: Duration = .milliseconds(50)

    /// Starts the deliveries of claimed alerts: the email alerts together in one SMTP session,
    /// each webhook on its own.
    private func start(_ alerts: [ClaimedAlert], inFlight: InFlightAlerts, outcomes: OutcomeQueue) {
        let metrics = self.metrics
        let emails = alerts.filter(Self.goesBySMTP)
        if !emails.isEmpty {
            inFlight.setSendingEmail(true)
            Task {
                let results = await self.deliverEmails(emails)
                for (alert, result) in zip(emails, results) {
                    metrics.delivered(result, channel: alert.channel, createdAt: alert.createdAt)
                }
                inFlight.delivered(results.map(\.alertID))
                inFlight.setSendingEmail(false)
                outcomes.push(results)
                self.wake.signal()
            }
        }
        for alert in alerts where !Self.goesBySMTP(alert) {
            Task {
                let result = await self.deliver(alert)
                self.metrics.delivered(result, channel: alert.channel, createdAt: alert.createdAt)
                inFlight.delivered([result.alertID])
                outcomes.push([result])
            }
        }
    }

    /// Extends the leases of the alerts in flight every third of a lease, so that a delivery that
    /// takes long (a slow receiver, a long SMTP session) is never claimed a second time by
    /// another instance while it is still under way. A crashed instance renews nothing: its
    /// alerts are due again one lease after its last renewal.
    private func renewLeases(store: AlertStore, inFlight: InFlightAlerts) async {
        let period = configuration.lease / 3
        while !Task.isCancelled {
            try? await Task.sleep(for: period)
            let ids = inFlight.ids
            guard !ids.isEmpty, !Task.isCancelled else { continue }
            do {
                try await store.renew(ids, lease: configuration.lease)
            } catch {
                logger.warning("could not renew leases", metadata: ["alerts": "\(ids.count)", "error": "\(error)"])
            }
        }
    }

    /// At shutdown: waits for the deliveries in flight and their records, up to the grace; then
    /// gives back the leases of deliveries still unfinished.
    private func finishInFlight(store: AlertStore, inFlight: InFlightAlerts) async {
        let grace = configuration.shutdownGrace
        let deadline = ContinuousClock.now + grace
        inFlight.giveUpRecording(at: deadline)
        while inFlight.count > 0 && ContinuousClock.now < deadline {
            await wake.wait(timeout: .milliseconds(50))
        }
        let unfinished = inFlight.undelivered
        guard !unfinished.isEmpty else { return }
        do {
            try await store.release(unfinished)
            logger.warning("released in-flight alerts at shutdown", metadata: [
                "alerts": "\(unfinished.count)", "grace_s": "\(grace.seconds)",
            ])
        } catch {
            logger.warning("could not release in-flight alerts at shutdown; they are due again when their lease ends", metadata: [
                "alerts": "\(unfinished.count)", "error": "\(error)",
            ])
        }
    }

    /// Writes outcomes in batches as they come, on a connection of its own. While the database is
    /// away it keeps them and tries again: an attempt that is not recorded is delivered again once
    /// its lease ends. At shutdown it gives up when the grace runs out.
    private func recordOutcomes(_ outcomes: OutcomeQueue, store: AlertStore, inFlight: InFlightAlerts) async {
        while let batch = await outcomes.next(max: 1000) {
            var failures = 0
            while true {
                do {
                    let recorded = try await store.record(batch)
                    metrics.setDatabaseError(nil)
                    if recorded.count < batch.count {
                        logger.warning("leases lost before their outcome was recorded", metadata: ["alerts": "\(batch.count - recorded.count)"])
                    }
                    if failures > 0 { logger.info("recorded outcomes after the database came back", metadata: ["alerts": "\(batch.count)"]) }
                    break
                } catch {
                    failures += 1
                    metrics.setDatabaseError("\(error)")
                    if inFlight.mustGiveUpRecording {
                        logger.error("outcomes not recorded at shutdown; those alerts are delivered again when their lease ends", metadata: [
                            "alerts": "\(batch.count)", "error": "\(error)",
                        ])
                        break
                    }
                    let delay = Self.databaseRetry.delay(attempt: failures)
                    if failures == 1 || failures % 10 == 0 {
                        logger.warning("cannot record outcomes; keeping them and trying again", metadata: [
                            "alerts": "\(batch.count)", "error": "\(error)", "retry_in_s": "\(delay.seconds)",
                        ])
                    }
                    try? await Task.sleep(for: delay)
                }
            }
            inFlight.finished(batch.map(\.alertID))
            metrics.setInFlight(inFlight.count)
            wake.signal()
        }
    }

    /// Reads how many alerts are pending and how long the oldest due one has waited, every
    /// `queueReadInterval`, for /metrics.
    private func readQueue(store: AlertStore) async {
        while !Task.isCancelled {
            do {
                metrics.setQueue(try await store.queueState())
            } catch {
                logger.debug("could not read the queue's size for /metrics", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: Self.queueReadInterval)
        }
    }

    /// How often /metrics' queue figures are read from the database.
    static let queueReadInterval: Duration = .seconds(5)

    /// Until the next retry or lease falls due, at most the poll interval.
    private func nextWait(_ store: AlertStore) async throws -> Duration {
        guard let due = try await store.nextDue(channels: configuration.channels) else { return configuration.pollInterval }
        let seconds = max(due.timeIntervalSinceNow, 0.01)
        return min(.milliseconds(Int64(seconds * 1000)), configuration.pollInterval)
    }

    /// Email alerts with an attempt left go out together in one SMTP session; the rest (webhooks,
    /// and alerts out of attempts, which only get their final outcome) one by one.
    static func goesBySMTP(_ alert: ClaimedAlert) -> Bool {
        alert.channel == "email" && alert.attempt <= alert.maxAttempts
    }

    /// Delivers a batch concurrently; every alert gets an outcome, whatever happens to it. The
    /// batch's email goes out in one SMTP session.
    func deliver(_ alerts: [ClaimedAlert]) async -> [AttemptOutcome] {
        let emails = alerts.filter(Self.goesBySMTP)
        let others = alerts.filter { !Self.goesBySMTP($0) }
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
        var result = AttemptOutcome(alertID: alert.id, attempt: alert.attempt, result: .failed, startedAt: startedAt, duration: .zero)
        result.subject = templates.renderSubject(context)

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
                from: smtp.settings.from, fromName: smtp.settings.fromName, to: plan.valid, subject: plan.message.subject, text: plan.message.text, html: plan.message.html,
                messageID: "\(plan.alert.id.uuidString.lowercased()).\(plan.alert.attempt)@\(EmailMessage.domain(of: smtp.settings.from))", date: startedAt
            )
        }
        let results = await smtp.send(messages)
        if let first = results.first { metrics.smtpSession(failure: first.sessionFailure) }
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
            let sessionFailure = resultByAlert[plan.alert.id]?.sessionFailure
            outcome.smtpReply = resultByAlert[plan.alert.id]?.message?.description ?? (sessionFailure == nil ? temporary.first?.1 : nil) ?? bounced.first?.1
            outcome.details = Self.json(["recipients": replies])
            outcome.metadataPatch = Self.json(["email_delivered": delivered, "email_bounced": everBounced])
            let bouncedNote = bounced.isEmpty ? nil : "Bounced: " + bounced.map { "\($0.0) (\($0.1))" }.joined(separator: "; ")
            let decision: DeliveryDecision
            if !temporary.isEmpty {
                // A session that failed is one reason for every recipient: said once.
                let notYet = sessionFailure.flatMap { failure in temporary.allSatisfy { $0.1 == failure.message } ? failure.message : nil }
                    ?? "Not yet delivered to " + temporary.map { "\($0.0) (\($0.1))" }.joined(separator: "; ")
                decision = .retry(reason: ([bouncedNote].compactMap { $0 } + [notYet]).joined(separator: ". "), notBefore: nil)
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
                error = "Gave up after \(alert.attempt) \(alert.attempt == 1 ? "attempt" : "attempts"): \(reason)"
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
        var fields: Logger.Metadata = [
            "alert": "\(alert.id)", "channel": "\(alert.channel)", "attempt": "\(alert.attempt)",
            "integration": "\(alert.integration.map { $0.id.uuidString.lowercased() } ?? "none")",
            "outcome": "\(result.rawValue)", "duration_ms": "\(Int(outcome.duration.seconds * 1000))",
        ]
        if let status = partial.httpStatus { fields["http_status"] = "\(status)" }
        if let error { fields["error"] = "\(error.prefix(300))" }
        if let retryIn { fields["retry_in_s"] = "\(retryIn.seconds)" }
        logger.info("delivery", metadata: fields)
        return outcome
    }
}
