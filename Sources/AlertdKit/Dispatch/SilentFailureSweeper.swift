import AlertdPostgres
import Logging
import ServiceLifecycle

/// Silent failures' part of `alertd run`: every sweep interval, looks for endpoints whose
/// scheduled run did not start and runs stuck in `running`, opens their incidents with their
/// news, closes those that ended with a notice, and reads the figures /metrics shows. What it
/// queues are ordinary pending alerts: the dispatcher is woken to deliver them.
final class SilentFailureSweeper: Service {
    private let connection: SharedConnection
    private let settings: SilentFailureSettings
    private let instance: String
    private let wake: WakeSignal
    private let metrics: DispatcherMetrics
    private let logger: Logger

    /// Incidents opened or closed by one statement, at most; more take several statements of
    /// one sweep.
    static let batch = 200

    init(connection: SharedConnection, settings: SilentFailureSettings, instance: String, wake: WakeSignal, metrics: DispatcherMetrics, logger: Logger) {
        self.connection = connection
        self.settings = settings
        self.instance = instance
        self.wake = wake
        self.metrics = metrics
        self.logger = logger
    }

    func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let store = SilentFailureStore(connection: try await self.connection.get(), worker: self.instance)
                    try await self.sweep(store)
                    let state = try await store.state()
                    self.metrics.setSilentFailures(overdue: state.overdue, stuck: state.stuck)
                } catch where Task.isCancelled {
                    return
                } catch let error as PostgresError where ["42P01", "42703", "42883"].contains(error.sqlState) {
                    // undefined_table, undefined_column or undefined_function: this alertd is
                    // newer than the schema.
                    self.logger.error("the database lacks alertd's silent failures (migration 20251129_alertd_silent_failures): apply it with alertd db migrate; overdue endpoints and stuck runs go unnoticed meanwhile", metadata: ["error": "\(error)"])
                } catch {
                    self.logger.warning("could not look for overdue endpoints and stuck runs; trying again at the next sweep", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: self.settings.sweepInterval)
            }
        }
    }

    /// Sweeps until a sweep finds less than a batch of anything.
    private func sweep(_ store: SilentFailureStore) async throws {
        while !Task.isCancelled {
            let sweep = try await store.sweep(settings, limit: Self.batch)
            guard sweep.swept else {
                logger.debug("another instance is sweeping for silent failures")
                return
            }
            metrics.silentFailuresFound(overdue: sweep.overdue.incidents, stuck: sweep.stuck.incidents)
            if sweep.overdue.incidents > 0 {
                logger.notice("endpoints overdue: their scheduled run did not start", metadata: ["endpoints": "\(sweep.overdue.incidents)", "alerts": "\(sweep.overdue.alerts)"])
            }
            if sweep.stuck.incidents > 0 {
                logger.notice("runs stuck: still running far longer than usual", metadata: ["runs": "\(sweep.stuck.incidents)", "alerts": "\(sweep.stuck.alerts)"])
            }
            if sweep.resumed.incidents > 0 {
                logger.info("overdue endpoints ran again", metadata: ["endpoints": "\(sweep.resumed.incidents)", "notices": "\(sweep.resumed.alerts)"])
            }
            if sweep.stuckEnded.incidents > 0 {
                logger.info("stuck runs ended", metadata: ["runs": "\(sweep.stuckEnded.incidents)", "notices": "\(sweep.stuckEnded.alerts)"])
            }
            if sweep.queuedAlerts > 0 {
                wake.signal()
            }
            let most = [sweep.overdue, sweep.stuck, sweep.resumed, sweep.stuckEnded].map(\.incidents).max() ?? 0
            if most < Self.batch { return }
        }
    }
}
