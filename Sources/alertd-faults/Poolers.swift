import AlertdPostgres
import AlertdTestSupport
import Foundation

/// Debian's PgBouncer (deploy/dev/pgbouncer.sh) in front of the suite's cluster, in one mode.
struct FaultPooler: Sendable {
    let directory: String
    let cluster: FaultCluster
    let port: String

    static func start(mode: String, cluster: FaultCluster, users: [(user: String, password: String)]) async throws -> FaultPooler {
        let directory = FileManager.default.temporaryDirectory.appending(path: "alertd-faults-pgbouncer-\(mode)-\(UUID().uuidString.prefix(8))").path
        let address = try await script(directory, cluster, ["start", mode] + users.map { "\($0.user):\($0.password)" })
        guard let port = address.split(separator: ":").last.map(String.init) else { throw TestSetupError("pgbouncer.sh printed no address: \(address)") }
        return FaultPooler(directory: directory, cluster: cluster, port: port)
    }

    /// A connection string through the pooler: the same database and user.
    func url(for connectionString: PostgresConnectionString) throws -> String {
        try connectionString.replacing(["host": "127.0.0.1", "port": port, "hostaddr": "127.0.0.1"]).conninfoForChildProcesses
    }

    func restart() async throws {
        _ = try await Self.script(directory, cluster, ["restart"])
    }

    /// The end of PgBouncer's log, for a scenario that failed.
    var logTail: String {
        let log = (try? String(contentsOfFile: directory + "/pgbouncer.log", encoding: .utf8)) ?? ""
        return log.split(separator: "\n").suffix(8).joined(separator: "\n")
    }

    func destroy() async {
        _ = try? await Self.script(directory, cluster, ["destroy"])
    }

    private static func script(_ directory: String, _ cluster: FaultCluster, _ arguments: [String]) async throws -> String {
        try await FaultCluster.runScript("pgbouncer.sh", directoryVariable: "ALERTD_PGBOUNCER_DIR", directory: directory, arguments, environment: ["ALERTD_PG_DIR": cluster.directory])
    }
}

/// The ways a Supabase user connects, with PgBouncer 1.18 as the pooler:
///
/// 1. transaction mode (Supabase's port 6543): alertd run refuses it within seconds, exit status
///    1, one error naming the cause and the fix, and claims nothing meanwhile;
/// 2. session mode (Supabase's session pooler): two instances deliver everything while the
///    pooler is restarted under them, nothing lost, nothing twice;
/// 3. SIGTERM while PostgreSQL is frozen behind the pooler (every statement queued or unanswered):
///    alertd is gone within its bound, ALERTD_SHUTDOWN_GRACE + 6 s.
func runPoolers(_ trial: Trial, _ verdict: inout Verdict) async throws {
    guard let role = trial.options.alertdRole else { throw TestSetupError("the poolers scenario runs alertd as its least-privilege role") }
    try await trial.prepare()
    let cluster = trial.cluster
    let alertdLogin = trial.database.connectionString.withUser(role.user, password: role.password)
    let transaction = try await FaultPooler.start(mode: "transaction", cluster: cluster, users: [role])
    let session: FaultPooler
    do {
        session = try await FaultPooler.start(mode: "session", cluster: cluster, users: [role])
    } catch {
        await transaction.destroy()
        throw error
    }
    do {
        try await refusesATransactionPooler(trial, try transaction.url(for: alertdLogin), &verdict)
        try await deliversThroughASessionPooler(trial, session, alertdLogin, &verdict)
        try await stopsInTimeWithTheDatabaseFrozen(trial, try session.url(for: alertdLogin), &verdict)
    } catch {
        let logs = "\nPgBouncer (session mode) said:\n\(session.logTail)\nPgBouncer (transaction mode) said:\n\(transaction.logTail)"
        await transaction.destroy()
        await session.destroy()
        throw TestSetupError("\(error)\(logs)")
    }
    await transaction.destroy()
    await session.destroy()
}

private func refusesATransactionPooler(_ trial: Trial, _ url: String, _ verdict: inout Verdict) async throws {
    // Alerts are waiting when alertd meets the pooler: it must claim none of them.
    let written = try await trial.drive(events: 40, rate: 40)
    let pendingBefore = try await pendingAlerts(trial)
    let started = ContinuousClock.now
    let refused = try trial.startAlertd("tx", extra: ["ALERTD_DATABASE_URL": url])
    while refused.isRunning && ContinuousClock.now - started < .seconds(30) {
        try await Task.sleep(for: .milliseconds(50))
    }
    let took = ContinuousClock.now - started
    let ended = await refused.stop(signal: SIGKILL, timeout: .seconds(1))
    trial.retire("tx")
    let output = ended.output
    verdict.notes.append(String(format: "transaction pooler: refused after %.2f s, %@", took.seconds, "\(ended.ending)"))
    verdict.check("alertd run exits non-zero behind a transaction pooler, within 15 s", took < .seconds(15) && ended.ending == .exited(1), "\(ended.ending) after \(took)")
    verdict.check(
        "its error names the cause and the fix",
        output.contains("pooler in transaction mode") && output.contains("session mode") && output.contains("port 5432"),
        String(output.suffix(600))
    )
    let claimed: Int = try await trial.owner.query("SELECT count(*)::int AS n FROM integration_alert_attempts WHERE worker LIKE 'tx-%'")[0].decode("n")
    let pendingAfter = try await pendingAlerts(trial)
    verdict.check("it claimed and sent nothing", claimed == 0 && pendingAfter == pendingBefore, "\(claimed) attempts, \(pendingBefore) then \(pendingAfter) pending (\(written) runs)")
    let status = try await TestProcess.alertd(["db", "status", "--database-url", url, "--sql-dir", TestPostgres.sqlDirectory.url.path])
    verdict.check(
        "alertd db status works through it and says alertd run cannot",
        status.status == 0 && status.standardOutput.contains("All migrations are applied") && status.standardOutput.contains("NOT USABLE BY alertd run"),
        String(status.allOutput.suffix(800))
    )
}

