import AlertdPostgres
import AlertdTestSupport
import Foundation

/// One scenario's world: a fresh database with integrations, a webhook receiver and an SMTP sink
/// (each may be killed and brought back on its port), the alertd instances, and what they used.
final class Trial: @unchecked Sendable {
    // Invariant: the mutable state is touched by the scenario's task only, except `sampler`,
    // which locks itself.
    let database: TestDatabase
    let owner: PostgresConnection
    let cluster: FaultCluster
    let options: FaultOptions
    private(set) var receivers: [WebhookReceiver] = []
    private(set) var sinks: [SMTPSink] = []
    private(set) var receiverPort = 0
    private(set) var sinkPort = 0
    private(set) var integrations: [UUID] = []
    private(set) var instances: [String: AlertdProcess] = [:]
    private var retired: [AlertdProcess] = []
    let sampler = ResourceSampler()
    var environment: [String: String] = [:]
    var faults: [String] = []
    private var started = 0
    /// The tasks of `killingInTurn`, stopped by `shutdown`.
    private var killers: [Task<Int, Never>] = []

    init(database: TestDatabase, owner: PostgresConnection, cluster: FaultCluster, options: FaultOptions) {
        self.database = database
        self.owner = owner
        self.cluster = cluster
        self.options = options
    }

    /// The receiver, the sink and `count` integrations alerting on every outcome to both, each
    /// at its own path and address. `webhook` lets a scenario point some elsewhere.
    func prepare(integrations count: Int = 12, emails: Bool = true, webhook: ((Int, WebhookReceiver) -> String)? = nil) async throws {
        let receiver = try await WebhookReceiver.start()
        receivers.append(receiver)
        receiverPort = receiver.port
        if options.postfix == nil {
            let sink = try await SMTPSink.start()
            sinks.append(sink)
            sinkPort = sink.port
        }
        let rows = PlatformRows(owner)
        let tenant = try await rows.tenant("Fault suite")
        for index in 0..<count {
            let url = webhook?(index, receiver) ?? receiver.url("/hook/\(index)")
            integrations.append(try await rows.integration(
                tenant: tenant, type: "type\(index)", name: "Integration \(index)", alertOnFailure: true, alertOnSuccess: true,
                emails: emails ? ["ops\(index)@example.com"] : [], webhook: url
            ))
        }
        environment = [
            "ALERTD_DATABASE_URL": database.url,
            "ALERTD_WEBHOOK_ALLOW": "127.0.0.1",
            // The scenarios' floods (a backlog of 50,000 alerts of a few integrations) are load,
            // not a loop: no message limit.
            "ALERTD_MESSAGE_LIMIT": "off",
            "ALERTD_SMTP_URL": "smtp://127.0.0.1:\(sinkPort)",
            "ALERTD_SMTP_FROM": "alertd@example.com",
            "ALERTD_SMTP_TLS": "none",
            "ALERTD_LEASE": "10s",
            "ALERTD_WEBHOOK_TIMEOUT": "3s",
            "ALERTD_WEBHOOK_CONNECT_TIMEOUT": "2s",
            "ALERTD_SMTP_TIMEOUT": "5s",
            "ALERTD_RETRY_INITIAL": "1s",
            "ALERTD_RETRY_MAX": "5s",
            "ALERTD_POLL_INTERVAL": "2s",
            "ALERTD_LISTEN_CHECK_INTERVAL": "3s",
            "ALERTD_SHUTDOWN_GRACE": "5s",
        ]
        if let role = options.alertdRole { environment["ALERTD_DATABASE_URL"] = database.connectionString.withUser(role.user, password: role.password).conninfoForChildProcesses }
        if let postfix = options.postfix?.server {
            environment["ALERTD_SMTP_URL"] = postfix.url()
            environment["ALERTD_SMTP_TLS"] = "required"
            environment["ALERTD_SMTP_CA_FILE"] = postfix.caFile
        }
    }

