import CoreMetrics
import Prometheus

/// swift-metrics' factory for alertd's metrics, exported by swift-prometheus: each metric is
/// registered with its HELP text and, for histograms, its buckets (which swift-metrics' API does
/// not carry), from `MetricCatalogue`.
struct PrometheusExporter: MetricsFactory {
    let registry = PrometheusCollectorRegistry()

    /// The Prometheus text exposition (version 0.0.4) of every metric.
    func exposition() -> String {
        registry.emitToString()
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: MetricCatalogue.descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: MetricCatalogue.descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else {
            return registry.makeGauge(descriptor: MetricCatalogue.descriptor(label), labels: dimensions)
        }
        return registry.makeValueHistogram(descriptor: MetricCatalogue.descriptor(label), labels: dimensions, buckets: MetricCatalogue.buckets(label))
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: MetricCatalogue.descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(
            descriptor: MetricCatalogue.descriptor(label), labels: dimensions, buckets: MetricCatalogue.buckets(label).map { .milliseconds(Int64($0 * 1000)) }
        )
    }

    func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
    }

    func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}

/// Every metric alertd exports, with its HELP text (docs/operations.md explains each at length)
/// and a histogram's buckets.
enum MetricCatalogue {
    static let entries: [String: (help: String, buckets: [Double]?)] = [
        "alertd_build_info": ("Always 1; the label says which alertd this is.", nil),
        "alertd_start_time_seconds": ("When this process started, in seconds since the Unix epoch.", nil),
        "alertd_deliveries_total": ("Delivery attempts finished, by channel and outcome: sent, retry (temporary failure, tried again later), failed or bounced (final).", nil),
        "alertd_delivery_attempts_total": ("Delivery attempts finished, whatever their outcome, by channel.", nil),
        "alertd_final_failures_total": ("Alerts that ended failed or bounced: no more attempts will be made unless someone replays them.", nil),
        "alertd_delivery_duration_seconds": (
            "How long one delivery attempt took: the HTTP request, or the SMTP session that carried the message.",
            [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
        ),
        "alertd_alert_latency_seconds": (
            "From the alert's creation (the sync run's status change) to its delivery, for alerts sent; retries included.",
            [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]
        ),
        "alertd_alerts_in_flight": ("Alerts this instance has claimed and not yet recorded.", nil),
        "alertd_alerts_pending": ("Alerts not yet sent or given up, in the whole table (every instance's), by channel; due now or later.", nil),
        "alertd_oldest_due_alert_age_seconds": ("How long the oldest alert due now has been waiting, by channel; 0 when none is due.", nil),
        "alertd_queue_read_time_seconds": ("When alertd_alerts_pending and alertd_oldest_due_alert_age_seconds were read from the database.", nil),
        "alertd_ready": ("1 when the database answers, LISTEN is active and the SMTP server has not refused alertd's login (what /readyz says), else 0.", nil),
        "alertd_smtp_session_failures_total": ("SMTP sessions that failed, by reason: login_refused, timeout, certificate_not_trusted, no_starttls, closed_by_server, ...", nil),
        "alertd_smtp_login_refused": ("1 while the SMTP server refuses alertd's login (the last session's AUTH failed; /readyz says so too), else 0.", nil),
        "alertd_listen_active": ("1 while the LISTEN connection is up.", nil),
        "alertd_listen_reconnects_total": ("Times the LISTEN connection was lost and made again.", nil),
        "alertd_database_reconnects_total": ("Times a claiming or recording connection was lost and made again.", nil),
        "alertd_incidents_open": ("Incidents open now, in the whole database: endpoints whose last run failed and whose repeats are suppressed.", nil),
        "alertd_incident_alerts_suppressed": ("Alerts recorded suppressed (repeats, not sent) of the incidents open now.", nil),
        "alertd_incident_reminders_total": ("Reminders of open incidents this instance queued (one per channel).", nil),
        "alertd_endpoints_overdue": ("Endpoints overdue now, in the whole database: their scheduled run did not start (open incidents of kind overdue).", nil),
        "alertd_runs_stuck": ("Endpoints with a run stuck now, in the whole database: still running far longer than usual (open incidents of kind stuck).", nil),
        "alertd_silent_failures_total": ("Overdue endpoints and stuck runs this instance found, by kind (incidents it opened; their alerts are one per channel).", nil),
        "alertd_destinations": ("Destinations (webhook URLs, the SMTP relay) by state, in the whole database: healthy, failing or disabled.", nil),
        "alertd_circuits_open": ("Destinations whose circuit is open now, in the whole database: their alerts wait while one probe at a time is sent.", nil),
        "alertd_alerts_waiting_for_destination": ("Alerts waiting behind an open circuit, in the whole database.", nil),
        "alertd_circuit_opens_total": ("Circuits this instance opened, by channel (webhook: a URL; email: the relay).", nil),
        "alertd_circuit_probes_total": ("Probes of open circuits this instance sent, by result: reached (the circuit closed) or failed.", nil),
        "alertd_destinations_disabled_total": ("Webhook URLs this instance disabled: a 410 Gone, or failing too long without a success.", nil),
        "alertd_disabled_destinations_unnotified_total": ("Webhook URLs this instance disabled with an integration that had no email address to tell.", nil),
        "alertd_alerts_expired_total": ("Waiting alerts this instance failed for waiting longer than ALERTD_ALERT_MAX_AGE.", nil),
    ]

    /// The metric's name with its HELP text.
    static func descriptor(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: entries[name]?.help ?? "")
    }

    static func buckets(_ name: String) -> [Double] {
        entries[name]?.buckets ?? [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    }
}
