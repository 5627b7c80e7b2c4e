@testable import AlertdKit
import AlertdSupport
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// Destination health against a real database, as alertd's role: circuits, probes, disabling,
/// the owners' email, the sweep; and two instances at once.
@Suite struct DestinationStoreTests {
    static let url = "https://hooks.example.com/dead"
    static let settings = DestinationSettings()

    /// `runs` failed runs of an integration whose webhook goes to `url`: as many webhook alerts.
    @discardableResult
    static func queue(_ owner: PostgresConnection, runs: Int, url: String = url, emails: [String] = []) async throws -> UUID {
        let rows = PlatformRows(owner)
        let integration = try await rows.integration(tenant: try await rows.tenant(), emails: emails, webhook: url)
        for n in 0..<runs { try await rows.syncRun(integration: integration, status: "failed", endpoint: "e\(n)") }
        return integration
    }

    static func claim(_ store: AlertStore, limit: Int = 100) async throws -> [ClaimedAlert] {
        try await store.claim(limit: limit, channels: [.webhook], lease: .seconds(60), health: AlertStore.DestinationClaim(relay: nil, maxAge: settings.maxAge))
    }

    /// Outcomes of `alerts` as the delivery path makes them, each with `signal`.
    static func outcomes(_ alerts: [ClaimedAlert], _ signal: DestinationSignal, result: AttemptOutcome.Result = .retry) -> [AttemptOutcome] {
        alerts.map { alert in
            var outcome = AttemptOutcome(alertID: alert.id, attempt: alert.attempt, result: result, startedAt: Date(), duration: .milliseconds(3), error: signal.description, retryIn: result == .retry ? .zero : nil)
            outcome.destination = alert.target?.key
            outcome.signal = signal
            outcome.probe = alert.target?.probe ?? false
            return outcome
        }
    }

    static func destination(_ owner: PostgresConnection, _ url: String = url) async throws -> PostgresRow {
        try await owner.query(
            """
            SELECT state, consecutive_failures, circuit_opened_at IS NOT NULL AS open,
                   extract(epoch FROM next_probe_at - updated_at)::float8 AS probe_after, probe_by, disabled_reason, disabled_by
              FROM alertd_destinations WHERE destination = $1
            """,
            [url]
        )[0]
    }

    static let unavailable = DestinationSignal.unavailable(reason: "HTTP 503: down", httpStatus: 503, retryAfter: nil)

