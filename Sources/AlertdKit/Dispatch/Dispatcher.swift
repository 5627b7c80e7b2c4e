import AlertdPostgres
import AlertdSupport
import Foundation
import Logging
import ServiceLifecycle

/// `alertd run`'s claim loop: waits for due alerts, claims them under a lease and hands them to
/// the delivery path; their outcomes go to the recorder (`OutcomeRecorder`). Alerts whose
/// destination's circuit is open wait, but for its probe (`DestinationHealth`).
///
/// It wakes on a notification (`NotificationListener`), when the claims connection is made
/// again, on the slow poll, when the next retry or lease falls due, and when deliveries finish.
/// How much it claims, and when it waits instead, is the `ClaimPlanner`'s decision.
///
/// Claiming, delivering and recording overlap: up to `maxInFlight` alerts are out at once, each
/// webhook finishing on its own time. A receiver that never answers holds at most its share of
/// places (`ClaimPlanner.perHost`); the others keep flowing.
///
/// At graceful shutdown it stops claiming, lets the deliveries in flight finish and be recorded
/// within the shutdown grace, gives back the leases of those still unfinished, and returns.
final class Dispatcher: Service {
    private let configuration: AlertdConfiguration
    private let delivery: AlertDelivery
    private let claims: SharedConnection
    private let gate: SessionGate
    private let health: DestinationHealth
    private let formats: IntegrationOverrides
    private let secrets: SigningSecrets
    private let inFlight: InFlightAlerts
    private let outcomes: OutcomeQueue
    private let wake: WakeSignal
    private let metrics: DispatcherMetrics
    private let logger: Logger

    /// Webhooks in flight per connection allowed to a host: the rest wait in libcurl's queue.
    /// A queue this deep keeps every connection busy while the dispatcher's threads are busy
    /// with claims and outcomes: with 4, one fast receiver took about 4,500 webhooks/s, with 8
    /// about 6,300 (`alertd bench --only backlog`). A receiver that never answers holds 8 × its
    /// connections.
    static let queuedPerConnection = 8

    init(
        configuration: AlertdConfiguration, delivery: AlertDelivery, claims: SharedConnection, gate: SessionGate, health: DestinationHealth, inFlight: InFlightAlerts,
        outcomes: OutcomeQueue, wake: WakeSignal, metrics: DispatcherMetrics, logger: Logger
    ) {
        self.configuration = configuration
        self.delivery = delivery
        self.claims = claims
        self.gate = gate
        self.health = health
        formats = IntegrationOverrides(logger: logger)
        secrets = SigningSecrets(signing: configuration.webhookSigning, logger: logger)
        self.inFlight = inFlight
        self.outcomes = outcomes
        self.wake = wake
        self.metrics = metrics
        self.logger = logger
    }

    func run() async {
        let wake = self.wake
        let metrics = self.metrics
        await withGracefulShutdownHandler {
            // Connecting retries until the database answers; shutdown ends the wait.
            let connection: PostgresConnection
            do {
                connection = try await cancelWhenGracefulShutdown { try await self.claims.get() }
            } catch {
                logger.info("alertd stopped before the database answered")
                return
            }
            guard await sessionChecked() else {
                // Refused: the listener's error ends alertd, gracefully, through this too.
                try? await gracefulShutdown()
                return
            }
            metrics.setDatabaseError(nil)
            logStarted()
            let store = AlertStore(connection: connection, worker: configuration.instance)
            if configuration.webhookSigning == .both {
                logger.warning("webhooks are signed with each integration's own secret and with ALERTD_WEBHOOK_SECRET, which every tenant's receivers may hold: any of them can forge signatures until ALERTD_WEBHOOK_SIGNING=integration (docs/security.md, moving to a secret per integration)")
            }
            await withDiscardingTaskGroup { group in
                await claimAndDeliver(store: store, group: &group)
                await finishInFlight(store: store)
                // Deliveries still out after the grace were given back: they are not waited for.
                group.cancelAll()
            }
            logger.info("alertd stopped", metadata: ["instance": "\(configuration.instance)"])
        } onGracefulShutdown: {
            metrics.setStopping()
            wake.signal()
        }
    }

    /// Waits until the listener has shown the session to be alertd's own; false if it was not,
    /// or shutdown came first.
    private func sessionChecked() async -> Bool {
        while true {
            switch gate.state {
            case .open: return true
            case .refused: return false
            case .unchecked:
                guard !Task.isShuttingDownGracefully && !Task.isCancelled else { return false }
                await wake.wait(timeout: .milliseconds(200))
            }
        }
    }

    private func logStarted() {
        logger.info("alertd started", metadata: [
            "version": "\(AlertdVersion.string)",
            "instance": "\(configuration.instance)",
            "db": "\(configuration.database.host ?? "local socket")",
            "channels": "\(configuration.channels.map(\.rawValue).joined(separator: ","))",
            "webhook_allow": "\(configuration.webhook.policy.allowedNetworks.map(\.description) + configuration.webhook.policy.allowedHosts.sorted())",
            "webhook_signing": "\(configuration.webhookSigning.rawValue)",
            "max_in_flight": "\(configuration.maxInFlight)",
            "http_address": "\(configuration.httpAddress.map(\.description) ?? "off")",
        ])
    }

