import AlertdKit
import AlertdPostgres
import AlertdSupport
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The benchmark's database: the platform's tables and alertd's migrations, alertd's login role,
/// and three integrations (webhook only, email only, both) whose sync runs the phases fail.
struct BenchDatabase: Sendable {
    static let role = "alertd_bench"
    static let logger = Logger(label: "alertd.bench") { _ in SwiftLogNoOpLogHandler() }

    let cluster: BenchCluster
    let admin: PostgresConnection
    let webhookIntegration: UUID
    let emailIntegration: UUID
    let mixIntegration: UUID
    /// The trigger phase's integration: incidents on, as alertd's default.
    let triggerIntegration: UUID

    static func create(cluster: BenchCluster, receiverPort: Int) async throws -> BenchDatabase {
        let admin = try await PostgresConnection.connect(try PostgresConnectionString(cluster.url), logger: logger)
        let tool = DatabaseTool(connection: admin, sqlDirectory: try SQLDirectory.locate(flag: nil), output: { _ in })
        try await tool.initPlatform()
        try await tool.migrate()
        try await admin.execute("CREATE ROLE \(role) LOGIN IN ROLE alertd_dispatcher")
        let tenant: UUID = try await admin.query("INSERT INTO tenants (name) VALUES ('Bench') RETURNING id")[0].decode("id")
        // The delivery phases' integrations have incidents off: their runs are thousands of
        // endpoints failing once each, every failure its own message, as before incidents, so
        // that builds with and without incidents deliver the same messages (and no incident is
        // open: the happy path). The trigger phase measures incidents on an integration of its own.
        func integration(_ type: String, emails: [String]?, webhook: String?, incidents: Bool = false) async throws -> UUID {
            try await admin.query(
                """
                INSERT INTO integration_configs (tenant_id, integration_type, integration_name, alert_emails, alert_webhook_url, configuration_metadata)
                VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING id
                """,
                [tenant, type, "Bench \(type)", emails, webhook, incidents ? "{}" : #"{"alertd": {"incidents": "off"}}"#]
            )[0].decode("id")
        }
        let hook = "http://127.0.0.1:\(receiverPort)/hooks/bench"
        return BenchDatabase(
            cluster: cluster, admin: admin,
            webhookIntegration: try await integration("paycom", emails: nil, webhook: hook),
            emailIntegration: try await integration("adp", emails: ["payroll-ops@example.com"], webhook: nil),
            mixIntegration: try await integration("workday", emails: ["hr-ops@example.com"], webhook: hook),
            triggerIntegration: try await integration("bamboohr", emails: nil, webhook: hook, incidents: true)
        )
    }

    func close() async {
        await admin.close()
    }

    /// A connection as the platform's writer (the database's owner here).
    func connect() async throws -> PostgresConnection {
        try await PostgresConnection.connect(try PostgresConnectionString(cluster.url), logger: Self.logger)
    }

    /// `count` running sync runs of `integration`, each of an endpoint of its own, so that each
    /// failure opens an incident and sends its alerts (or, with `endpoints`, spread over that many
    /// endpoints, so that all but their first failures are repeats): no alert yet.
    func createRuns(_ integration: UUID, count: Int, endpoints: Int? = nil) async throws -> [UUID] {
        try await admin.query(
            """
            INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status)
            SELECT $1, CASE WHEN $3::integer IS NULL THEN 'endpoint-' || gen_random_uuid()
                            ELSE 'endpoint-' || (n % $3::integer) END,
                   now(), 'running'
              FROM generate_series(1, $2) AS n
            RETURNING id
            """,
            [integration, count, endpoints]
        ).map { try $0.decode("id", as: UUID.self) }
    }

    /// Fails the runs, `perStatement` to a transaction.
    func fail(_ runs: [UUID], perStatement: Int) async throws {
        for start in stride(from: 0, to: runs.count, by: perStatement) {
            try await admin.query("UPDATE integration_sync_history SET status = 'failed' WHERE id = ANY ($1::uuid[])", [Array(runs[start..<min(start + perStatement, runs.count)])])
        }
    }

    /// Finishes the runs with `status` as `writers` concurrent connections would, each batch one
    /// transaction.
    func finish(_ batches: [[UUID]], status: String = "failed", writers: Int) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                let mine = stride(from: writer, to: batches.count, by: writers).map { batches[$0] }
                group.addTask {
                    let connection = try await connect()
                    defer { Task { await connection.close() } }
                    for batch in mine {
                        try await connection.query("UPDATE integration_sync_history SET status = $1 WHERE id = ANY ($2::uuid[])", [status, batch])
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Sets the runs' status one per transaction, spread over `writers` connections as `finish`
    /// does, and times it as a long-lived writer pays it: each connection is opened, and its first
    /// `warmUp` changes committed, before the clock starts (a session's start, its first use of
    /// the trigger's function, compiled once per session, and the custom plans PostgreSQL makes
    /// of each of its statements' first five runs are not a transaction's cost). Returns the
    /// changes timed and the seconds they took.
    func finishTimed(_ runs: [UUID], status: String, writers: Int, warmUp: Int) async throws -> (changes: Int, seconds: Double) {
        let shares = (0..<writers).map { writer in stride(from: writer, to: runs.count, by: writers).map { runs[$0] } }
        var connections: [PostgresConnection] = []
        do {
            for _ in 0..<writers { connections.append(try await connect()) }
            func commit(_ part: ([UUID]) -> [UUID]) async throws {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (connection, share) in zip(connections, shares) {
                        let mine = part(share)
                        group.addTask {
                            for run in mine {
                                try await connection.query("UPDATE integration_sync_history SET status = $1 WHERE id = ANY ($2::uuid[])", [status, [run]])
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            try await commit { Array($0.prefix(warmUp)) }
            let start = ContinuousClock.now
            try await commit { Array($0.dropFirst(warmUp)) }
            let seconds = (ContinuousClock.now - start).seconds
            for connection in connections { await connection.close() }
            return (shares.reduce(0) { $0 + max(0, $1.count - warmUp) }, seconds)
        } catch {
            for connection in connections { await connection.close() }
            throw error
        }
    }

    /// Alerts of the runs recorded sent, and those ended any other way.
    func outcomes(of runs: [UUID]) async throws -> (sent: Int, other: Int) {
        let row = try await admin.query(
            """
            SELECT count(*) FILTER (WHERE delivery_status = 'sent') AS sent,
                   count(*) FILTER (WHERE delivery_status NOT IN ('sent', 'pending')) AS other
              FROM integration_alert_history
             WHERE sync_history_id = ANY ($1::uuid[])
            """,
            [runs]
        )[0]
        return (try row.decode("sent", as: Int.self), try row.decode("other", as: Int.self))
    }

    /// Each run's alert on `channel`.
    func alertIDs(of runs: [UUID], channel: String) async throws -> [(run: UUID, alert: UUID)] {
        try await admin.query(
            "SELECT sync_history_id, id FROM integration_alert_history WHERE sync_history_id = ANY ($1::uuid[]) AND alert_channel = $2",
            [runs, channel]
        ).map { (try $0.decode("sync_history_id", as: UUID.self), try $0.decode("id", as: UUID.self)) }
    }

    /// Every alert of the run, and those sent.
    func sentCounts() async throws -> (expected: Int, sent: Int) {
        let row = try await admin.query("SELECT count(*) AS expected, count(*) FILTER (WHERE delivery_status = 'sent') AS sent FROM integration_alert_history")[0]
        return (try row.decode("expected", as: Int.self), try row.decode("sent", as: Int.self))
    }
}

/// One `alertd run` process under measurement: its memory and CPU time from /proc.
struct AlertdUnderTest: Sendable {
    let process: ChildProcess
    let log: String
    let startedAt: ContinuousClock.Instant

    static func start(_ executable: String, environment: [String: String], name: String, waitUntilReady: Bool = true) async throws -> AlertdUnderTest {
        var environment = environment
        let port = try BenchCluster.freePort()
        environment["ALERTD_HTTP_ADDRESS"] = "127.0.0.1:\(port)"
        let log = FileManager.default.temporaryDirectory.appending(path: "alertd-bench-\(name)-\(UUID().uuidString.prefix(8)).log").path
        let startedAt = ContinuousClock.now
        let process = try ChildProcess.spawn(executable, ["run"], environment: environment, output: log, error: log)
        let alertd = AlertdUnderTest(process: process, log: log, startedAt: startedAt)
        guard waitUntilReady else { return alertd }
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if let answer = try? await StatusProbe.get("/readyz", from: StatusAddress(host: "127.0.0.1", port: port), timeout: .seconds(2)), answer.status == 200 {
                return alertd
            }
            if let status = alertd.exitStatus { throw BenchCluster.Failure(description: "alertd run exited with status \(status): \(alertd.logTail)") }
            if ContinuousClock.now > deadline {
                // Not left behind, retrying a database the bench is about to remove.
                kill(process.pid, SIGKILL)
                throw BenchCluster.Failure(description: "alertd run was not ready within 30 s: \(alertd.logTail)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// SIGTERM, then its exit status (nil if it had not ended 60 s later). The log of an alertd
    /// that stopped cleanly is removed (a backlog's, at info, is over 20 MB); another's stays for
    /// `logTail` and a person to read.
    func stop() async -> Int32? {
        kill(process.pid, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let status = process.exitStatusIfEnded() {
                if status == 0 { try? FileManager.default.removeItem(atPath: log) }
                return status
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        kill(process.pid, SIGKILL)
        return nil
    }

    var exitStatus: Int32? { process.exitStatusIfEnded() }

    var residentMiB: Double { Self.statusField("VmRSS", pid: process.pid) }
    var peakResidentMiB: Double { Self.statusField("VmHWM", pid: process.pid) }

    /// User and system CPU time so far.
    var cpuSeconds: Double {
        // After the command: state is field 3, utime 14 and stime 15 (1-based, /proc/[pid]/stat).
        guard let fields = ProcessStat.fields(process.pid), let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    var logTail: String {
        String(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").suffix(3_000))
    }

    static func statusField(_ name: String, pid: pid_t) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }),
              let kib = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return 0 }
        return kib / 1_024
    }
}
