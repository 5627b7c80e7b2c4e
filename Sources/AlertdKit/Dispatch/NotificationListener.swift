import AlertdPostgres
import Logging
import ServiceLifecycle

/// LISTENs on channel `alertd` on a connection of its own and wakes the dispatcher on every
/// notification and (re)connection. Notifications are only hints: the alert rows are the truth,
/// so a missed one delays an alert by one poll at most.
///
/// Its connection is also the proof that alertd's sessions are its own: after every LISTEN a
/// notification to itself must arrive (`PostgresSessionCheck`). Until the first one has, the
/// dispatcher claims nothing (`SessionGate`); if one never does (a pooler in transaction mode),
/// `alertd run` stops with an error that names the cause and the fix.
final class NotificationListener: Service {
    private let listener: PostgresListener
    private let wake: WakeSignal
    private let gate: SessionGate
    private let metrics: DispatcherMetrics

    init(configuration: AlertdConfiguration, wake: WakeSignal, gate: SessionGate, metrics: DispatcherMetrics, logger: Logger) {
        listener = PostgresListener(
            connectionString: configuration.database, channels: ["alertd"],
            healthCheckInterval: configuration.listenCheckInterval,
            healthCheckTimeout: min(configuration.listenCheckInterval, .seconds(10)),
            logger: logger
        )
        self.wake = wake
        self.gate = gate
        self.metrics = metrics
    }

    func run() async throws {
        let wake = self.wake
        let gate = self.gate
        let metrics = self.metrics
        try await cancelWhenGracefulShutdown {
            try await self.listener.run { events in
                for await event in events {
                    switch event {
                    case .disconnected:
                        metrics.setListening(false)
                        continue
                    case .listening(let reconnected):
                        gate.open()
                        metrics.setListening(true, reconnected: reconnected)
                    case .notification:
                        break
                    case .sessionNotOwn(let message):
                        gate.refuse(message)
                        metrics.setListening(false)
                        metrics.setDatabaseError(message)
                        wake.signal()
                        throw AlertdError(.sessionNotOwn, message)
                    }
                    wake.notify()
                }
            }
        }
    }
}
