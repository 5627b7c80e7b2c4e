import CoreMetrics
import Foundation

/// What `alertd run` counts while it works, and whether it is ready: recorded through the
/// swift-metrics API, exported by swift-prometheus at /metrics, and at /readyz
/// (docs/operations.md says what each metric means).
///
/// Every method is quick; the status server's thread reads while the dispatcher's tasks write.
public final class DispatcherMetrics: @unchecked Sendable {
    /// The queue as last read from the database.
    public struct QueueState: Sendable, Equatable {
        public var pending: [String: Int]
        /// Seconds since the oldest alert that is due now fell due, per channel; 0 with none due.
        public var oldestDueAge: [String: Double]

        public init(pending: [String: Int], oldestDueAge: [String: Double]) {
            self.pending = pending
            self.oldestDueAge = oldestDueAge
        }
    }

    /// Why alertd is not ready, or nil when it is.
    public struct Readiness: Sendable, Equatable {
        public var listening: Bool
        public var databaseError: String?
        public var stopping: Bool
        /// Why the SMTP server refused alertd's login in the last session, until one logs in.
        public var smtpLoginRefused: String?
        /// Why email waits: the SMTP relay's circuit is open (destination health).
        public var relayUnavailable: String?

        public var problems: [String] {
            var problems: [String] = []
            if stopping { problems.append("alertd is stopping") }
            if let databaseError { problems.append("the database: \(databaseError)") }
            if let smtpLoginRefused { problems.append("email: \(smtpLoginRefused)") }
            if let relayUnavailable, smtpLoginRefused == nil { problems.append("email: \(relayUnavailable)") }
            if !listening { problems.append("LISTEN alertd is not active (connecting or reconnecting)") }
            return problems
        }

        public var isReady: Bool { problems.isEmpty }
    }

    /// Each channel's counters and histograms.
    private struct ChannelMetrics {
        let deliveries: [AttemptOutcome.Result: Counter]
        let attempts: Counter
        let finalFailures: Counter
        let duration: Recorder
        let latency: Recorder

        init(_ channel: Channel, factory: any MetricsFactory) {
            let label = [("channel", channel.rawValue)]
            deliveries = Dictionary(uniqueKeysWithValues: AttemptOutcome.Result.allCases.map {
                ($0, Counter(label: "alertd_deliveries_total", dimensions: label + [("outcome", $0.rawValue)], factory: factory))
            })
            attempts = Counter(label: "alertd_delivery_attempts_total", dimensions: label, factory: factory)
            finalFailures = Counter(label: "alertd_final_failures_total", dimensions: label, factory: factory)
            duration = Recorder(label: "alertd_delivery_duration_seconds", dimensions: label, aggregate: true, factory: factory)
            latency = Recorder(label: "alertd_alert_latency_seconds", dimensions: label, aggregate: true, factory: factory)
        }
    }

    /// The queue's gauges, made when the queue is first read (not served before).
    private struct QueueMetrics {
        let pending: [Channel: Gauge]
        let oldestDueAge: [Channel: Gauge]
        let readAt: Gauge

        init(factory: any MetricsFactory) {
            pending = Dictionary(uniqueKeysWithValues: Channel.allCases.map {
                ($0, Gauge(label: "alertd_alerts_pending", dimensions: [("channel", $0.rawValue)], factory: factory))
            })
            oldestDueAge = Dictionary(uniqueKeysWithValues: Channel.allCases.map {
                ($0, Gauge(label: "alertd_oldest_due_alert_age_seconds", dimensions: [("channel", $0.rawValue)], factory: factory))
            })
            readAt = Gauge(label: "alertd_queue_read_time_seconds", factory: factory)
        }
    }

    private let exporter = PrometheusExporter()
    private let channels: [Channel: ChannelMetrics]
    private let inFlight: Gauge
    private let ready: Gauge
    private let listenActive: Gauge
    private let listenReconnects: Counter
    private let databaseReconnects: Counter
    private let smtpSessionFailures: [SMTPSessionFailure.Reason: Counter]
    private let smtpLoginRefused: Gauge
    private let incidentsOpen: Gauge
    private let incidentAlertsSuppressed: Gauge
    private let remindersQueued: Counter
    private let endpointsOverdue: Gauge
    private let runsStuck: Gauge
    private let silentFailuresOpened: [String: Counter]
    private let destinations: [String: Gauge]
    private let circuitsOpen: Gauge
    private let alertsWaiting: Gauge
    private let circuitOpens: [Channel: Counter]
    private let probes: [String: Counter]
    private let destinationsDisabled: Counter
    private let disabledUnnotified: Counter
    private let expiredAlerts: Counter
    // Invariant: `readiness` and `queue` are read and written with `lock` held.
    private let lock = NSLock()
    private var readiness = Readiness(listening: false, databaseError: "not connected yet", stopping: false)
    private var queue: QueueMetrics?

