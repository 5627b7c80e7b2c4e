import AlertdPostgres
import Logging
import ServiceLifecycle

/// Writes outcomes in batches as they come, on the records connection. While the database is away
/// it keeps them and tries again: an attempt that is not recorded is delivered again once its
/// lease ends. At shutdown it records what is queued, giving up when the grace runs out
/// (`InFlightAlerts.mustGiveUpRecording`), and returns.
final class OutcomeRecorder: Service {
    private let outcomes: OutcomeQueue
    private let store: any OutcomeRecords
    /// Told what each batch showed of its destinations, once recorded; nil in tests without it.
    private let health: DestinationHealth?
    private let inFlight: InFlightAlerts
    private let wake: WakeSignal
    private let metrics: DispatcherMetrics
    private let logger: Logger

    init(outcomes: OutcomeQueue, store: any OutcomeRecords, health: DestinationHealth? = nil, inFlight: InFlightAlerts, wake: WakeSignal, metrics: DispatcherMetrics, logger: Logger) {
        self.outcomes = outcomes
        self.store = store
        self.health = health
        self.inFlight = inFlight
        self.wake = wake
        self.metrics = metrics
        self.logger = logger
    }

    /// The largest batch written in one statement.
    static let batchLimit = 1000

    func run() async {
        // The dispatcher has stopped when this is asked to: nothing more will come.
        let outcomes = self.outcomes
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await recordUntilClosed()
            } onCancel: {
                // Cancelled without a graceful shutdown (another service failed): stop waiting.
                outcomes.close()
            }
        } onGracefulShutdown: {
            outcomes.close()
        }
    }

    private func recordUntilClosed() async {
        while let batch = await outcomes.next(max: Self.batchLimit) {
            await record(batch)
            inFlight.finished(batch.map(\.alertID))
            metrics.setInFlight(inFlight.count)
            wake.signal()
            // After the alerts are free: one recorded for a retry may be due again at once,
            // and a claim that meets it while it still counts as in flight leaves it alone
            // until its lease ends.
            await health?.record(batch)
        }
    }

    func record(_ batch: [AttemptOutcome]) async {
        var failures = 0
        while true {
            do {
                let recorded = try await store.record(batch)
                metrics.setDatabaseError(nil)
                if recorded.count < batch.count {
                    logger.warning("leases lost before their outcome was recorded", metadata: ["alerts": "\(batch.count - recorded.count)"])
                }
                if failures > 0 { logger.info("recorded outcomes after the database came back", metadata: ["alerts": "\(batch.count)"]) }
                return
            } catch {
                failures += 1
                metrics.setDatabaseError("\(error)")
                if inFlight.mustGiveUpRecording || Task.isCancelled {
                    logger.error("outcomes not recorded at shutdown; those alerts are delivered again when their lease ends", metadata: [
                        "alerts": "\(batch.count)", "error": "\(error)",
                    ])
                    return
                }
                let delay = ClaimPlanner.databaseRetry.delay(attempt: failures)
                if failures == 1 || failures % 10 == 0 {
                    logger.warning("cannot record outcomes; keeping them and trying again", metadata: [
                        "alerts": "\(batch.count)", "error": "\(error)", "retry_in_s": "\(delay.seconds)",
                    ])
                }
                try? await Task.sleep(for: delay)
            }
        }
    }
}
