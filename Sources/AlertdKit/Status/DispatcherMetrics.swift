import Foundation

/// What `alertd run` counts while it works, and whether it is ready: served at /metrics in the
/// Prometheus text format and at /readyz (docs/operations.md says what each metric means).
///
/// Every method is quick and takes one lock; the status server's thread reads while the
/// dispatcher's tasks write.
public final class DispatcherMetrics: @unchecked Sendable {
    public static let channels = Channel.allCases.map(\.rawValue)
    static let outcomes: [AttemptOutcome.Result] = [.sent, .retry, .failed, .bounced]
    /// Upper bounds, in seconds, of the histograms' buckets.
    static let durationBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
    static let latencyBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]

    struct Histogram {
        let bounds: [Double]
        var counts: [Int]
        var sum = 0.0
        var count = 0

        init(bounds: [Double]) {
            self.bounds = bounds
            counts = Array(repeating: 0, count: bounds.count)
        }

        mutating func observe(_ value: Double) {
            if let bucket = bounds.firstIndex(where: { value <= $0 }) { counts[bucket] += 1 }
            sum += value
            count += 1
        }
    }

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

        public var problems: [String] {
            var problems: [String] = []
            if stopping { problems.append("alertd is stopping") }
            if let databaseError { problems.append("the database: \(databaseError)") }
            if let smtpLoginRefused { problems.append("email: \(smtpLoginRefused)") }
            if !listening { problems.append("LISTEN alertd is not active (connecting or reconnecting)") }
            return problems
        }

        public var isReady: Bool { problems.isEmpty }
    }

    // Invariant: every property below is read and written with `lock` held.
    private let lock = NSLock()
    private var deliveries: [String: Int] = [:]
    private var finalFailures: [String: Int] = [:]
    private var durations: [String: Histogram] = [:]
    private var latencies: [String: Histogram] = [:]
    private var inFlight = 0
    private var queue: QueueState?
    private var queueReadAt: Date?
    private var readiness = Readiness(listening: false, databaseError: "not connected yet", stopping: false)
    private var smtpSessionFailures: [SMTPSessionFailure.Reason: Int] = [:]
    private var listenReconnects = 0
    private var databaseReconnects = 0
    private let startedAt = Date()

    public init() {
        for channel in Self.channels {
            durations[channel] = Histogram(bounds: Self.durationBuckets)
            latencies[channel] = Histogram(bounds: Self.latencyBuckets)
        }
    }

    // MARK: What the dispatcher reports

    /// One finished attempt of an alert on `channel`, created at `createdAt`.
    public func delivered(_ outcome: AttemptOutcome, channel: Channel, createdAt: Date?) {
        let channel = channel.rawValue
        lock.withLock {
            deliveries["\(channel)/\(outcome.result.rawValue)", default: 0] += 1
            if outcome.result == .failed || outcome.result == .bounced { finalFailures[channel, default: 0] += 1 }
            durations[channel, default: Histogram(bounds: Self.durationBuckets)].observe(outcome.duration.seconds)
            if outcome.result == .sent, let createdAt {
                let latency = max(0, outcome.startedAt.addingTimeInterval(outcome.duration.seconds).timeIntervalSince(createdAt))
                latencies[channel, default: Histogram(bounds: Self.latencyBuckets)].observe(latency)
            }
        }
    }

    /// How an SMTP session ended: nil when it delivered what it carried.
    public func smtpSession(failure: SMTPSessionFailure?) {
        lock.withLock {
            if let failure { smtpSessionFailures[failure.reason, default: 0] += 1 }
            if failure?.reason == .loginRefused {
                readiness.smtpLoginRefused = failure?.message
            } else if failure == nil {
                readiness.smtpLoginRefused = nil
            }
        }
    }

    public func setInFlight(_ count: Int) {
        lock.withLock { inFlight = count }
    }

    public func setQueue(_ state: QueueState, readAt: Date = Date()) {
        lock.withLock {
            queue = state
            queueReadAt = readAt
        }
    }

    public func setListening(_ listening: Bool, reconnected: Bool = false) {
        lock.withLock {
            readiness.listening = listening
            if reconnected { listenReconnects += 1 }
        }
    }

    /// The outcome of the dispatcher's last database call: nil when it succeeded.
    public func setDatabaseError(_ error: String?) {
        lock.withLock { readiness.databaseError = error }
    }

    public func databaseReconnected() {
        lock.withLock { databaseReconnects += 1 }
    }

    public func setStopping() {
        lock.withLock { readiness.stopping = true }
    }

    public var currentReadiness: Readiness {
        lock.withLock { readiness }
    }

    // MARK: Serving

    /// The status server's answers: /healthz, /readyz and /metrics.
    public func respond(to path: String) -> StatusServer.Response {
        switch path {
        case "/healthz", "/livez":
            return StatusServer.Response(status: 200, body: "ok\n")
        case "/readyz":
            let readiness = currentReadiness
            return readiness.isReady
                ? StatusServer.Response(status: 200, body: "ready\n")
                : StatusServer.Response(status: 503, body: "not ready: " + readiness.problems.joined(separator: "; ") + "\n")
        case "/metrics":
            return StatusServer.Response(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: prometheusText())
        case "/":
            return StatusServer.Response(status: 200, body: "alertd \(AlertdVersion.string): /healthz /readyz /metrics\n")
        default:
            return StatusServer.Response(status: 404, body: "not found; try /healthz, /readyz or /metrics\n")
        }
    }

    /// Every metric in the Prometheus text exposition format (version 0.0.4).
    public func prometheusText() -> String {
        lock.withLock {
            var text = PrometheusText()
            text.family("alertd_build_info", type: "gauge", help: "Always 1; the label says which alertd this is.")
            text.sample("alertd_build_info", ["version": AlertdVersion.string], 1)
            text.family("alertd_start_time_seconds", type: "gauge", help: "When this process started, in seconds since the Unix epoch.")
            text.sample("alertd_start_time_seconds", [:], startedAt.timeIntervalSince1970)

            text.family("alertd_deliveries_total", type: "counter", help: "Delivery attempts finished, by channel and outcome: sent, retry (temporary failure, tried again later), failed or bounced (final).")
            for channel in Self.channels {
                for outcome in Self.outcomes {
                    text.sample("alertd_deliveries_total", ["channel": channel, "outcome": outcome.rawValue], Double(deliveries["\(channel)/\(outcome.rawValue)", default: 0]))
                }
            }
            text.family("alertd_delivery_attempts_total", type: "counter", help: "Delivery attempts finished, whatever their outcome, by channel.")
            for channel in Self.channels {
                let attempts = Self.outcomes.reduce(0) { $0 + deliveries["\(channel)/\($1.rawValue)", default: 0] }
                text.sample("alertd_delivery_attempts_total", ["channel": channel], Double(attempts))
            }
            text.family("alertd_final_failures_total", type: "counter", help: "Alerts that ended failed or bounced: no more attempts will be made unless someone replays them.")
            for channel in Self.channels {
                text.sample("alertd_final_failures_total", ["channel": channel], Double(finalFailures[channel, default: 0]))
            }
            text.family("alertd_delivery_duration_seconds", type: "histogram", help: "How long one delivery attempt took: the HTTP request, or the SMTP session that carried the message.")
            for channel in Self.channels { text.histogram("alertd_delivery_duration_seconds", ["channel": channel], durations[channel] ?? Histogram(bounds: Self.durationBuckets)) }
            text.family("alertd_alert_latency_seconds", type: "histogram", help: "From the alert's creation (the sync run's status change) to its delivery, for alerts sent; retries included.")
            for channel in Self.channels { text.histogram("alertd_alert_latency_seconds", ["channel": channel], latencies[channel] ?? Histogram(bounds: Self.latencyBuckets)) }

            text.family("alertd_alerts_in_flight", type: "gauge", help: "Alerts this instance has claimed and not yet recorded.")
            text.sample("alertd_alerts_in_flight", [:], Double(inFlight))
            if let queue {
                text.family("alertd_alerts_pending", type: "gauge", help: "Alerts not yet sent or given up, in the whole table (every instance's), by channel; due now or later.")
                for channel in Self.channels { text.sample("alertd_alerts_pending", ["channel": channel], Double(queue.pending[channel, default: 0])) }
                text.family("alertd_oldest_due_alert_age_seconds", type: "gauge", help: "How long the oldest alert due now has been waiting, by channel; 0 when none is due.")
                for channel in Self.channels { text.sample("alertd_oldest_due_alert_age_seconds", ["channel": channel], queue.oldestDueAge[channel, default: 0]) }
                if let queueReadAt {
                    text.family("alertd_queue_read_time_seconds", type: "gauge", help: "When alertd_alerts_pending and alertd_oldest_due_alert_age_seconds were read from the database.")
                    text.sample("alertd_queue_read_time_seconds", [:], queueReadAt.timeIntervalSince1970)
                }
            }
            text.family("alertd_ready", type: "gauge", help: "1 when the database answers, LISTEN is active and the SMTP server has not refused alertd's login (what /readyz says), else 0.")
            text.sample("alertd_ready", [:], readiness.isReady ? 1 : 0)
            text.family("alertd_smtp_session_failures_total", type: "counter", help: "SMTP sessions that failed, by reason: login_refused, timeout, certificate_not_trusted, no_starttls, closed_by_server, ...")
            for reason in SMTPSessionFailure.Reason.allCases {
                text.sample("alertd_smtp_session_failures_total", ["reason": reason.rawValue], Double(smtpSessionFailures[reason, default: 0]))
            }
            text.family("alertd_smtp_login_refused", type: "gauge", help: "1 while the SMTP server refuses alertd's login (the last session's AUTH failed; /readyz says so too), else 0.")
            text.sample("alertd_smtp_login_refused", [:], readiness.smtpLoginRefused == nil ? 0 : 1)
            text.family("alertd_listen_active", type: "gauge", help: "1 while the LISTEN connection is up.")
            text.sample("alertd_listen_active", [:], readiness.listening ? 1 : 0)
            text.family("alertd_listen_reconnects_total", type: "counter", help: "Times the LISTEN connection was lost and made again.")
            text.sample("alertd_listen_reconnects_total", [:], Double(listenReconnects))
            text.family("alertd_database_reconnects_total", type: "counter", help: "Times a claiming or recording connection was lost and made again.")
            text.sample("alertd_database_reconnects_total", [:], Double(databaseReconnects))
            return text.output
        }
    }
}

