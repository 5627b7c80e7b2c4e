import AlertdPostgres
import Foundation
import Logging
import ServiceLifecycle

/// Destination health's part of `alertd run` (migration 20251130; docs/operations.md#destination-health).
///
/// - The dispatcher's claims leave alone the alerts of a destination whose circuit is open, but
///   for one probe at a time (`claim`).
/// - Every batch of outcomes the recorder writes is reported here (`record`): failures in a
///   row, circuits opened and closed, URLs disabled and their owners told, each logged.
/// - As a service, every few seconds: alerts that waited too long are failed, alerts whose
///   circuit closed unseen are let go, and /metrics' figures are read.
///
/// Without the migration it stays out of the way: alertd claims and delivers as before, and says
/// once what is missing.
final class DestinationHealth: Service, @unchecked Sendable {
    let settings: DestinationSettings
    /// The SMTP relay as a destination; nil without email.
    let relay: String?
    private let connection: SharedConnection
    private let instance: String
    private let wake: WakeSignal
    private let metrics: DispatcherMetrics
    private let logger: Logger

    // Invariant: read and written with `lock` held.
    private let lock = NSLock()
    /// Whether the schema has destination health; nil until known.
    private var present: Bool?
    /// When this instance last wrote a success of each destination it saw healthy: a success is
    /// written again only after `healthyRewrite`, so that a busy healthy receiver costs a write
    /// every few seconds, not one per batch.
    private var healthyWritten: [String: ContinuousClock.Instant] = [:]

    /// How long a destination's last written success stands for the successes after it.
    static let healthyRewrite: Duration = .seconds(5)

    init(settings: DestinationSettings, relay: String?, connection: SharedConnection, instance: String, wake: WakeSignal, metrics: DispatcherMetrics, logger: Logger) {
        self.settings = settings
        self.relay = relay
        self.connection = connection
        self.instance = instance
        self.wake = wake
        self.metrics = metrics
        self.logger = logger
    }

    /// Whether a circuit may be open or a destination disabled: true until a sweep finds none, and
    /// again as soon as a report (this instance's) or a sweep (any instance's, within
    /// `sweepInterval`) finds one. While false, claims skip the open circuits' look-ups.
    private var unhealthy = true

    /// What a claim needs, once the schema is known to have destination health; nil before.
    var claim: AlertStore.DestinationClaim? {
        lock.withLock { present == true ? AlertStore.DestinationClaim(relay: relay, maxAge: settings.maxAge, circuits: unhealthy) : nil }
    }

    /// Finds out whether the schema has destination health; says so once when it does not.
    func check(_ connection: PostgresConnection) async throws {
        guard lock.withLock({ present }) == nil else { return }
        let available = try await DestinationStore(connection: connection, worker: instance).available()
        lock.withLock { present = available }
        if !available {
            logger.error("the database lacks alertd's destination health (migration 20251130_alertd_destination_health): apply it with alertd db migrate; until then every alert retries on its own schedule and no webhook URL is disabled")
        }
    }

    // MARK: Outcomes

    /// The outcomes that say something new of their destinations: every failure and probe, and
    /// a success of a destination not written healthy in the last `healthyRewrite`.
    func worthReporting(_ outcomes: [AttemptOutcome], now: ContinuousClock.Instant = .now) -> [AttemptOutcome] {
        lock.withLock {
            outcomes.filter { outcome in
                guard let key = outcome.destination, outcome.signal != nil || outcome.probe else { return false }
                guard outcome.signal == .reached && !outcome.probe else { return true }
                if let written = healthyWritten[key], now - written < Self.healthyRewrite { return false }
                return true
            }
        }
    }

    /// Reports what `outcomes` showed of their destinations (after they were recorded). A report
    /// that fails is logged and dropped: it delays a circuit, it loses no alert.
    func record(_ outcomes: [AttemptOutcome]) async {
        guard lock.withLock({ present }) == true else { return }
        let worth = worthReporting(outcomes)
        guard !worth.isEmpty else { return }
        do {
            let store = DestinationStore(connection: try await connection.get(), worker: instance)
            let report = try await store.report(worth, settings: settings)
            let now = ContinuousClock.now
            lock.withLock {
                for change in report.changes {
                    if change.state == "healthy" { healthyWritten[change.destination] = now } else { healthyWritten[change.destination] = nil }
                    if change.circuitOpen || change.state == "disabled" { unhealthy = true }
                }
            }
            let probes = worth.filter(\.probe)
            let disabled = report.changes.filter(\.disabled)
            metrics.destinationsChanged(
                circuitsOpened: report.changes.filter(\.circuitOpened).map(\.channel), disabled: disabled.count,
                unnotified: disabled.filter { $0.notified < max($0.integrations, 1) }.count,
                probesReached: probes.filter { $0.signal == .reached }.count, probesFailed: probes.filter { $0.signal != .reached }.count
            )
            log(report)
            if report.released > 0 || report.notices > 0 { wake.signal() }
        } catch {
            logger.warning("could not record destinations' health; their circuits may open or close later than they should", metadata: ["error": "\(error)"])
        }
    }

    private func log(_ report: DestinationStore.Report) {
        for change in report.changes {
            let destination = AlertDelivery.shown(change.destination)
            if change.disabled {
                var fields: Logger.Metadata = ["destination": "\(destination)", "reason": "\(change.disabledReason ?? "")", "integrations": "\(change.integrations)", "told": "\(change.notified)"]
                fields["enable_with"] = "alertd endpoints enable <url>"
                if change.notified < max(change.integrations, 1) {
                    logger.warning("webhook URL disabled; an integration that uses it has no email address to tell", metadata: fields)
                } else {
                    logger.warning("webhook URL disabled; its integrations' addresses are told by email", metadata: fields)
                }
            } else if change.circuitOpened {
                logger.warning("destination unavailable: circuit opened; its alerts wait, one probe at a time", metadata: [
                    "destination": "\(destination)", "channel": "\(change.channel.rawValue)",
                    "next_probe_in_s": "\(change.nextProbeAt.map { max(0, Int($0.timeIntervalSinceNow.rounded())) } ?? 0)",
                ])
            } else if change.circuitClosed {
                logger.info("destination reachable again: circuit closed; its waiting alerts flow", metadata: [
                    "destination": "\(destination)", "channel": "\(change.channel.rawValue)", "released": "\(report.released)",
                ])
            }
        }
    }

    // MARK: The sweep

    func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let connection = try await self.connection.get()
                    try await self.check(connection)
                    if self.lock.withLock({ self.present }) == true {
                        let store = DestinationStore(connection: connection, worker: self.instance)
                        let sweep = try await store.sweep(self.settings)
                        self.metrics.alertsExpired(sweep.expired)
                        if sweep.expired > 0 {
                            self.logger.warning("alerts failed: they waited longer than ALERTD_ALERT_MAX_AGE for their destination", metadata: [
                                "alerts": "\(sweep.expired)", "max_age": "\(self.settings.maxAge.settingText)",
                            ])
                        }
                        if sweep.released > 0 { self.wake.signal() }
                        let state = try await store.state(relay: self.relay)
                        self.lock.withLock { self.unhealthy = state.openCircuits > 0 || (state.byState["disabled"] ?? 0) > 0 }
                        self.metrics.setDestinations(state)
                    }
                } catch where Task.isCancelled {
                    return
                } catch {
                    self.logger.warning("could not sweep destinations' waiting alerts; trying again", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: self.settings.sweepInterval)
            }
        }
    }
}
