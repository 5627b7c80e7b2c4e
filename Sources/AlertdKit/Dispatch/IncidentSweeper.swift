import AlertdPostgres
import Logging
import ServiceLifecycle

/// Incidents' part of `alertd run`: writes this instance's defaults (`ALERTD_INCIDENTS`,
/// `ALERTD_INCIDENT_REPEAT_INTERVAL`) to `alertd_settings` at start, then every sweep interval
/// queues the reminders due and reads the figures /metrics shows. Reminders are ordinary pending
/// alerts: the dispatcher is woken to deliver them.
final class IncidentSweeper: Service {
    private let connection: SharedConnection
    private let settings: IncidentSettings
    private let instance: String
    private let wake: WakeSignal
    private let metrics: DispatcherMetrics
    private let logger: Logger

    /// Incidents reminded in one statement, at most; a longer list takes several sweeps' worth
    /// of statements, back to back.
    static let batch = 200

    init(connection: SharedConnection, settings: IncidentSettings, instance: String, wake: WakeSignal, metrics: DispatcherMetrics, logger: Logger) {
        self.connection = connection
        self.settings = settings
        self.instance = instance
        self.wake = wake
        self.metrics = metrics
        self.logger = logger
    }

    func run() async {
        await cancelWhenGracefulShutdown {
            var published = false
            while !Task.isCancelled {
                do {
                    let store = IncidentStore(connection: try await self.connection.get(), worker: self.instance)
                    if !published {
                        try await self.publish(store)
                        published = true
                    }
                    var queued = 0
                    while true {
                        let reminders = try await store.queueReminders(limit: Self.batch)
                        queued += reminders
                        if reminders == 0 || Task.isCancelled { break }
                    }
                    if queued > 0 {
                        self.metrics.remindersQueued(queued)
                        self.logger.info("queued reminders of incidents still open", metadata: ["reminders": "\(queued)"])
                        self.wake.signal()
                    }
                    let state = try await store.state()
                    self.metrics.setIncidents(open: state.open, suppressedAlerts: state.suppressedAlerts)
                } catch where Task.isCancelled {
                    return
                } catch let error as PostgresError where error.sqlState == "42P01" || error.sqlState == "42703" {
                    // undefined_table or undefined_column: this alertd is newer than the schema.
                    self.logger.error("the database lacks alertd's incidents (migrations 20251127_alertd_incidents, 20251128_alertd_incident_groups): apply them with alertd db migrate; alerts wait in the table meanwhile", metadata: ["error": "\(error)"])
                } catch {
                    self.logger.warning("could not sweep incidents; trying again at the next sweep", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: self.settings.sweepInterval)
            }
        }
    }

    private func publish(_ store: IncidentStore) async throws {
        let now: Logger.Metadata = [
            "incidents": "\(settings.enabled ? "on" : "off")", "repeat_interval": "\(settings.repeatInterval.map(\.settingText) ?? "off")",
            "group_wait": "\(settings.groupWait.settingText)", "group_interval": "\(settings.groupInterval == .zero ? "off" : settings.groupInterval.settingText)",
        ]
        if let before = try await store.publish(settings) {
            logger.notice("incident defaults written to alertd_settings", metadata: now.merging([
                "were": "\(before.enabled ? "on" : "off"), repeat \(before.repeatInterval.map(\.settingText) ?? "off"), group wait \(before.groupWait.settingText), group interval \(before.groupInterval == .zero ? "off" : before.groupInterval.settingText)",
                "written_before_by": "\(before.updatedBy ?? "the migration")",
            ]) { $1 })
        } else {
            logger.debug("incident defaults unchanged", metadata: now)
        }
    }
}
