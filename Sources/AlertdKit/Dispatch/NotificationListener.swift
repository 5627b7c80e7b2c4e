import AlertdPostgres
import Logging
import ServiceLifecycle

/// LISTENs on channel `alertd` on a connection of its own and wakes the dispatcher on every
/// notification and (re)connection. Notifications are only hints: the alert rows are the truth,
/// so a missed one delays an alert by one poll at most.
final class NotificationListener: Service {
    private let listener: PostgresListener
    private let wake: WakeSignal
    private let metrics: DispatcherMetrics

    init(configuration: AlertdConfiguration, wake: WakeSignal, metrics: DispatcherMetrics, logger: Logger) {
        listener = PostgresListener(
            connectionString: configuration.database, channels: ["alertd"],
            healthCheckInterval: configuration.listenCheckInterval,
            healthCheckTimeout: min(configuration.listenCheckInterval, .seconds(10)),
            logger: logger
        )
        self.wake = wake
        self.metrics = metrics
    }

    func run() async throws {
        let wake = self.wake
        let metrics = self.metrics
        try await cancelWhenGracefulShutdown {
            try await self.listener.run { events in
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
        }
    }
}