    /// Claims due alerts while there is room in flight and starts their deliveries in `group`,
    /// until graceful shutdown.
    private func claimAndDeliver(store: AlertStore, group: inout DiscardingTaskGroup) async {
        // libcurl opens at most `perHost` connections to a host and queues the rest; a few
        // times that many in flight keeps every connection busy, while a receiver that never
        // answers still holds a bounded share.
        let perHost = configuration.webhook.perHost * Self.queuedPerConnection
        var planner = ClaimPlanner(batchSize: configuration.batchSize, maxInFlight: configuration.maxInFlight, perHost: perHost, pollInterval: configuration.pollInterval)
        let inFlight = self.inFlight
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if wake.takeSessionReplaced() { planner.sessionReplaced() }
            let step = planner.next(inFlight: inFlight.count, inFlightTo: { inFlight.count(to: $0) }, notified: wake.notified, now: .now)
            guard case .claim(let limit, let searchesOtherWork) = step else {
                if case .wait(let timeout) = step { await wake.wait(timeout: timeout) }
                continue
            }
            // One SMTP session at a time: email claimed while one is under way would only wait
            // in line for it, its lease running; left in the table, it joins the next session.
            let channels = inFlight.sendingEmail ? configuration.channels.filter { $0 != .email } : configuration.channels
            do {
                try await health.check(store.connection)
                await formats.refresh(store.connection)
                let saturated = inFlight.saturatedDestinations(limit: perHost)
                if searchesOtherWork { wake.clearNotified() }
                let claimed = channels.isEmpty ? [] : try await store.claim(
                    limit: limit, channels: channels, lease: configuration.lease, excludingDestinations: saturated, health: health.claim
                )
                metrics.setDatabaseError(nil)
                if claimed.isEmpty {
                    planner.claimed(0, limit: limit, saturated: saturated, excess: [])
                    try await idle(planner: &planner, store: store)
                    continue
                }
                let signed: [ClaimedAlert]
                do {
                    signed = try await secrets.apply(formats.apply(claimed), store: SigningSecretStore(connection: store.connection))
                } catch {
                    // Never signed otherwise: given back unattempted, for the next claim.
                    try? await store.release(claimed.map(\.id))
                    throw error
                }
                let (admitted, excess) = inFlight.admit(signed, perDestination: perHost)
                start(admitted, group: &group)
                metrics.setInFlight(inFlight.count)
                planner.claimed(claimed.count, limit: limit, saturated: saturated, excess: excess.compactMap(\.destination))
                if !excess.isEmpty {
                    // More for one host than may be in flight: given back unattempted, for later,
                    // and the host's next claims are sized to its free places.
                    try await store.release(excess.map(\.id))
                }
                if planner.releasesWaitingLock(afterClaiming: claimed.count) {
                    // Last: a failure here strands no claimed alert.
                    try await store.releaseWaitingLock()
                }
            } catch {
                metrics.setDatabaseError("\(error)")
                let delay = planner.failed()
                logger.warning("database call failed; trying again", metadata: ["error": "\(error)", "retry_in_s": "\(delay.seconds)"])
                await wake.wait(timeout: delay)
            }
        }
    }

    /// Nothing was due: take the waiting lock if this session does not hold it, then sleep until
    /// a wake-up or the next due alert.
    private func idle(planner: inout ClaimPlanner, store: AlertStore) async throws {
        if planner.idle == .takeWaitingLock {
            let attempt: ClaimPlanner.WaitingLockAttempt
            if try await store.takeWaitingLock(timeout: ClaimPlanner.waitingLockTimeout) {
                attempt = .taken
            } else {
                attempt = try await store.waitingLockHeldElsewhere() ? .heldElsewhere : .writerOpen
            }
            switch planner.waitingLock(attempt) {
            case .claimAgain: return
            case .wait(let timeout):
                await wake.wait(timeout: timeout)
                return
            case .sleep: break
            }
        }
        let inFlight = inFlight.count
        var nextDue: Duration?
        if planner.needsNextDue(inFlight: inFlight), let due = try await store.nextDue(channels: configuration.channels, health: health.claim != nil) {
            nextDue = .milliseconds(Int64(max(due.timeIntervalSinceNow, 0.01) * 1000))
        }
        await wake.wait(timeout: planner.sleep(inFlight: inFlight, nextDue: nextDue))
    }

    /// Starts the deliveries of claimed alerts as child tasks: when each ends, its outcomes go to
    /// the recorder and its places in flight are free again.
    private func start(_ alerts: [ClaimedAlert], group: inout DiscardingTaskGroup) {
        guard !alerts.isEmpty else { return }
        let inFlight = self.inFlight
        let outcomes = self.outcomes
        let wake = self.wake
        let metrics = self.metrics
        let delivery = self.delivery
        if alerts.contains(where: AlertDelivery.goesBySMTP) { inFlight.setSendingEmail(true) }
        group.addTask {
            await delivery.deliver(alerts) { finished in
                for (alert, outcome) in zip(finished.alerts, finished.outcomes) {
                    metrics.delivered(outcome, channel: alert.channel, createdAt: alert.createdAt)
                }
                inFlight.delivered(finished.outcomes.map(\.alertID))
                if finished.bySMTP { inFlight.setSendingEmail(false) }
                outcomes.push(finished.outcomes)
                wake.signal()
            }
        }
    }

    /// At shutdown: waits for the deliveries in flight and their records, up to the grace; then
    /// gives back the leases of deliveries still unfinished.
    private func finishInFlight(store: AlertStore) async {
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
}