    public init() {
        let factory = exporter
        Gauge(label: "alertd_build_info", dimensions: [("version", AlertdVersion.string)], factory: factory).record(1)
        Gauge(label: "alertd_start_time_seconds", factory: factory).record(Date().timeIntervalSince1970)
        channels = Dictionary(uniqueKeysWithValues: Channel.allCases.map { ($0, ChannelMetrics($0, factory: factory)) })
        inFlight = Gauge(label: "alertd_alerts_in_flight", factory: factory)
        ready = Gauge(label: "alertd_ready", factory: factory)
        smtpSessionFailures = Dictionary(uniqueKeysWithValues: SMTPSessionFailure.Reason.allCases.map {
            ($0, Counter(label: "alertd_smtp_session_failures_total", dimensions: [("reason", $0.rawValue)], factory: factory))
        })
        smtpLoginRefused = Gauge(label: "alertd_smtp_login_refused", factory: factory)
        listenActive = Gauge(label: "alertd_listen_active", factory: factory)
        listenReconnects = Counter(label: "alertd_listen_reconnects_total", factory: factory)
        databaseReconnects = Counter(label: "alertd_database_reconnects_total", factory: factory)
        incidentsOpen = Gauge(label: "alertd_incidents_open", factory: factory)
        incidentAlertsSuppressed = Gauge(label: "alertd_incident_alerts_suppressed", factory: factory)
        remindersQueued = Counter(label: "alertd_incident_reminders_total", factory: factory)
        endpointsOverdue = Gauge(label: "alertd_endpoints_overdue", factory: factory)
        runsStuck = Gauge(label: "alertd_runs_stuck", factory: factory)
        silentFailuresOpened = Dictionary(uniqueKeysWithValues: ["overdue", "stuck"].map {
            ($0, Counter(label: "alertd_silent_failures_total", dimensions: [("kind", $0)], factory: factory))
        })
        destinations = Dictionary(uniqueKeysWithValues: ["healthy", "failing", "disabled"].map {
            ($0, Gauge(label: "alertd_destinations", dimensions: [("state", $0)], factory: factory))
        })
        circuitsOpen = Gauge(label: "alertd_circuits_open", factory: factory)
        alertsWaiting = Gauge(label: "alertd_alerts_waiting_for_destination", factory: factory)
        circuitOpens = Dictionary(uniqueKeysWithValues: Channel.allCases.map {
            ($0, Counter(label: "alertd_circuit_opens_total", dimensions: [("channel", $0.rawValue)], factory: factory))
        })
        probes = Dictionary(uniqueKeysWithValues: ["reached", "failed"].map {
            ($0, Counter(label: "alertd_circuit_probes_total", dimensions: [("result", $0)], factory: factory))
        })
        destinationsDisabled = Counter(label: "alertd_destinations_disabled_total", factory: factory)
        disabledUnnotified = Counter(label: "alertd_disabled_destinations_unnotified_total", factory: factory)
        expiredAlerts = Counter(label: "alertd_alerts_expired_total", factory: factory)
        for gauge in destinations.values { gauge.record(0) }
        circuitsOpen.record(0)
        alertsWaiting.record(0)
        inFlight.record(0)
        publishReadiness(readiness)
    }

    // MARK: What the dispatcher reports

    /// One finished attempt of an alert on `channel`, created at `createdAt`.
    public func delivered(_ outcome: AttemptOutcome, channel: Channel, createdAt: Date?) {
        guard let metrics = channels[channel] else { return }
        metrics.deliveries[outcome.result]?.increment()
        guard outcome.result != .held else { return }
        metrics.attempts.increment()
        if outcome.result == .failed || outcome.result == .bounced { metrics.finalFailures.increment() }
        metrics.duration.record(outcome.duration.seconds)
        if outcome.result == .sent, let createdAt {
            metrics.latency.record(max(0, outcome.startedAt.addingTimeInterval(outcome.duration.seconds).timeIntervalSince(createdAt)))
        }
    }

    /// How an SMTP session ended: nil when it delivered what it carried.
    public func smtpSession(failure: SMTPSessionFailure?) {
        if let failure { smtpSessionFailures[failure.reason]?.increment() }
        updateReadiness { readiness in
            if failure?.reason == .loginRefused {
                readiness.smtpLoginRefused = failure?.message
            } else if failure == nil {
                readiness.smtpLoginRefused = nil
            }
        }
    }

