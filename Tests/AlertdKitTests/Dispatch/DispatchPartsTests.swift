@testable import AlertdKit
import Foundation
import Logging
import Testing

/// The dispatcher's hand-offs, without a database: the wake-up signal, the outcome queue, the
/// alerts in flight, the recorder and the lease renewer over an in-memory store.
@Suite struct DispatchPartsTests {
    static func alert(to host: String?) -> ClaimedAlert {
        var alert = ClaimedAlert(id: UUID(), type: .failure, channel: host == nil ? .email : .webhook, origin: .trigger, recipients: [], attempt: 1, maxAttempts: 3, createdAt: nil, integration: nil, sync: nil)
        alert.destination = host
        return alert
    }

    static func outcome(_ id: UUID) -> AttemptOutcome {
        AttemptOutcome(alertID: id, attempt: 1, result: .sent, startedAt: Date(), duration: .milliseconds(1))
    }

    @Test func aSignalWhileNobodyWaitsIsKeptAsOne() async {
        let wake = WakeSignal()
        wake.signal()
        wake.signal()
        let clock = ContinuousClock()
        // Returned before its timeout: the signal was kept (however busy the machine).
        let kept = await clock.measure { await wake.wait(timeout: .seconds(120)) }
        #expect(kept < .seconds(60))
        let timedOut = await clock.measure { await wake.wait(timeout: .milliseconds(100)) }
        #expect(timedOut >= .milliseconds(100))
    }

    /// A wait that ends by its timeout may leave its signal-waiting half to run later, already
    /// cancelled: that half must not take a signal kept for the next wait.
    @Test func aCancelledWaitLeavesAKeptSignalForTheNext() async {
        let wake = WakeSignal()
        wake.signal()
        let cancelled = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await wake.wait(timeout: .seconds(120))
        }
        await cancelled.value
        let clock = ContinuousClock()
        let kept = await clock.measure { await wake.wait(timeout: .seconds(120)) }
        #expect(kept < .seconds(60))
    }

    @Test func aWaiterWakesOnASignalAndNotificationsAndReplacedSessionsAreRemembered() async {
        let wake = WakeSignal()
        let clock = ContinuousClock()
        let waiter = Task { await clock.measure { await wake.wait(timeout: .seconds(120)) } }
        try? await Task.sleep(for: .milliseconds(20))
        wake.sessionReplaced()
        let waited = await waiter.value
        #expect(waited < .seconds(60))
        #expect(wake.notified)
        wake.clearNotified()
        #expect(!wake.notified)
        #expect(wake.takeSessionReplaced())
        #expect(!wake.takeSessionReplaced())
    }

    @Test func theOutcomeQueueHandsOverInBatchesAndEndsWhenClosedAndEmpty() async {
        let queue = OutcomeQueue()
        let ids = (0..<5).map { _ in UUID() }
        queue.push(ids.prefix(3).map(Self.outcome))
        queue.push(ids.suffix(2).map(Self.outcome))
        #expect(await queue.next(max: 4)?.map(\.alertID) == Array(ids.prefix(4)))
        queue.close()
        #expect(await queue.next(max: 4)?.map(\.alertID) == [ids[4]])
        #expect(await queue.next(max: 4) == nil)
    }

    @Test func aReaderWaitingOnTheQueueGetsWhatIsPushedLater() async {
        let queue = OutcomeQueue()
        let id = UUID()
        async let batch = queue.next(max: 10)
        try? await Task.sleep(for: .milliseconds(20))
        queue.push([Self.outcome(id)])
        #expect(await batch?.map(\.alertID) == [id])
    }

    @Test func inFlightAdmitsUpToAHostsPlacesAndFreesThemWhenDelivered() {
        let inFlight = InFlightAlerts()
        let slow = (0..<3).map { _ in Self.alert(to: "slow.example.com") }
        let email = Self.alert(to: nil)
        let (admitted, excess) = inFlight.admit(slow + [email], perDestination: 2)
        #expect(admitted.map(\.id) == [slow[0].id, slow[1].id, email.id])
        #expect(excess.map(\.id) == [slow[2].id])
        #expect(inFlight.count == 3 && inFlight.count(to: "slow.example.com") == 2)
        #expect(inFlight.saturatedDestinations(limit: 2) == ["slow.example.com"])
        // Claimed again after its lease ran out while still on its way: not twice.
        #expect(inFlight.admit([slow[0]], perDestination: 5).admitted.isEmpty)
        inFlight.delivered([slow[0].id])
        #expect(inFlight.count(to: "slow.example.com") == 1 && inFlight.count == 3)
        #expect(Set(inFlight.undelivered) == [slow[1].id, email.id])
        inFlight.finished([slow[0].id])
        #expect(inFlight.count == 2)
    }

    struct DatabaseAway: Error {}

    /// Fails the first `failures` calls, then records everything.
    actor MemoryStore: OutcomeRecords, AlertLeases {
        var failures: Int
        var recorded: [UUID] = []
        var renewed: [[UUID]] = []
        init(failures: Int = 0) { self.failures = failures }

        func record(_ outcomes: [AttemptOutcome]) async throws -> Set<UUID> {
            if failures > 0 {
                failures -= 1
                throw DatabaseAway()
            }
            recorded += outcomes.map(\.alertID)
            return Set(outcomes.map(\.alertID))
        }

        func renew(_ ids: [UUID], lease: Duration) async throws {
            renewed.append(ids.sorted { $0.uuidString < $1.uuidString })
        }
    }

    @Test func theRecorderKeepsABatchThroughDatabaseFailuresAndFreesItsPlaces() async {
        let store = MemoryStore(failures: 2)
        let inFlight = InFlightAlerts()
        let alerts = [Self.alert(to: "a.example.com"), Self.alert(to: nil)]
        _ = inFlight.admit(alerts, perDestination: 10)
        inFlight.delivered(alerts.map(\.id))
        let recorder = OutcomeRecorder(outcomes: OutcomeQueue(), store: store, inFlight: inFlight, wake: WakeSignal(), metrics: DispatcherMetrics(), logger: Logger(label: "test"))
        await recorder.record(alerts.map { Self.outcome($0.id) })
        #expect(await store.recorded == alerts.map(\.id))
        #expect(await store.failures == 0)
    }

    @Test func theRecorderGivesUpAtTheShutdownDeadline() async {
        let store = MemoryStore(failures: 1000)
        let inFlight = InFlightAlerts()
        inFlight.giveUpRecording(at: .now)
        let recorder = OutcomeRecorder(outcomes: OutcomeQueue(), store: store, inFlight: inFlight, wake: WakeSignal(), metrics: DispatcherMetrics(), logger: Logger(label: "test"))
        await recorder.record([Self.outcome(UUID())])
        #expect(await store.recorded.isEmpty)
        #expect(await store.failures == 999)
    }

    @Test func theRenewerExtendsTheLeasesOfWhatIsInFlightOnly() async {
        let store = MemoryStore()
        let inFlight = InFlightAlerts()
        let renewer = LeaseRenewer(store: store, lease: .seconds(60), inFlight: inFlight, logger: Logger(label: "test"))
        #expect(renewer.period == .seconds(20))
        await renewer.renewOnce()
        #expect(await store.renewed.isEmpty)
        let alerts = [Self.alert(to: "a.example.com"), Self.alert(to: nil)]
        _ = inFlight.admit(alerts, perDestination: 10)
        await renewer.renewOnce()
        #expect(await store.renewed == [alerts.map(\.id).sorted { $0.uuidString < $1.uuidString }])
    }
}
