import AlertdPostgres
import AlertdTestSupport
import Foundation

/// The long-outage scenario (docs/faults.md): destination health keeps alerts through an outage
/// far longer than their retry schedule.
///
/// Each alert may be tried 5 times, 1 s to 5 s apart: alone, every alert caught by the outage
/// would give up within about 15 s. The webhook receiver answers 503 to everything for the
/// outage (so that what reaches it is counted) and the SMTP server is down; sync runs keep
/// coming for the outage's first minute. Afterwards every alert must have been sent, none tried
/// more than a few times, and during the outage each URL and the relay must have seen only
/// probes spaced by the circuit's backoff, after the few failures that opened it.
func runLongOutage(_ trial: Trial, _ verdict: inout Verdict) async throws {
    let options = trial.options
    let outage = options.longOutage
    try await trial.prepare()
    try await trial.owner.execute("ALTER TABLE integration_alert_history ALTER COLUMN max_attempts SET DEFAULT 5")
    trial.environment["ALERTD_CIRCUIT_PROBE_MAX"] = "30s"
    try trial.startAlertd()

    // A few seconds of normal delivery, then the outage, with runs still coming for a minute.
    let started = Date().timeIntervalSince1970
    let driving = Task { try await trial.drive(events: min(options.events, 1400), rate: 20) }
    try await Task.sleep(for: .seconds(3))
    let failing = try await trial.failReceivers(answering: 503)
    let outageStart = Date().timeIntervalSince1970
    verdict.events = try await driving.value
    let midway = max(Duration.zero, outage / 2 - .seconds(Date().timeIntervalSince1970 - outageStart))
    try await Task.sleep(for: midway)
    let open: Int = try await Trial.persevering { try await trial.owner.query("SELECT count(*)::int AS n FROM alertd_destinations WHERE circuit_opened_at IS NOT NULL")[0].decode("n") }
    let waiting: Int = try await Trial.persevering { try await trial.owner.query("SELECT count(*)::int AS n FROM integration_alert_history WHERE delivery_status = 'pending' AND next_attempt_at IS NULL AND metadata ? 'parked'")[0].decode("n") }
    let failedMidway: Int = try await Trial.persevering { try await trial.owner.query("SELECT count(*)::int AS n FROM integration_alert_history WHERE delivery_status IN ('failed', 'bounced')")[0].decode("n") }
    let rest = max(Duration.zero, outage - .seconds(Date().timeIntervalSince1970 - outageStart))
    try await Task.sleep(for: rest)
    failing.kill()
    try await trial.restartReceivers()
    let outageEnd = Date().timeIntervalSince1970
    verdict.faults = ["webhook receiver answering 503 and SMTP server down for \(Int(outageEnd - outageStart)) s, from \(Int(outageStart - started)) s in"]

    let left = try await trial.settle(timeout: .seconds(240))
    let drained = Date().timeIntervalSince1970 - outageEnd
    try await trial.judge(&verdict, crashes: false)
    verdict.check("every alert sent once the outage ended", left == 0 && verdict.failedFinal == 0, "\(left) pending, \(verdict.failedFinal) failed")
    verdict.notes.append(String(format: "all sent %.0f s after the outage ended", drained))

    // Midway: every destination's circuit open, alerts waiting, none given up.
    verdict.notes.append("midway through the outage: \(open) circuits open, \(waiting) alerts waiting, \(failedMidway) failed")
    verdict.check("midway, the 12 URLs' and the relay's circuits were open", open == 13, "\(open) open")
    verdict.check("midway, alerts waited and none had failed", waiting > 0 && failedMidway == 0, "\(waiting) waiting, \(failedMidway) failed")

    // Attempts: the outage cost each alert at most a few.
    let attempts = try await trial.owner.query(
        "SELECT attempt_count, count(*)::int AS n FROM integration_alert_history GROUP BY attempt_count ORDER BY attempt_count"
    ).map { (try $0.decode("attempt_count", as: Int.self), try $0.decode("n", as: Int.self)) }
    let most = attempts.last?.0 ?? 0
    verdict.notes.append("attempts per alert: " + attempts.map { "\($0.1) × \($0.0)" }.joined(separator: ", "))
    verdict.check("no alert was tried more than 4 times (5 allowed)", most <= 4, "at most \(most)")

    // What reached the failing receiver: per URL, the failures that opened its circuit, then
    // probes spaced by the circuit's backoff (5 s, doubling to 30 s, ±20%).
    let requests = try failing.requests()
    var byPath: [String: [Double]] = [:]
    for request in requests { byPath[request.path, default: []].append(request.time) }
    let settled = outageStart + 20
    var closest = Double.infinity
    var probesPerURL: [Int] = []
    for times in byPath.values {
        let late = times.filter { $0 >= settled }.sorted()
        probesPerURL.append(late.count)
        for (earlier, later) in zip(late, late.dropFirst()) { closest = min(closest, later - earlier) }
    }
    let perURL = byPath.values.map(\.count)
    verdict.notes.append(String(
        format: "the failing receiver got %d requests in %.0f s over %d URLs (at most %d per URL; after the first 20 s, %d probes per URL at most, the closest two %.1f s apart)",
        requests.count, outageEnd - outageStart, byPath.count, perURL.max() ?? 0, probesPerURL.max() ?? 0, closest.isFinite ? closest : 0
    ))
    verdict.check("after its circuit opened, each URL saw only probes at least 3.5 s apart", closest >= 3.5, String(format: "%.2f s", closest))
    let ceiling = Int(outage.seconds / 30) + 8
    verdict.check("each URL saw at most \(ceiling) probes after the first 20 s (30 s apart at most, once the backoff is there)", (probesPerURL.max() ?? 0) <= ceiling, "\(probesPerURL.max() ?? 0)")

    // The relay: SMTP sessions alertd tried during the outage (an attempt's start, shared by the
    // alerts a session carried).
    let sessions: [Double] = try await trial.owner.query(
        """
        SELECT DISTINCT extract(epoch FROM t.started_at)::float8 AS at
          FROM integration_alert_attempts t JOIN integration_alert_history a ON a.id = t.alert_id
         WHERE a.alert_channel = 'email' AND t.outcome <> 'sent'
           AND t.started_at BETWEEN to_timestamp($1) AND to_timestamp($2)
         ORDER BY 1
        """,
        [settled, outageEnd]
    ).map { try $0.decode("at") }
    let relayClosest = zip(sessions, sessions.dropFirst()).map { $1 - $0 }.min() ?? .infinity
    verdict.notes.append(String(format: "the relay: %d SMTP sessions tried after the first 20 s of the outage, the closest two %.1f s apart", sessions.count, relayClosest.isFinite ? relayClosest : 0))
    verdict.check("after its circuit opened, the relay saw only probes at least 3.5 s apart", relayClosest >= 3.5, String(format: "%.2f s", relayClosest))
}
