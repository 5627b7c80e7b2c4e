import Logging
import ServiceLifecycle

/// Extends the leases of the alerts in flight every third of a lease, so that a delivery that
/// takes long (a slow receiver, a long SMTP session) is never claimed a second time by another
/// instance while it is still under way. A crashed instance renews nothing: its alerts are due
/// again one lease after its last renewal.
final class LeaseRenewer: Service {
    private let store: any AlertLeases
    private let lease: Duration
    private let inFlight: InFlightAlerts
    private let logger: Logger

    init(store: any AlertLeases, lease: Duration, inFlight: InFlightAlerts, logger: Logger) {
        self.store = store
        self.lease = lease
        self.inFlight = inFlight
        self.logger = logger
    }

    /// How often leases are renewed: a third of the lease, so that two renewals can fail before
    /// the lease ends.
    var period: Duration { lease / 3 }

    func run() async {
        // Asked to stop after the dispatcher, which has then finished or released its alerts.
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.period)
                await self.renewOnce()
            }
        }
    }

    /// Renews the leases of what is in flight now.
    func renewOnce() async {
        let ids = inFlight.ids
        guard !ids.isEmpty, !Task.isCancelled else { return }
        do {
            try await store.renew(ids, lease: lease)
        } catch where Task.isCancelled {
            return
        } catch {
            logger.warning("could not renew leases", metadata: ["alerts": "\(ids.count)", "error": "\(error)"])
        }
    }
}
