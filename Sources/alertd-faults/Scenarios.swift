import AlertdPostgres
import AlertdTestSupport
import Foundation

struct FaultOptions: Sendable {
    var events = 2000
    var rate = 200.0
    var outage: Duration = .seconds(60)
    /// How long the receiver fails and the SMTP server is down in the long-outage scenario.
    var longOutage: Duration = .seconds(600)
    var backlog = 100_000
    /// alertd logs in as this role, when the least-privilege role is set up.
    var alertdRole: (user: String, password: String)?
    /// Email goes through this Postfix (STARTTLS, AUTH) instead of a plain aiosmtpd sink.
    var postfix: FaultPostfix?
}

/// The fault scenarios, each on a fresh database of the suite's own cluster.
enum Scenario: String, CaseIterable, Sendable {
    case kill
    case rollingRestart = "rolling-restart"
    case pgRestart = "pg-restart"
    case listenCut = "listen-cut"
    case outage
    case longOutage = "long-outage"
    case hungReceiver = "hung-receiver"
    case twoInstances = "two-instances"
    case threeInstances = "three-instances"
    case backlog
    case incidents
    case groups
    case silence
    case poolers

    var summary: String {
        switch self {
        case .kill: "alertd killed with SIGKILL every 0.7 to 2 s while sync runs change, restarted each time"
        case .rollingRestart: "alertd stopped with SIGTERM every 1 to 3 s while sync runs change, restarted each time"
        case .pgRestart: "PostgreSQL restarted under load, once in fast mode and once in immediate mode"
        case .listenCut: "the LISTEN connection's server process frozen (SIGSTOP): no close, no answer; at start during the session check, then while running"
        case .outage: "the SMTP server and the webhook receiver down together, then back on their ports"
        case .longOutage: "the webhook receiver answering 503 and the SMTP server down for ten minutes, retries set so that each alert alone would give up within 15 s: alerts wait behind their destinations' circuits, probes only, then all are sent"
        case .hungReceiver: "one integration in six points at a receiver that never answers"
        case .twoInstances: "two alertd instances on one database"
        case .threeInstances: "three alertd instances on one database"
        case .backlog: "a backlog of pending webhook alerts drained from a cold start"
        case .incidents: "endpoints failing and recovering, each failure by four writers at once, two instances, one killed with SIGKILL every 1 to 3 s"
        case .groups: "the endpoints of an integration failing together, their news grouped (1 s interval), two instances, one killed with SIGKILL every 1 to 3 s"
        case .poolers: "alertd through Debian's PgBouncer: refused in transaction mode (Supabase's port 6543) without claiming anything; two instances through session mode while the pooler restarts; SIGTERM with PostgreSQL frozen behind it"
        case .silence: "the ETL runner stops writing, one run left running: overdue endpoints and a stuck run found within their grace (1 min), then runs again; two instances, one killed with SIGKILL every 1 to 3 s"
        }
    }