    public func setInFlight(_ count: Int) {
        inFlight.record(count)
    }

    public func setQueue(_ state: QueueState, readAt: Date = Date()) {
        let queue = lock.withLock {
            if let queue = self.queue { return queue }
            let queue = QueueMetrics(factory: exporter)
            self.queue = queue
            return queue
        }
        for channel in Channel.allCases {
            queue.pending[channel]?.record(state.pending[channel.rawValue, default: 0])
            queue.oldestDueAge[channel]?.record(state.oldestDueAge[channel.rawValue, default: 0])
        }
        queue.readAt.record(readAt.timeIntervalSince1970)
    }

    /// Open incidents and their suppressed alerts, as the incident sweep last read them.
    public func setIncidents(open: Int, suppressedAlerts: Int) {
        incidentsOpen.record(open)
        incidentAlertsSuppressed.record(suppressedAlerts)
    }

    /// Overdue endpoints and stuck runs open now, in the whole database.
    public func setSilentFailures(overdue: Int, stuck: Int) {
        endpointsOverdue.record(overdue)
        runsStuck.record(stuck)
    }

    /// Overdue endpoints and stuck runs this instance found (incidents it opened).
    public func silentFailuresFound(overdue: Int, stuck: Int) {
        if overdue > 0 { silentFailuresOpened["overdue"]?.increment(by: overdue) }
        if stuck > 0 { silentFailuresOpened["stuck"]?.increment(by: stuck) }
    }

    /// Destination health's figures, as last read from the database.
    public struct DestinationState: Sendable, Equatable {
        public var byState: [String: Int] = ["healthy": 0, "failing": 0, "disabled": 0]
        public var openCircuits = 0
        public var waiting = 0
        /// When the relay's circuit is open: which, since when and its last error, in words.
        public var relay: String?

        public init() {}
    }

    /// Destinations by state, open circuits, and the alerts waiting for one (the table's); and
    /// whether the relay's circuit is open, which /readyz says.
    public func setDestinations(_ state: DestinationState) {
        updateReadiness { $0.relayUnavailable = state.relay.map { "the SMTP relay is unavailable (\($0)); email alerts wait behind its circuit, one probe at a time" } }
        for (name, gauge) in destinations { gauge.record(state.byState[name] ?? 0) }
        circuitsOpen.record(state.openCircuits)
        alertsWaiting.record(state.waiting)
    }

    /// What this instance's outcomes changed: circuits opened, probes, URLs disabled (and those
    /// whose integrations had no address to tell).
    public func destinationsChanged(circuitsOpened: [Channel], disabled: Int, unnotified: Int, probesReached: Int, probesFailed: Int) {
        for channel in circuitsOpened { circuitOpens[channel]?.increment() }
        if disabled > 0 { destinationsDisabled.increment(by: disabled) }
        if unnotified > 0 { disabledUnnotified.increment(by: unnotified) }
        if probesReached > 0 { probes["reached"]?.increment(by: probesReached) }
        if probesFailed > 0 { probes["failed"]?.increment(by: probesFailed) }
    }

    /// Waiting alerts this instance failed for waiting longer than ALERTD_ALERT_MAX_AGE.
    public func alertsExpired(_ count: Int) {
        if count > 0 { expiredAlerts.increment(by: count) }
    }

    /// Reminders this instance queued.
    public func remindersQueued(_ count: Int) {
        remindersQueued.increment(by: count)
    }

    public func setListening(_ listening: Bool, reconnected: Bool = false) {
        if reconnected { listenReconnects.increment() }
        updateReadiness { $0.listening = listening }
    }

    /// The outcome of the dispatcher's last database call: nil when it succeeded.
    public func setDatabaseError(_ error: String?) {
        updateReadiness { $0.databaseError = error }
    }

    public func databaseReconnected() {
        databaseReconnects.increment()
    }

    public func setStopping() {
        updateReadiness { $0.stopping = true }
    }

    /// Changes the readiness and the gauges that show it, together.
    private func updateReadiness(_ change: (inout Readiness) -> Void) {
        lock.withLock {
            change(&readiness)
            publishReadiness(readiness)
        }
    }

    private func publishReadiness(_ readiness: Readiness) {
        ready.record(readiness.isReady ? 1 : 0)
        listenActive.record(readiness.listening ? 1 : 0)
        smtpLoginRefused.record(readiness.smtpLoginRefused == nil ? 0 : 1)
    }

    public var currentReadiness: Readiness {
        lock.withLock { readiness }
    }

    /// Every metric in the Prometheus text exposition format (version 0.0.4).
    public func prometheusText() -> String {
        exporter.exposition()
    }
}