/// Writes the Prometheus text format: families with HELP and TYPE, samples with escaped labels.
struct PrometheusText {
    private(set) var output = ""

    mutating func family(_ name: String, type: String, help: String) {
        output += "# HELP \(name) \(help.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n"))\n"
        output += "# TYPE \(name) \(type)\n"
    }

    mutating func sample(_ name: String, _ labels: [String: String], _ value: Double) {
        output += name + Self.labels(labels) + " " + Self.format(value) + "\n"
    }

    mutating func histogram(_ name: String, _ labels: [String: String], _ histogram: DispatcherMetrics.Histogram) {
        var cumulative = 0
        for (bound, count) in zip(histogram.bounds, histogram.counts) {
            cumulative += count
            sample(name + "_bucket", labels.merging(["le": Self.format(bound)]) { $1 }, Double(cumulative))
        }
        sample(name + "_bucket", labels.merging(["le": "+Inf"]) { $1 }, Double(histogram.count))
        sample(name + "_sum", labels, histogram.sum)
        sample(name + "_count", labels, Double(histogram.count))
    }

    static func labels(_ labels: [String: String]) -> String {
        guard !labels.isEmpty else { return "" }
        let pairs = labels.sorted { $0.key < $1.key }.map { key, value in
            let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
            return "\(key)=\"\(escaped)\""
        }
        return "{" + pairs.joined(separator: ",") + "}"
    }

    static func format(_ value: Double) -> String {
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value.isNaN { return "NaN" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}