    func run(_ trial: Trial) async throws -> Verdict {
        var verdict = Verdict(scenario: rawValue + (trial.options.postfix == nil ? "" : "+postfix"), description: summary)
        let options = trial.options
        let clock = ContinuousClock.now
        switch self {
        case .kill:
            try await trial.prepare()
            trial.environment["ALERTD_LEASE"] = "5s"
            try trial.startAlertd()
            let kills = try await trial.whileDriving(events: options.events, rate: options.rate / 2, &verdict, every: 700...2000) {
                trial.kill("a")
                return true
            }
            verdict.faults = ["\(kills.count) SIGKILLs"]
            _ = try await trial.settle(timeout: .seconds(120))
            try await trial.judge(&verdict, crashes: true)

        case .rollingRestart:
            // The shutdown contract: what is in flight at SIGTERM finishes and is recorded
            // within the grace, and alertd exits 0; so nothing is delivered twice.
            try await trial.prepare()
            try trial.startAlertd()
            let endings = try await trial.whileDriving(events: options.events, rate: options.rate / 2, &verdict, every: 1000...3000) {
                await trial.terminate("a")
            }
            verdict.faults = ["\(endings.count) SIGTERMs"]
            _ = try await trial.settle(timeout: .seconds(120))
            try await trial.judge(&verdict, crashes: false)
            let unclean = endings.filter { $0 != 0 }
            verdict.check("every instance stopped by SIGTERM exited 0", !endings.isEmpty && unclean.isEmpty, unclean.first.map { "\($0)" } ?? "\(endings.count) stops")

        case .pgRestart:
            try await trial.prepare()
            try trial.startAlertd()
            let cluster = trial.cluster
            let restarts = Task {
                try await Task.sleep(for: .seconds(3))
                try await cluster.restart(mode: "fast", down: .seconds(2))
                try await Task.sleep(for: .seconds(4))
                try await cluster.restart(mode: "immediate", down: .seconds(2))
            }
            verdict.events = try await trial.drive(events: options.events, rate: options.rate / 2)
            try await restarts.value
            verdict.faults = ["restart (fast), 2 s down", "restart (immediate), 2 s down"]
            _ = try await trial.settle(timeout: .seconds(120))
            try await trial.judge(&verdict, crashes: false)

        case .listenCut:
            try await trial.prepare()
            try trial.startAlertd()
            // First at start: the first listening backend seen, frozen at once, is often the
            // session check's (its LISTEN on a channel of its own), which must be taken for a
            // broken connection, not a pooler: alertd connects again and goes on.
            let atStart = try await listenerBackend(trial, timeout: .seconds(20), every: .milliseconds(1))
            let wasCheck = try await trial.owner.query("SELECT query LIKE 'LISTEN \"alertd\\_session\\_check\\_%' AS check FROM pg_stat_activity WHERE pid = $1", [Int(atStart)]).first?.decode("check", as: Bool.self) ?? false
            guard FaultCluster.signalBackend(atStart, SIGSTOP) else { throw TestSetupError("cannot stop the listener's backend \(atStart)") }
            let frozen = try? await listenerBackend(trial, timeout: .seconds(60), other: atStart, listening: true)
            _ = FaultCluster.signalBackend(atStart, SIGCONT)
            _ = try? await trial.owner.query("SELECT pg_terminate_backend($1)", [Int(atStart)])
            verdict.check("alertd listened again after a freeze at start\(wasCheck ? " (during its session check)" : "")", frozen != nil)
            guard let frozen else { break }
            // Then while running: the listener frozen while sync runs change.
            guard FaultCluster.signalBackend(frozen, SIGSTOP) else { throw TestSetupError("cannot stop the listener's backend \(frozen)") }
            let frozenAt = Date()
            let watcher = Task { try await listenerBackend(trial, timeout: .seconds(60), other: frozen, listening: true) }
            verdict.events = try await trial.drive(events: min(options.events, 1000), rate: 100)
            let replacement = try? await watcher.value
            let reconnectedAt = Date()
            _ = FaultCluster.signalBackend(frozen, SIGCONT)
            _ = try? await trial.owner.query("SELECT pg_terminate_backend($1)", [Int(frozen)])
            verdict.faults = ["listener's backend frozen at start\(wasCheck ? " (its session check)" : ""), then for \(Int(reconnectedAt.timeIntervalSince(frozenAt))) s while running"]
            _ = try await trial.settle(timeout: .seconds(60))
            try await trial.judge(&verdict, crashes: false)
            verdict.check("alertd noticed and listened again on a new connection", replacement != nil)
            // While nothing was heard, the 2 s poll still delivered.
            let rows = try await trial.owner.query("SELECT id, extract(epoch FROM created_at)::float8 AS created FROM integration_alert_history WHERE alert_channel = 'webhook'")
            let receipts = try trial.webhookReceipts()
            var worst = 0.0
            for row in rows {
                let id: UUID = try row.decode("id")
                guard let first = receipts[id]?.min() else { continue }
                worst = max(worst, first - (try row.decode("created", as: Double.self)))
            }
            verdict.notes.append(String(format: "slowest webhook: %.2f s from commit to receipt (poll 2 s)", worst))
            verdict.check("every webhook arrived within the poll interval plus 2 s", worst <= 4.0, String(format: "%.2f s", worst))

        case .outage:
            try await trial.prepare()
            trial.environment["ALERTD_RETRY_MAX"] = "30s"
            trial.environment["ALERTD_CIRCUIT_PROBE_MAX"] = "15s"
            try trial.startAlertd()
            let outage = options.outage
            let down = Task {
                try await Task.sleep(for: .seconds(2))
                try await trial.killReceivers()
                try await Task.sleep(for: outage)
                try await trial.restartReceivers()
            }
            verdict.events = try await trial.drive(events: min(options.events, 1000), rate: 100)
            try await down.value
            verdict.faults = ["SMTP server and webhook receiver down \(Int(outage.seconds)) s"]
            _ = try await trial.settle(timeout: .seconds(150))
            try await trial.judge(&verdict, crashes: false)
            let retried: Int = try await trial.owner.query("SELECT count(*)::int AS n FROM integration_alert_history WHERE attempt_count > 1")[0].decode("n")
            verdict.notes.append("\(retried) alerts needed more than one attempt")
            verdict.check("alerts caught by the outage were retried", retried > 0)

        case .longOutage:
            try await runLongOutage(trial, &verdict)

        case .poolers:
            try await runPoolers(trial, &verdict)

        case .hungReceiver:
            let hung = try await WebhookReceiver.start()
            defer { hung.stop() }
            try await trial.prepare { index, receiver in
                index % 6 == 0 ? hung.url("/sleep/600/\(index)") : receiver.url("/hook/\(index)")
            }
            try await trial.owner.execute("ALTER TABLE integration_alert_history ALTER COLUMN max_attempts SET DEFAULT 2")
            try trial.startAlertd()
            verdict.events = try await trial.drive(events: min(options.events, 600), rate: 60)
            verdict.faults = ["a receiver that accepts and never answers (timeout 3 s)"]
            let hungFilter = "alert_channel = 'webhook' AND recipients[1] LIKE '%/sleep/%'"
            _ = try await trial.settle(timeout: .seconds(120), where: "NOT (\(hungFilter))")
            try await trial.judge(&verdict, crashes: false, deliverable: "NOT (\(hungFilter))")
            // Its alerts fail after their timeouts until its circuit opens; the rest wait behind
            // it, their attempts unspent, while one probe at a time finds it still silent.
            let hungRows = try await trial.owner.query(
                "SELECT delivery_status, delivery_error, next_attempt_at IS NULL AND metadata ? 'parked' AS waiting FROM integration_alert_history WHERE \(hungFilter)"
            )
            let timedOut = try hungRows.filter { try $0.decode("delivery_status", as: String.self) == "failed" && ($0.decode("delivery_error", as: String?.self) ?? "").contains("Timeout") }
            let pending = try hungRows.filter { try $0.decode("delivery_status", as: String.self) == "pending" }
            let waiting = try pending.filter { try $0.decode("waiting", as: Bool.self) }
            verdict.notes.append("to the silent receiver: \(timedOut.count) failed after their timeouts, \(pending.count) pending (\(waiting.count) set aside behind its open circuits, the others a probe or a retry due), \((try? hung.requests().count) ?? 0) requests reached it")
            verdict.check(
                "every alert to the silent receiver failed after its timeouts or waits, most behind its open circuit",
                !hungRows.isEmpty && timedOut.count + pending.count == hungRows.count && waiting.count * 2 > hungRows.count,
                "\(timedOut.count) failed + \(pending.count) pending (\(waiting.count) set aside) of \(hungRows.count)"
            )
            let circuits: Int = try await trial.owner.query("SELECT count(*)::int AS n FROM alertd_destinations WHERE destination LIKE '%/sleep/%' AND circuit_opened_at IS NOT NULL")[0].decode("n")
            verdict.check("the silent receiver's two URLs have their circuits open", circuits == 2, "\(circuits)")
            let latencies = try await webhookLatencies(trial, where: "NOT (\(hungFilter))")
            let p99 = percentile(latencies, 0.99)
            verdict.notes.append(String(format: "other webhooks meanwhile: p50 %.0f ms, p99 %.0f ms", percentile(latencies, 0.5) * 1000, p99 * 1000))
            verdict.check("other destinations kept flowing (p99 under 1 s)", p99 < 1.0, String(format: "p99 %.2f s", p99))

        case .twoInstances, .threeInstances:
            let count = self == .twoInstances ? 2 : 3
            try await trial.prepare()
            for index in 0..<count { try trial.startAlertd("i\(index)", extra: ["ALERTD_BATCH_SIZE": "20"]) }
            verdict.events = try await trial.drive(events: options.events, rate: options.rate)
            verdict.faults = ["\(count) instances"]
            _ = try await trial.settle(timeout: .seconds(120))
            try await trial.judge(&verdict, crashes: false)
            let workers: Int = try await trial.owner.query("SELECT count(DISTINCT worker)::int AS n FROM integration_alert_attempts")[0].decode("n")
            verdict.notes.append("\(workers) instances recorded attempts")
            verdict.check("every instance delivered some", workers == count, "\(workers) of \(count)")

        case .backlog:
            try await trial.prepare(emails: false)
            let integrations = trial.integrations
            var written = 0
            while written < options.backlog {
                let chunk = min(10_000, options.backlog - written)
                try await trial.owner.query(
                    """
                    INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status, error_message)
                    SELECT ($1::uuid[])[1 + n % cardinality($1::uuid[])], 'employees-' || n, now(), 'failed', 'backlog run ' || n
                      FROM generate_series($2::int, $3::int) n
                    """,
                    [integrations, written, written + chunk - 1]
                )
                written += chunk
            }
            verdict.events = written
            let start = ContinuousClock.now
            try trial.startAlertd()
            let left = try await trial.settle(timeout: .seconds(600))
            let drained = (ContinuousClock.now - start).seconds
            verdict.faults = ["\(written) alerts pending at start"]
            try await trial.judge(&verdict, crashes: false)
            verdict.notes.append(String(format: "drained in %.1f s (%.0f deliveries/s, debug or release as built)", drained, Double(written) / drained))
            verdict.check("the backlog drained", left == 0, "\(left) left")

        case .incidents:
            // Incidents' transitions under a crashing instance: opening (four writers fail one
            // endpoint at once), reminders (every 2 s while open), closing (a success).
            try await trial.prepare(integrations: 6)
            trial.environment["ALERTD_LEASE"] = "5s"
            trial.environment["ALERTD_INCIDENT_REPEAT_INTERVAL"] = "2s"
            trial.environment["ALERTD_INCIDENT_SWEEP_INTERVAL"] = "300ms"
            try trial.startAlertd("a")
            try trial.startAlertd("b")
            let striking = trial.killingInTurn(["a", "b"])
            let cycles = max(2, options.events / (trial.integrations.count * 3 * 5))
            verdict.events = try await trial.driveIncidents(cycles: cycles, endpointsPerIntegration: 3)
            striking.cancel()
            verdict.faults = ["\(await striking.value) SIGKILLs of one of two instances"]
            _ = try await trial.settle(timeout: .seconds(120))
            try await trial.judge(&verdict, crashes: true)
            try await trial.judgeIncidents(&verdict)

        case .groups:
            // Grouping's hold, group lock and folded messages under a crashing instance: the four
            // endpoints of each integration fail within milliseconds (the first is news at once,
            // the other three held a second and sent as one message per channel), then recover.
            try await trial.prepare(integrations: 6)
            trial.environment["ALERTD_LEASE"] = "5s"
            trial.environment["ALERTD_GROUP_INTERVAL"] = "1s"
            trial.environment["ALERTD_INCIDENT_REPEAT_INTERVAL"] = "off"
            try trial.startAlertd("a")
            try trial.startAlertd("b")
            try await trial.waitForGrouping()
            let striking = trial.killingInTurn(["a", "b"])
            let cycles = max(2, options.events / (trial.integrations.count * 4 * 4))
            verdict.events = try await trial.driveGroups(cycles: cycles, endpointsPerIntegration: 4)
            striking.cancel()
            verdict.faults = ["\(await striking.value) SIGKILLs of one of two instances"]
            _ = try await trial.settle(timeout: .seconds(120))
            try await trial.judge(&verdict, crashes: true)
            try await trial.judgeIncidents(&verdict, reminders: false)
            try await trial.judgeGroups(&verdict)

        case .silence:
            // A runner serving its endpoints' schedule (a run due every 3 s), then gone: it writes
            // nothing more, one run of each integration left running. alertd must tell each
            // endpoint overdue and each run stuck once, within their grace, and each notice once
            // when the runner is back, while its instances are killed in turn.
            try await trial.prepare(integrations: 6)
            trial.environment["ALERTD_LEASE"] = "5s"
            trial.environment["ALERTD_SILENT_SWEEP_INTERVAL"] = "1s"
            trial.environment["ALERTD_INCIDENT_REPEAT_INTERVAL"] = "off"
            try await trial.scheduleEndpoints(perIntegration: 3, settings: #"{"overdue_grace_minutes": 1, "stuck_after_minutes": 1}"#)
            try trial.startAlertd("a")
            try trial.startAlertd("b")
            let striking = trial.killingInTurn(["a", "b"])
            var runs = try await trial.serveSchedule(for: .seconds(15), every: .seconds(3))
            let stopped = try await trial.runnerStops()
            runs += stopped.count
            // Due 3 s after the runner's last run at most, then a minute's grace.
            try await trial.waitForSilence(overdue: trial.integrations.count * 2, stuck: stopped.count, timeout: .seconds(150))
            runs += try await trial.runnerReturns(finishing: stopped)
            try await trial.waitForSilenceToEnd(timeout: .seconds(60))
            striking.cancel()
            verdict.events = runs
            verdict.faults = ["the runner stopped for 60 s and more", "\(await striking.value) SIGKILLs of one of two instances"]
            _ = try await trial.settle(timeout: .seconds(120))
            try await trial.judge(&verdict, crashes: true)
            try await trial.judgeSilence(&verdict, overdue: trial.integrations.count * 2, stuck: stopped.count, grace: 60, sweep: 1)
        }
        verdict.seconds = (ContinuousClock.now - clock).seconds
        return verdict
    }

    /// The server process of alertd's LISTEN connection (other than `other`), once it shows.
    /// The backend of alertd's LISTEN connection (not `other`): with `listening`, only once it
    /// listens on alertd's channel (past its session check).
    private func listenerBackend(_ trial: Trial, timeout: Duration, other: Int32 = 0, listening: Bool = false, every interval: Duration = .milliseconds(100)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let rows = try await trial.owner.query(
                """
                SELECT pid FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> $1
                   AND (\(listening ? "query = 'LISTEN \"alertd\"'" : "query ILIKE 'LISTEN%'") OR query = 'SELECT 1')
                """,
                [Int(other)]
            )
            if let row = rows.first { return Int32(try row.decode("pid", as: Int.self)) }
            try await Task.sleep(for: interval)
        }
        throw TestSetupError("no LISTEN connection showed within \(timeout)")
    }

    /// Seconds from each webhook alert's commit to its first receipt.
    private func webhookLatencies(_ trial: Trial, where condition: String) async throws -> [Double] {
        let rows = try await trial.owner.query("SELECT id, extract(epoch FROM created_at)::float8 AS created FROM integration_alert_history WHERE alert_channel = 'webhook' AND (\(condition))")
        let receipts = try trial.webhookReceipts()
        return try rows.compactMap { row in
            guard let first = receipts[try row.decode("id")]?.min() else { return nil }
            return first - (try row.decode("created", as: Double.self))
        }.sorted()
    }
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
}