    @Test func fiveFailuresInARowOpenTheCircuitAndItsAlertsWaitWithTheirAttemptsUnspent() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { owner in
                try await Self.queue(owner, runs: 12)
                let alertd = try await LeastPrivilegeTests.connectAsAlertd(database)
                defer { Task { await alertd.close() } }
                let store = AlertStore(connection: alertd, worker: "a")
                let destinations = DestinationStore(connection: alertd, worker: "a")
                let first = try await Self.claim(store, limit: 4)
                #expect(first.count == 4 && first.allSatisfy { $0.target?.key == Self.url && $0.target?.probe == false })
                // Four failures: not yet.
                try await store.record(Self.outcomes(first, Self.unavailable))
                var report = try await destinations.report(Self.outcomes(first, Self.unavailable), settings: Self.settings)
                #expect(report.changes.map(\.circuitOpened) == [false])
                #expect(try await Self.destination(owner).decode("state", as: String.self) == "failing")
                let fifth = try await Self.claim(store, limit: 1)
                try await store.record(Self.outcomes(fifth, Self.unavailable))
                report = try await destinations.report(Self.outcomes(fifth, Self.unavailable), settings: Self.settings)
                #expect(report.changes.map(\.circuitOpened) == [true])
                let row = try await Self.destination(owner)
                #expect(try row.decode("consecutive_failures", as: Int.self) == 5)
                #expect(try row.decode("open", as: Bool.self))
                let probeAfter = try row.decode("probe_after", as: Double.self)
                #expect((3.999...6.001).contains(probeAfter), "the first probe after 5 s ± 20%: \(probeAfter)")

                // The circuit is open and its probe not due: nothing is claimed, and the alerts
                // due are set aside without an attempt.
                #expect(try await Self.claim(store).isEmpty)
                let waiting = try await owner.query(
                    """
                    SELECT count(*) FILTER (WHERE next_attempt_at IS NULL AND metadata -> 'parked' ->> 'destination' = $1)::int AS parked,
                           count(*) FILTER (WHERE attempt_count = 0)::int AS unspent
                      FROM integration_alert_history WHERE delivery_status = 'pending'
                    """,
                    [Self.url]
                )[0]
                #expect(try waiting.decode("parked", as: Int.self) == 12, "the five retries and the seven never tried")
                #expect(try waiting.decode("unspent", as: Int.self) == 7)
                // The next wake-up is the probe, not the parked alerts (a time, not a wait: a
                // loaded machine may take seconds between these statements).
                let probeAt = try await owner.query("SELECT extract(epoch FROM next_probe_at)::float8 AS at FROM alertd_destinations WHERE destination = $1", [Self.url])[0].decode("at", as: Double.self)
                let due = try #require(try await store.nextDue(channels: [.webhook], health: true))
                #expect(abs(due.timeIntervalSince1970 - probeAt) < 0.001, "next due \(due.timeIntervalSince1970), probe at \(probeAt)")
                #expect(try await destinations.state().waiting == 12)
            }
        }
    }

    @Test func oneProbeAtATimeAcrossInstancesAndItsSuccessLetsTheWaitingAlertsFlowOldestFirst() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { owner in
                try await Self.queue(owner, runs: 10)
                let one = try await LeastPrivilegeTests.connectAsAlertd(database)
                let two = try await LeastPrivilegeTests.connectAsAlertd(database)
                defer { Task { await one.close(); await two.close() } }
                let store = AlertStore(connection: one, worker: "one")
                let failed = try await Self.claim(store, limit: 5)
                try await store.record(Self.outcomes(failed, Self.unavailable))
                _ = try await DestinationStore(connection: one, worker: "one").report(Self.outcomes(failed, Self.unavailable), settings: Self.settings)
                #expect(try await Self.claim(store).isEmpty)
                try await owner.query("UPDATE alertd_destinations SET next_probe_at = now() - interval '1 second'")

                async let a = Self.claim(AlertStore(connection: one, worker: "one"))
                async let b = Self.claim(AlertStore(connection: two, worker: "two"))
                let (claimedA, claimedB) = try await (a, b)
                let probes = claimedA + claimedB
                #expect(probes.count == 1, "one probe across instances, not one each: \(claimedA.count) + \(claimedB.count)")
                let probe = try #require(probes.first)
                #expect(probe.target?.probe == true)
                // Probes go round: never-tried alerts first.
                #expect(probe.attempt == 1)
                #expect(try await Self.destination(owner).decode("probe_by", as: String?.self) == (claimedA.isEmpty ? "two" : "one"))
                // While the probe is out, nothing else.
                #expect(try await Self.claim(AlertStore(connection: one, worker: "one")).isEmpty)
                #expect(try await Self.claim(AlertStore(connection: two, worker: "two")).isEmpty)

                let prober = claimedA.isEmpty ? two : one
                let proberName = claimedA.isEmpty ? "two" : "one"
                let reached = Self.outcomes([probe], .reached, result: .sent)
                try await AlertStore(connection: prober, worker: proberName).record(reached)
                let report = try await DestinationStore(connection: prober, worker: proberName).report(reached, settings: Self.settings)
                #expect(report.changes.map(\.circuitClosed) == [true])
                #expect(report.released == 9)
                let row = try await Self.destination(owner)
                #expect(try row.decode("state", as: String.self) == "healthy")
                #expect(try row.decode("open", as: Bool.self) == false)
                let flowing = try await Self.claim(AlertStore(connection: one, worker: "one"))
                #expect(flowing.count == 9)
                // In the order they fell due: the four never tried (due when written), then the five
                // retries.
                #expect(flowing.map(\.attempt) == [1, 1, 1, 1, 2, 2, 2, 2, 2])
            }
        }
    }

    @Test func aFailedProbeSpendsNoneOfTheAlertsOwnAttemptsAndWaitsLonger() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { owner in
                try await Self.queue(owner, runs: 6)
                try await owner.execute("UPDATE integration_alert_history SET max_attempts = 1")
                let alertd = try await LeastPrivilegeTests.connectAsAlertd(database)
                defer { Task { await alertd.close() } }
                let store = AlertStore(connection: alertd, worker: "a")
                let destinations = DestinationStore(connection: alertd, worker: "a")
                let failed = try await Self.claim(store, limit: 5)
                _ = try await destinations.report(Self.outcomes(failed, Self.unavailable), settings: Self.settings)
                try await owner.query("UPDATE alertd_destinations SET next_probe_at = now() - interval '1 second'")
                let probe = try #require(try await Self.claim(store).first)
                #expect(probe.target?.probe == true && probe.attempt == 1 && probe.maxAttempts == 1)
                let policy = RetryPolicy(backoff: Backoff(initial: .seconds(30), maximum: .seconds(60)))
                let delivery = policy.outcome(for: probe, DeliveryReport(decision: .retry(reason: "HTTP 503: down", notBefore: nil), httpStatus: 503, signal: Self.unavailable), startedAt: Date(), duration: .zero)
                #expect(delivery.result == .retry, "a probe's failure is the destination's: the alert waits on")
                try await store.record([delivery])
                _ = try await destinations.report([delivery], settings: Self.settings)
                let row = try await Self.destination(owner)
                let probeAfter = try row.decode("probe_after", as: Double.self)
                #expect((7.999...12.001).contains(probeAfter), "the second probe after 10 s ± 20%: \(probeAfter)")
                #expect(try row.decode("probe_by", as: String?.self) == nil)
                let alert = try await owner.query("SELECT delivery_status, attempt_count, metadata ->> 'probes' AS probes FROM integration_alert_history WHERE id = $1", [probe.id])[0]
                #expect(try alert.decode("delivery_status", as: String.self) == "pending")
                #expect(try alert.decode("probes", as: String.self) == "1")
                // Claimed again, its probe is not counted against its one attempt.
                try await owner.query("UPDATE alertd_destinations SET state = 'healthy', circuit_opened_at = NULL, consecutive_failures = 0")
                try await owner.query("UPDATE integration_alert_history SET next_attempt_at = now() WHERE id = $1", [probe.id])
                let again = try #require(try await Self.claim(store).first { $0.id == probe.id })
                #expect(again.attempt == 2 && again.probesSpent == 1 && again.countedAttempt == 1)
            }
        }
    }

    @Test func retryAfterOpensTheCircuitAtOnceForTheWholeDestination() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { owner in
                try await Self.queue(owner, runs: 3)
                let alertd = try await LeastPrivilegeTests.connectAsAlertd(database)
                defer { Task { await alertd.close() } }
                let store = AlertStore(connection: alertd, worker: "a")
                let one = try await Self.claim(store, limit: 1)
                let limited = DestinationSignal.unavailable(reason: "HTTP 429: slow down", httpStatus: 429, retryAfter: .seconds(120))
                let report = try await DestinationStore(connection: alertd, worker: "a").report(Self.outcomes(one, limited), settings: Self.settings)
                #expect(report.changes.map(\.circuitOpened) == [true])
                #expect(try await Self.destination(owner).decode("probe_after", as: Double.self) > 118)
                #expect(try await Self.claim(store).isEmpty, "the other alerts wait for the receiver's Retry-After too")
            }
        }
    }

    @Test func a410DisablesTheURLOnceAcrossInstancesAndTellsItsIntegrationsAddresses() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { owner in
                let told = try await Self.queue(owner, runs: 2, emails: ["ops@example.com", " ops@example.com", "oncall@example.com"])
                try await Self.queue(owner, runs: 2)
                let one = try await LeastPrivilegeTests.connectAsAlertd(database)
                let two = try await LeastPrivilegeTests.connectAsAlertd(database)
                defer { Task { await one.close(); await two.close() } }
                let claimed = try await Self.claim(AlertStore(connection: one, worker: "one"))
                #expect(claimed.count == 4)
                let gone = DestinationSignal.gone(reason: "HTTP 410: no such hook")
                async let a = DestinationStore(connection: one, worker: "one").report(Self.outcomes(Array(claimed.prefix(2)), gone, result: .failed), settings: Self.settings)
                async let b = DestinationStore(connection: two, worker: "two").report(Self.outcomes(Array(claimed.suffix(2)), gone, result: .failed), settings: Self.settings)
                let reports = try await [a, b]
                let disabled = reports.flatMap(\.changes).filter(\.disabled)
                #expect(disabled.count == 1, "one instance disables it")
                #expect(disabled.first?.integrations == 2 && disabled.first?.notified == 1)
                let row = try await Self.destination(owner)
                #expect(try row.decode("state", as: String.self) == "disabled")
                #expect(try row.decode("disabled_reason", as: String.self).contains("410 Gone"))
                let notices = try await owner.query(
                    "SELECT integration_config_id, recipients, origin, metadata -> 'destination' ->> 'url' AS url, (metadata -> 'destination' ->> 'undelivered')::int AS undelivered FROM integration_alert_history WHERE alert_type = 'webhook_disabled'"
                )
                #expect(notices.count == 1)
                #expect(try notices[0].decode("integration_config_id", as: UUID.self) == told)
                #expect(try notices[0].decode("recipients", as: [String].self).sorted() == ["oncall@example.com", "ops@example.com"])
                #expect(try notices[0].decode("origin", as: String.self) == "destination")
                #expect(try notices[0].decode("url", as: String.self) == Self.url)
                #expect(try notices[0].decode("undelivered", as: Int.self) == 2)

                // The notice, claimed, carries what its templates tell.
                let notice = try #require(try await AlertStore(connection: one, worker: "one").claim(
                    limit: 10, channels: [.email], lease: .seconds(60), health: AlertStore.DestinationClaim(relay: "smtp://relay.example.com:587", maxAge: Self.settings.maxAge)
                ).first { $0.type == .webhookDisabled })
                #expect(notice.templateType == "webhook_disabled" && notice.origin == .destination)
                #expect(notice.disabledDestination?.url == Self.url && notice.disabledDestination?.undelivered == 2)
                #expect(notice.target?.key == "smtp://relay.example.com:587")

                // A new alert for the URL is claimed to be failed unsent, saying since when.
                try await Self.queue(owner, runs: 1)
                let late = try #require(try await Self.claim(AlertStore(connection: two, worker: "two")).first)
                #expect(late.target?.disabledAt != nil && late.target?.disabledReason?.contains("410") == true)
            }
        }
    }

    @Test func aURLFailingLongerThanTheLimitIsDisabledSayingSinceWhen() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { owner in
                try await Self.queue(owner, runs: 2)
                let alertd = try await LeastPrivilegeTests.connectAsAlertd(database)
                defer { Task { await alertd.close() } }
                let claimed = try await Self.claim(AlertStore(connection: alertd, worker: "a"))
                let destinations = DestinationStore(connection: alertd, worker: "a")
                _ = try await destinations.report(Self.outcomes([claimed[0]], Self.unavailable), settings: Self.settings)
                try await owner.query("UPDATE alertd_destinations SET failing_since = now() - interval '6 days'")
                let report = try await destinations.report(Self.outcomes([claimed[1]], Self.unavailable), settings: Self.settings)
                #expect(report.changes.map(\.disabled) == [true])
                let reason = try await Self.destination(owner).decode("disabled_reason", as: String.self)
                #expect(reason.contains("without a success (ALERTD_DESTINATION_DISABLE_AFTER 5d)"), "\(reason)")
                #expect(try await Self.destination(owner).decode("disabled_by", as: String.self) == "a")
                // The relay is never disabled, however long it fails.
                var relayFailure = AttemptOutcome(alertID: claimed[0].id, attempt: 1, result: .retry, startedAt: Date(), duration: .zero)
                relayFailure.destination = "smtp://relay.example.com:587"
                relayFailure.signal = Self.unavailable
                _ = try await destinations.report([relayFailure], settings: Self.settings)
                try await owner.query("UPDATE alertd_destinations SET failing_since = now() - interval '60 days' WHERE channel = 'email'")
                _ = try await destinations.report([relayFailure], settings: Self.settings)
                #expect(try await Self.destination(owner, "smtp://relay.example.com:587").decode("state", as: String.self) == "failing")
            }
        }
    }

    @Test func theSweepFailsAlertsThatWaitedTooLongAndLetsGoOfThoseWhoseCircuitClosed() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { owner in
                try await Self.queue(owner, runs: 8)
                let alertd = try await LeastPrivilegeTests.connectAsAlertd(database)
                defer { Task { await alertd.close() } }
                let store = AlertStore(connection: alertd, worker: "a")
                let destinations = DestinationStore(connection: alertd, worker: "a")
                let failed = try await Self.claim(store, limit: 5)
                try await store.record(Self.outcomes(failed, Self.unavailable))
                _ = try await destinations.report(Self.outcomes(failed, Self.unavailable), settings: Self.settings)
                try await owner.query("UPDATE integration_alert_history SET next_attempt_at = now()")
                #expect(try await Self.claim(store).isEmpty)
                try await owner.query("UPDATE integration_alert_history SET created_at = now() - interval '4 days' WHERE id = ANY ($1::uuid[])", [failed.prefix(2).map(\.id)])
                var sweep = try await destinations.sweep(Self.settings)
                #expect(sweep.expired == 2 && sweep.released == 0)
                let expired = try await owner.query("SELECT delivery_error, attempt_count FROM integration_alert_history WHERE id = $1", [failed[0].id])[0]
                #expect(try expired.decode("delivery_error", as: String.self).contains("waited longer than ALERTD_ALERT_MAX_AGE (3d)"))
                #expect(try await owner.query("SELECT count(*)::int AS n FROM integration_alert_attempts WHERE alert_id = $1", [failed[0].id])[0].decode("n", as: Int.self) == 1)
                // A circuit closed by hand (or by a report that raced a claim): the sweep lets go.
                try await owner.query("UPDATE alertd_destinations SET circuit_opened_at = NULL, state = 'healthy'")
                sweep = try await destinations.sweep(Self.settings)
                #expect(sweep.expired == 0 && sweep.released == 6)
                #expect(try await Self.claim(store).count == 6)
            }
        }
    }
}

extension DestinationSignal: CustomStringConvertible {
    public var description: String {
        switch self {
        case .reached: "reached"
        case .unavailable(let reason, _, _), .refused(let reason, _), .gone(let reason): reason
        }
    }
}