private func deliversThroughASessionPooler(_ trial: Trial, _ pooler: FaultPooler, _ login: PostgresConnectionString, _ verdict: inout Verdict) async throws {
    trial.environment["ALERTD_DATABASE_URL"] = try pooler.url(for: login)
    for name in ["s0", "s1"] { try trial.startAlertd(name, extra: ["ALERTD_BATCH_SIZE": "20"]) }
    let restart = Task {
        try await Task.sleep(for: .seconds(3))
        try await pooler.restart()
    }
    verdict.events = try await trial.drive(events: min(trial.options.events, 1200), rate: 150)
    try await restart.value
    verdict.faults = ["transaction pooler refused", "two instances through a session pooler, restarted under load", "PostgreSQL frozen behind the pooler at SIGTERM"]
    _ = try await trial.settle(timeout: .seconds(120))
    try await trial.judge(&verdict, crashes: false)
    let workers: Int = try await trial.owner.query("SELECT count(DISTINCT worker)::int AS n FROM integration_alert_attempts WHERE worker LIKE 's_-%'")[0].decode("n")
    verdict.check("both instances delivered through the session pooler", workers == 2, "\(workers)")
    await trial.stopAll()
}

private func stopsInTimeWithTheDatabaseFrozen(_ trial: Trial, _ url: String, _ verdict: inout Verdict) async throws {
    let grace: Duration = .seconds(5)
    let instance = try trial.startAlertd("frozen", extra: ["ALERTD_DATABASE_URL": url, "ALERTD_SHUTDOWN_GRACE": "5s"])
    // Started, listening and idle: it holds the waiting lock (AlertStore.waitingLock).
    let deadline = ContinuousClock.now + .seconds(30)
    var waiting = false
    while !waiting && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(100))
        waiting = try await trial.owner.query(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 1634497140 AND objid = 1 AND granted) AS held"
        )[0].decode("held")
    }
    guard waiting else {
        throw TestSetupError("alertd did not start through the session pooler:\n" + instance.output.split(separator: "\n").suffix(6).joined(separator: "\n"))
    }
    let frozen = try postgresProcesses(trial.cluster)
    for pid in frozen { kill(pid, SIGSTOP) }
    // Every periodic statement (sweeps, claims, the listener's health check) now waits.
    try await Task.sleep(for: .seconds(4))
    let started = ContinuousClock.now
    let ended = await instance.stop(signal: SIGTERM, timeout: .seconds(40))
    let took = ContinuousClock.now - started
    for pid in frozen { kill(pid, SIGCONT) }
    let bound = grace + .seconds(6)
    verdict.notes.append(String(format: "SIGTERM with PostgreSQL frozen behind the pooler: gone after %.1f s (%@), bound %.0f s", took.seconds, "\(ended.ending)", bound.seconds))
    verdict.check("SIGTERM ends alertd within ALERTD_SHUTDOWN_GRACE + 6 s with PostgreSQL frozen behind the pooler", took <= bound + .seconds(1), String(format: "%.1f s", took.seconds))
}

private func pendingAlerts(_ trial: Trial) async throws -> Int {
    try await trial.owner.query("SELECT count(*)::int AS n FROM integration_alert_history WHERE delivery_status = 'pending'")[0].decode("n")
}

/// The cluster's server processes: the postmaster (from its pid file) and its children.
private func postgresProcesses(_ cluster: FaultCluster) throws -> [Int32] {
    let pidFile = try String(contentsOfFile: cluster.directory + "/data/postmaster.pid", encoding: .utf8)
    guard let postmaster = pidFile.split(separator: "\n").first.flatMap({ Int32($0) }) else { throw TestSetupError("no postmaster pid in \(cluster.directory)") }
    var pids = [postmaster]
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8) else { continue }
        // Fields after the command's closing parenthesis: state, then the parent's pid.
        let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
        if fields.count > 1, Int32(fields[1]) == postmaster { pids.append(pid) }
    }
    return pids
}