    /// Starts (or restarts) the instance called `name`.
    @discardableResult
    func startAlertd(_ name: String = "a", extra: [String: String] = [:]) throws -> AlertdProcess {
        var environment = self.environment.merging(extra) { $1 }
        environment["ALERTD_INSTANCE"] = "\(name)-\(started)"
        environment["ALERTD_LOG_LEVEL"] = ProcessInfo.processInfo.environment["ALERTD_FAULTS_LOG_LEVEL"] ?? "notice"
        started += 1
        let process = try AlertdProcess.start(environment: environment)
        if let old = instances[name] { retired.append(old) }
        instances[name] = process
        sampler.watch(process.pid)
        return process
    }

    /// Drives `events` sync runs at `rate` while, every `every` milliseconds (at random within),
    /// `fault` strikes instance "a", which is then started again; returns what each fault returned.
    func whileDriving<Result: Sendable>(
        events: Int, rate: Double, _ verdict: inout Verdict, every: ClosedRange<Int64>, _ fault: @escaping @Sendable () async -> Result?
    ) async throws -> [Result] {
        let striking = Task {
            var results: [Result] = []
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int64.random(in: every)))
                if Task.isCancelled { break }
                if let result = await fault() { results.append(result) }
                _ = try? self.startAlertd()
            }
            return results
        }
        verdict.events = try await drive(events: events, rate: rate)
        striking.cancel()
        return await striking.value
    }

    /// Stops the instance called `name` with SIGTERM, as a supervisor does, and says how it
    /// ended; it is not restarted here.
    func terminate(_ name: String) async -> ProcessExit? {
        guard let process = instances[name] else { return nil }
        sampler.sampleNow()
        let ended = await process.stop(signal: SIGTERM, timeout: .seconds(40))
        sampler.forget(process.pid)
        return ended
    }

    /// Sets aside an instance that was meant to end by itself (refused to start, say): its
    /// output stays in `alertdOutput`, and it no longer counts as one that must keep running.
    func retire(_ name: String) {
        guard let process = instances.removeValue(forKey: name) else { return }
        sampler.forget(process.pid)
        retired.append(process)
    }

    /// SIGKILLs the instance called `name`; it is not restarted here.
    func kill(_ name: String) {
        guard let process = instances[name] else { return }
        Foundation.kill(process.pid, SIGKILL)
        sampler.forget(process.pid)
    }

    func stopAll() async {
        for (_, process) in instances {
            sampler.sampleNow()
            sampler.forget(process.pid)
            await process.stop(signal: SIGTERM, timeout: .seconds(15))
        }
    }

    /// Everything the alertd processes of this trial wrote, retired ones included.
    var alertdOutput: String {
        (retired + instances.values).map(\.output).joined(separator: "\n")
    }

    // MARK: faults on the receivers

    /// When the receivers were killed (seconds since the epoch, as receipts are timed).
    private(set) var receiverKills: [Double] = []

    func killReceivers() async throws {
        receiverKills.append(Date().timeIntervalSince1970)
        receivers.last?.kill()
        sinks.last?.kill()
        try await options.postfix?.stop()
    }

    /// Takes the receivers down for a long outage: the webhook receiver replaced on its port by
    /// one that answers every request `status` (up and failing, counting what reaches it), the
    /// SMTP server stopped. Returns the failing receiver; `restartReceivers` brings both back.
    func failReceivers(answering status: Int) async throws -> WebhookReceiver {
        try await killReceivers()
        return try await Self.retrying { try await WebhookReceiver.start(port: self.receiverPort, status: status) }
    }

    func restartReceivers() async throws {
        receivers.append(try await Self.retrying { try await WebhookReceiver.start(port: self.receiverPort) })
        if let postfix = options.postfix {
            try await postfix.start()
            return
        }
        var options = SMTPSink.Options()
        options.port = sinkPort
        let sinkOptions = options
        sinks.append(try await Self.retrying { try await SMTPSink.start(sinkOptions) })
    }

    /// The port may still be held for a moment after the kill.
    private static func retrying<T>(_ body: () async throws -> T) async throws -> T {
        var failures = 0
        while true {
            do { return try await body() } catch {
                failures += 1
                if failures > 50 { throw error }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    // MARK: the workload

    /// Writes `events` sync runs, each inserted as running and then moved to failed, partial or
    /// success (which all alert here), from `writers` connections at about `rate` runs a second
    /// in all. Database errors are waited out: a run whose fate is unclear is left to the check,
    /// which works from what the database holds.
    func drive(events: Int, rate: Double, writers: Int = 4) async throws -> Int {
        let statuses = ["failed", "failed", "failed", "partial", "success"]
        let connectionString = database.connectionString
        let integrations = self.integrations
        let perWriter = events / writers
        let interval = Double(writers) / rate
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    let connection = try await PostgresConnection.connect(connectionString, retrying: .reconnect, logger: TestPostgres.logger)
                    defer { Task { await connection.close() } }
                    let start = ContinuousClock.now
                    var written = 0
                    for index in 0..<perWriter {
                        let due = start + .milliseconds(Int64(Double(index) * interval * 1000))
                        if due > ContinuousClock.now { try await Task.sleep(until: due) }
                        let n = writer * perWriter + index
                        let integration = integrations[n % integrations.count]
                        let run: UUID = try await Self.persevering {
                            try await connection.query(
                                // An endpoint per run: each failure is news (the incidents scenario has repeats).
                                "INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status) VALUES ($1, $2, now(), 'running') RETURNING id",
                                [integration, "employees-\(n)"]
                            )[0].decode("id")
                        }
                        _ = try await Self.persevering {
                            try await connection.query(
                                "UPDATE integration_sync_history SET status = $2, error_message = $3, sync_completed_at = now() WHERE id = $1 AND status = 'running'",
                                [run, statuses[n % statuses.count], "run \(n) of the fault suite"]
                            )
                        }
                        written += 1
                    }
                    return written
                }
            }
            return try await group.reduce(0, +)
        }
    }

    /// Endpoints failing and recovering, `cycles` times each: four writers fail the endpoint at
    /// once (each its own run and transaction: one opens the incident, three are repeats), the
    /// incident stays open 0 to 3 s (reminders come every 2 s), then a successful run closes it.
    /// Returns the runs written.
    func driveIncidents(cycles: Int, endpointsPerIntegration: Int) async throws -> Int {
        let connectionString = database.connectionString
        let endpoints = integrations.flatMap { integration in (0..<endpointsPerIntegration).map { (integration, "endpoint-\($0)") } }
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for (integration, endpoint) in endpoints {
                group.addTask {
                    var written = 0
                    for cycle in 0..<cycles {
                        written += try await withThrowingTaskGroup(of: Int.self) { writers in
                            for writer in 0..<4 {
                                writers.addTask {
                                    try await Self.persevering {
                                        let connection = try await PostgresConnection.connect(connectionString, retrying: .reconnect, logger: TestPostgres.logger)
                                        defer { Task { await connection.close() } }
                                        try await connection.query(
                                            "INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status, error_message) VALUES ($1, $2, now(), 'failed', $3)",
                                            [integration, endpoint, "cycle \(cycle), writer \(writer)"]
                                        )
                                    }
                                    return 1
                                }
                            }
                            return try await writers.reduce(0, +)
                        }
                        try await Task.sleep(for: .milliseconds(Int64.random(in: 0...3000)))
                        try await Self.persevering {
                            let connection = try await PostgresConnection.connect(connectionString, retrying: .reconnect, logger: TestPostgres.logger)
                            defer { Task { await connection.close() } }
                            try await connection.query(
                                "INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status) VALUES ($1, $2, now(), 'success')",
                                [integration, endpoint]
                            )
                        }
                        written += 1
                    }
                    return written
                }
            }
            return try await group.reduce(0, +)
        }
    }

    /// `perIntegration` enabled endpoints of every integration, on a quarter-hourly schedule
    /// whose next run is due in 2 s, and `settings` as each integration's alertd settings.
    func scheduleEndpoints(perIntegration: Int, settings: String) async throws {
        for integration in integrations {
            try await owner.query("UPDATE integration_configs SET configuration_metadata = jsonb_build_object('alertd', $2::jsonb) WHERE id = $1", [integration, settings])
            for endpoint in 0..<perIntegration {
                try await owner.query(
                    """
                    INSERT INTO integration_sync_configs (integration_config_id, endpoint_name, sync_frequency, is_enabled, next_sync_at, created_at, updated_at)
                    VALUES ($1, $2, 'every_15_min', true, (now() AT TIME ZONE 'UTC') + interval '2 seconds',
                            (now() AT TIME ZONE 'UTC') - interval '1 day', (now() AT TIME ZONE 'UTC') - interval '1 day')
                    """,
                    [integration, "endpoint-\(endpoint)"]
                )
            }
        }
    }

    /// The runner: for `duration`, every half second, starts each endpoint whose next_sync_at
    /// has come (a run written running, then success), and schedules its next run `every`
    /// later, as the platform's scheduler would. Returns the runs written.
    func serveSchedule(for duration: Duration, every: Duration) async throws -> Int {
        let deadline = ContinuousClock.now + duration
        var runs = 0
        while ContinuousClock.now < deadline {
            let due = try await Self.persevering { try await self.owner.query(
                "SELECT integration_config_id, endpoint_name FROM integration_sync_configs WHERE next_sync_at <= now() AT TIME ZONE 'UTC'"
            ) }
            for row in due {
                let integration: UUID = try row.decode("integration_config_id")
                let endpoint: String = try row.decode("endpoint_name")
                try await Self.persevering {
                    let run: UUID = try await self.owner.query(
                        "INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status) VALUES ($1, $2, now() AT TIME ZONE 'UTC', 'running') RETURNING id",
                        [integration, endpoint]
                    )[0].decode("id")
                    try await self.owner.query("UPDATE integration_sync_history SET status = 'success', sync_completed_at = now() AT TIME ZONE 'UTC' WHERE id = $1", [run])
                    try await self.owner.query(
                        "UPDATE integration_sync_configs SET next_sync_at = (now() AT TIME ZONE 'UTC') + make_interval(secs => $3), last_sync_at = now() AT TIME ZONE 'UTC' WHERE integration_config_id = $1 AND endpoint_name = $2",
                        [integration, endpoint, Double(every.components.seconds)]
                    )
                }
                runs += 1
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        return runs
    }

    /// The runner dies in the middle of its work: endpoint-0 of each integration gets a run
    /// started and never finished. Returns those runs.
    func runnerStops() async throws -> [UUID] {
        var runs: [UUID] = []
        for integration in integrations {
            runs.append(try await Self.persevering { try await self.owner.query(
                "INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status) VALUES ($1, 'endpoint-0', now() AT TIME ZONE 'UTC', 'running') RETURNING id",
                [integration]
            )[0].decode("id", as: UUID.self) })
        }
        return runs
    }

    /// Waits until alertd has told `overdue` endpoints overdue and `stuck` runs stuck, every one
    /// of their alerts sent.
    func waitForSilence(overdue: Int, stuck: Int, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let row = try await Self.persevering { try await self.owner.query(
                """
                SELECT count(DISTINCT i.id) FILTER (WHERE i.kind = 'overdue')::int AS overdue,
                       count(DISTINCT i.id) FILTER (WHERE i.kind = 'stuck')::int AS stuck,
                       count(a.id) FILTER (WHERE a.delivery_status <> 'sent')::int AS unsent
                  FROM integration_alert_incidents i
                  LEFT JOIN integration_alert_history a ON a.incident_id = i.id
                 WHERE i.kind <> 'run'
                """
            ) }[0]
            if try row.decode("overdue", as: Int.self) >= overdue, try row.decode("stuck", as: Int.self) >= stuck, try row.decode("unsent", as: Int.self) == 0 {
                return
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw TestSetupError("alertd did not tell \(overdue) overdue endpoints and \(stuck) stuck runs within \(timeout)")
    }

    /// The runner is back: every endpoint runs once, then the runs it left running are failed
    /// (in that order: an endpoint whose only run since its due time ended is overdue, rightly).
    /// Returns the runs written.
    func runnerReturns(finishing stopped: [UUID]) async throws -> Int {
        let endpoints = try await Self.persevering { try await self.owner.query(
            "SELECT integration_config_id, endpoint_name FROM integration_sync_configs"
        ) }
        for row in endpoints {
            let integration: UUID = try row.decode("integration_config_id")
            let endpoint: String = try row.decode("endpoint_name")
            try await Self.persevering {
                try await self.owner.query(
                    "INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, sync_completed_at, status) VALUES ($1, $2, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC', 'success')",
                    [integration, endpoint]
                )
            }
        }
        for run in stopped {
            try await Self.persevering {
                try await self.owner.query("UPDATE integration_sync_history SET status = 'failed', error_message = 'the runner was restarted', sync_completed_at = now() AT TIME ZONE 'UTC' WHERE id = $1", [run])
            }
        }
        return endpoints.count
    }

    /// Waits until every overdue and stuck incident is closed and every alert of theirs sent.
    func waitForSilenceToEnd(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let row = try await Self.persevering { try await self.owner.query(
                """
                SELECT count(DISTINCT i.id) FILTER (WHERE i.resolved_at IS NULL)::int AS open,
                       count(a.id) FILTER (WHERE a.delivery_status <> 'sent')::int AS unsent
                  FROM integration_alert_incidents i
                  LEFT JOIN integration_alert_history a ON a.incident_id = i.id
                 WHERE i.kind <> 'run'
                """
            ) }[0]
            if try row.decode("open", as: Int.self) == 0, try row.decode("unsent", as: Int.self) == 0 { return }
            try await Task.sleep(for: .milliseconds(250))
        }
        let open = try await owner.query(
            """
            SELECT i.kind, i.endpoint_name, i.opened_at, i.expected_at, i.watch_from,
                   (SELECT string_agg(h.status || '@' || h.sync_started_at::text, ', ' ORDER BY h.sync_started_at DESC)
                      FROM (SELECT * FROM integration_sync_history h WHERE h.integration_config_id = i.integration_config_id
                              AND h.endpoint_name = i.endpoint_name ORDER BY h.sync_started_at DESC LIMIT 3) h) AS runs
              FROM integration_alert_incidents i WHERE i.kind <> 'run' AND i.resolved_at IS NULL
            """
        ).map { row in row.columns.map { "\($0)=\(row[$0] ?? "-")" }.joined(separator: " ") }
        throw TestSetupError("the overdue and stuck incidents were not all closed and their notices sent within \(timeout); open: \(open.joined(separator: "; "))")
    }

    /// Kills the instances `names` in turn with SIGKILL, every 1 to 3 s, starting each again at
    /// once, until the task is cancelled; its value is how many it killed.
    func killingInTurn(_ names: [String]) -> Task<Int, Never> {
        let task = Task {
            var kills = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int64.random(in: 1000...3000)))
                if Task.isCancelled { break }
                let name = names[kills % names.count]
                kill(name)
                kills += 1
                _ = try? startAlertd(name)
            }
            return kills
        }
        killers.append(task)
        return task
    }

    /// Waits until an instance has written the grouping defaults the trial set for the trigger.
    func waitForGrouping() async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let written: Bool = try await owner.query("SELECT group_interval > interval '0' AS written FROM alertd_settings")[0].decode("written")
            if written { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSetupError("no alertd wrote ALERTD_GROUP_INTERVAL to alertd_settings within 30 s")
    }

    /// Integrations whose endpoints fail together, `cycles` times: every endpoint of an
    /// integration fails at once (each its own writer and transaction), stays failing 1.5 to 3 s
    /// (past the group interval), then every one succeeds. Returns the runs written.
    func driveGroups(cycles: Int, endpointsPerIntegration: Int) async throws -> Int {
        let connectionString = database.connectionString
        @Sendable func write(_ integration: UUID, _ endpoint: String, _ status: String, _ error: String?) async throws {
            try await Self.persevering {
                let connection = try await PostgresConnection.connect(connectionString, retrying: .reconnect, logger: TestPostgres.logger)
                defer { Task { await connection.close() } }
                try await connection.query(
                    "INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status, error_message) VALUES ($1, $2, now(), $3, $4)",
                    [integration, endpoint, status, error]
                )
            }
        }
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for integration in integrations {
                group.addTask {
                    var written = 0
                    for cycle in 0..<cycles {
                        for status in ["failed", "success"] {
                            try await withThrowingTaskGroup(of: Void.self) { writers in
                                for endpoint in 0..<endpointsPerIntegration {
                                    writers.addTask { try await write(integration, "endpoint-\(endpoint)", status, status == "failed" ? "cycle \(cycle)" : nil) }
                                }
                                try await writers.waitForAll()
                            }
                            written += endpointsPerIntegration
                            try await Task.sleep(for: .milliseconds(status == "failed" ? Int64.random(in: 1500...3000) : Int64.random(in: 0...1000)))
                        }
                    }
                    return written
                }
            }
            return try await group.reduce(0, +)
        }
    }

    /// Runs `body` until it succeeds, for two minutes at most: the database may be restarting.
    @discardableResult
    static func persevering<T>(_ body: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(120)
        while true {
            do { return try await body() } catch {
                if ContinuousClock.now > deadline { throw error }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Waits until no alert is pending, or `timeout`; returns how many still are. Through
    /// Postfix, also until what it accepted has been relayed to its sink.
    func settle(timeout: Duration, where condition: String = "true") async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while true {
            let pending: Int = try await Self.persevering {
                try await owner.query("SELECT count(*)::int AS n FROM integration_alert_history WHERE delivery_status = 'pending' AND (\(condition))")[0].decode("n")
            }
            var relayed = true
            if options.postfix != nil, pending == 0 {
                let sent = try await owner.query("SELECT id FROM integration_alert_history WHERE delivery_status = 'sent' AND alert_channel = 'email'")
                let receipts = try emailReceipts()
                relayed = try sent.allSatisfy { receipts[try $0.decode("id", as: UUID.self)] != nil }
            }
            if (pending == 0 && relayed) || ContinuousClock.now > deadline { return pending }
            sampler.sampleNow()
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    // MARK: what the receivers got

    /// Webhook deliveries per alert id, from every incarnation of the receiver, and the times
    /// they arrived.
    func webhookReceipts() throws -> [UUID: [Double]] {
        var receipts: [UUID: [Double]] = [:]
        for receiver in receivers {
            for request in try receiver.requests() {
                guard let id = request.headers["webhook-id"].flatMap({ UUID(uuidString: String($0.dropFirst("msg_".count))) }) else { continue }
                receipts[id, default: []].append(request.time)
            }
        }
        return receipts
    }

    /// Email deliveries per alert id (from each message's Message-ID), from every incarnation of the sink.
    func emailReceipts() throws -> [UUID: [Double]] {
        var receipts: [UUID: [Double]] = [:]
        let messages = try options.postfix.map { try $0.server.delivered() } ?? sinks.flatMap { try $0.messages() }
        for message in messages {
            guard let line = message.data.split(whereSeparator: \.isNewline).first(where: { $0.lowercased().hasPrefix("message-id:") }),
                  let open = line.firstIndex(of: "<"), let dot = line[open...].firstIndex(of: "."),
                  let id = UUID(uuidString: String(line[line.index(after: open)..<dot]))
            else { continue }
            receipts[id, default: []].append(message.time)
        }
        return receipts
    }

    func shutdown() async {
        // A scenario that threw left its killer running: it would start instances again.
        for killer in killers {
            killer.cancel()
            _ = await killer.value
        }
        await stopAll()
        for receiver in receivers { receiver.stop() }
        for sink in sinks { sink.stop() }
        await owner.close()
    }
}
