import Foundation

/// The alerts claimed and not yet recorded, and how many webhooks of them go to each host.
final class InFlightAlerts: @unchecked Sendable {
    // Invariant: every property is read and written with `lock` held.
    private let lock = NSLock()
    private var destinations: [UUID: String] = [:]
    private var perDestination: [String: Int] = [:]
    private var awaitingOutcome: Set<UUID> = []
    private var all: Set<UUID> = []
    private var recordingDeadline: ContinuousClock.Instant?

    private var emailSession = false

    var count: Int {
        lock.withLock { all.count }
    }

    var ids: [UUID] {
        lock.withLock { Array(all) }
    }

    /// Whether an SMTP session is under way.
    var sendingEmail: Bool {
        lock.withLock { emailSession }
    }

    func setSendingEmail(_ value: Bool) {
        lock.withLock { emailSession = value }
    }

    /// Claimed alerts with no outcome yet.
    var undelivered: [UUID] {
        lock.withLock { Array(awaitingOutcome) }
    }

    /// Webhooks in flight to `destination`.
    func count(to destination: String) -> Int {
        lock.withLock { perDestination[destination, default: 0] }
    }

    /// Hosts with `limit` webhooks or more in flight.
    func saturatedDestinations(limit: Int) -> [String] {
        lock.withLock { perDestination.filter { $0.value >= limit }.map(\.key) }
    }

    /// Takes claimed alerts in, up to `perDestination` webhooks per host; returns the rest apart.
    func admit(_ claimed: [ClaimedAlert], perDestination limit: Int) -> (admitted: [ClaimedAlert], excess: [ClaimedAlert]) {
        lock.withLock {
            var admitted: [ClaimedAlert] = []
            var excess: [ClaimedAlert] = []
            for alert in claimed {
                // Already on its way here (claimed again after its lease ran out): not twice.
                guard !all.contains(alert.id) else { continue }
                if let destination = alert.destination {
                    guard perDestination[destination, default: 0] < limit else {
                        excess.append(alert)
                        continue
                    }
                    perDestination[destination, default: 0] += 1
                    destinations[alert.id] = destination
                }
                awaitingOutcome.insert(alert.id)
                all.insert(alert.id)
                admitted.append(alert)
            }
            return (admitted, excess)
        }
    }

    /// Outcomes known; their record is on its way. The host's place is free again.
    func delivered(_ ids: [UUID]) {
        lock.withLock {
            for id in ids {
                awaitingOutcome.remove(id)
                if let destination = destinations.removeValue(forKey: id) {
                    perDestination[destination, default: 1] -= 1
                    if perDestination[destination] == 0 { perDestination[destination] = nil }
                }
            }
        }
    }

    /// Recorded, or given up on at shutdown.
    func finished(_ ids: [UUID]) {
        lock.withLock {
            for id in ids { all.remove(id) }
        }
    }

    func giveUpRecording(at deadline: ContinuousClock.Instant) {
        lock.withLock { recordingDeadline = deadline }
    }

    var mustGiveUpRecording: Bool {
        lock.withLock { recordingDeadline.map { ContinuousClock.now >= $0 } ?? false }
    }
}
