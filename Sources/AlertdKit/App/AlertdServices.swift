import AlertdPostgres
import Foundation
import Logging
import ServiceLifecycle

/// `alertd run`, put together: every long-lived part is a service in one `ServiceGroup`, which
/// shuts them down gracefully on SIGTERM or SIGINT, in the reverse of this order:
///
/// 1. the status server (/healthz, /readyz, /metrics), up first and down last;
/// 2. the database connections' closer;
/// 3. the webhook engine and the SMTP worker, the threads that deliver;
/// 4. the outcome recorder, which writes every outcome that came before it is asked to stop;
/// 5. the lease renewer, the incident sweeper (reminders), destination health's sweep, the
/// silent-failure sweeper (overdue endpoints, stuck runs) and the queue reader;
/// 6. the LISTEN connection;
/// 7. the dispatcher, which stops claiming, lets what is in flight finish and be recorded within
///    the shutdown grace, and gives back the rest.
///
/// `alertd run` and the tests both build it here.
public struct AlertdServices: Sendable {
    public let group: ServiceGroup
    /// Counts and readiness, as /metrics and /readyz show them.
    public let metrics: DispatcherMetrics

    public static func build(configuration: AlertdConfiguration, templates: AlertTemplates, logger: Logger) -> AlertdServices {
        let metrics = DispatcherMetrics()
        let wake = WakeSignal()
        let gate = SessionGate()
        let inFlight = InFlightAlerts()
        let outcomes = OutcomeQueue()
        let claims = SharedConnection(database: configuration.database, logger: logger) { connection in
            try await connection.onReconnect {
                metrics.databaseReconnected()
                wake.sessionReplaced()
            }
            try await connection.keepSessionSettings(AlertStore.sessionSettings)
        }
        let records = SharedConnection(database: configuration.database, logger: logger) { connection in
            try await connection.onReconnect { metrics.databaseReconnected() }
            try await connection.keepSessionSettings(AlertStore.sessionSettings)
        }
        let webhooks = WebhookClient(settings: configuration.webhook)
        let smtp = configuration.smtp.map(SMTPClient.init(settings:))
        let limits = MessageLimits(settings: configuration.messageLimits)
        let delivery = AlertDelivery(
            configuration: configuration, templates: templates, webhooks: webhooks, smtp: smtp, limits: limits,
            onSMTPSession: { metrics.smtpSession(failure: $0) }, logger: logger
        )

        let health = DestinationHealth(
            settings: configuration.destinations, relay: configuration.smtp?.destination, connection: records,
            instance: configuration.instance, wake: wake, metrics: metrics, logger: logger
        )

        var services: [any Service] = []
        if let address = configuration.httpAddress {
            services.append(StatusService(address: address, metrics: metrics, logger: logger))
        }
        services.append(ConnectionCloser(connections: [claims, records]))
        services.append(webhooks)
        if let smtp { services.append(smtp) }
        services.append(OutcomeRecorder(outcomes: outcomes, store: SharedAlertStore(connection: records, worker: configuration.instance), health: health, inFlight: inFlight, wake: wake, metrics: metrics, logger: logger))
        services.append(LeaseRenewer(store: SharedAlertStore(connection: claims, worker: configuration.instance), lease: configuration.lease, inFlight: inFlight, logger: logger))
        services.append(IncidentSweeper(connection: records, settings: configuration.incidents, instance: configuration.instance, wake: wake, metrics: metrics, logger: logger))
        services.append(health)
        // Always: an integration may set a limit of its own with ALERTD_MESSAGE_LIMIT off.
        services.append(HeldAlertNotices(connection: records, limits: limits, wake: wake, logger: logger))
        if configuration.webhookSigning != .shared {
            services.append(SigningSecretUpkeep(connection: records, logger: logger))
        }
        services.append(SilentFailureSweeper(connection: records, settings: configuration.silentFailures, instance: configuration.instance, wake: wake, metrics: metrics, logger: logger))
        if configuration.httpAddress != nil {
            services.append(QueueReader(connection: records, instance: configuration.instance, metrics: metrics, logger: logger))
        }
        let listener = NotificationListener(configuration: configuration, wake: wake, gate: gate, metrics: metrics, logger: logger)
        services.append(listener)
        services.append(Dispatcher(configuration: configuration, delivery: delivery, claims: claims, gate: gate, health: health, inFlight: inFlight, outcomes: outcomes, wake: wake, metrics: metrics, logger: logger))

        // Told first at shutdown (services stop in the reverse of their order).
        services.append(ShutdownDeadline(bound: shutdownBound(grace: configuration.shutdownGrace), logger: logger))

        // A listener that finds the session shared (a pooler in transaction mode) ends alertd,
        // gracefully: nothing was claimed, and every service stops as at SIGTERM.
        let configurations = services.map { service in
            ServiceGroupConfiguration.ServiceConfiguration(
                service: service,
                failureTerminationBehavior: service as AnyObject === listener ? .gracefullyShutdownGroup : .cancelGroup
            )
        }
        var groupConfiguration = ServiceGroupConfiguration(services: configurations, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // The dispatcher takes the grace; the others need moments. Past this, everything is cancelled.
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownGrace + shutdownMargin
        return AlertdServices(group: ServiceGroup(configuration: groupConfiguration), metrics: metrics)
    }

    /// A parent may have started alertd with SIGTERM and SIGINT blocked (the mask survives exec):
    /// they would never reach the service group.
    public static func unblockShutdownSignals() {
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, SIGTERM)
        sigaddset(&mask, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &mask, nil)
    }

    /// Time allowed past the shutdown grace for the services after the dispatcher (recording what
    /// came last, closing connections) before they are cancelled.
    static let shutdownMargin: Duration = .seconds(3)

    /// How long after SIGTERM alertd is gone at the latest, whatever the database or a pooler
    /// does: the grace, the margin, a cancelled statement's wait before its connection is
    /// abandoned (`PostgresSession.abandonAfter`, 2 s), and a second to spare. docs/operations.md
    /// and the deploy recipes' stop timeouts rely on it.
    public static func shutdownBound(grace: Duration) -> Duration {
        grace + shutdownMargin + .seconds(3)
    }
}

/// Ends the process when a shutdown outlasts its bound: a call that does not end when it is
/// cancelled (a C library blocked in the kernel, say) must not keep alertd past its supervisor's
/// patience, which would then SIGKILL it without a word.
struct ShutdownDeadline: Service {
    let bound: Duration
    let logger: Logger

    func run() async {
        // Returns at graceful shutdown; throws if the group is cancelled instead. Either way,
        // the clock starts.
        try? await gracefulShutdown()
        let bound = self.bound
        let logger = self.logger
        let thread = Thread {
            Thread.sleep(forTimeInterval: bound.seconds)
            logger.critical("shutdown outlasted its bound; exiting now. Alerts still in flight are delivered again once their leases end", metadata: [
                "bound_s": "\(bound.seconds)",
            ])
            fflush(nil)
            _exit(1)
        }
        thread.start()
    }
}

/// Closes the database connections once every service that uses them has stopped.
struct ConnectionCloser: Service {
    let connections: [SharedConnection]

    func run() async {
        try? await gracefulShutdown()
        for connection in connections { await connection.close() }
    }
}
