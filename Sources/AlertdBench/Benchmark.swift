import AlertdKit
import AlertdPostgres
import AlertdSupport
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `alertd bench`: alertd end to end on this machine, against its own PostgreSQL, mail server and
/// webhook receiver on loopback (docs/benchmarks.md).
public struct Benchmark: Sendable {
    public struct Options: Sendable {
        /// Alerts per second offered in the latency phases.
        public var rate = 500
        public var latencySeconds = 10
        public var webhookRuns = 30_000
        public var emailRuns = 10_000
        /// Sync runs with both channels: two alerts each.
        public var mixRuns = 6_000
        public var backlog = 100_000
        public var triggerWriters = 8
        public var triggerUpdatesPerWriter = 400
        /// Repeated failures of four endpoints with open incidents, in all (over the rounds).
        public var stormFailures = 10_000
        /// Status changes committed per transaction by the writers of the throughput phases.
        public var changesPerTransaction = 100
        /// The sweep phase's platform: endpoints (ten to an integration) and runs of each.
        public var sweepEndpoints = 100_000
        public var sweepRunsPerEndpoint = 10
        public var postgresBinaries: String?
        /// pg_stat_statements on in the bench's cluster, and the backlog's statements reported.
        public var statements = false
        /// The phases to run (all by default).
        public var phases: Set<Phase> = Set(Phase.allCases)
        /// The alertd executable to measure.
        public var alertd: String

        public init(alertd: String) {
            self.alertd = alertd
        }

        /// A run of a few seconds, for the tests: every phase, small numbers.
        public static func quick(alertd: String) -> Options {
            var options = Options(alertd: alertd)
            options.rate = 200
            options.latencySeconds = 1
            options.webhookRuns = 600
            options.emailRuns = 300
            options.mixRuns = 200
            options.backlog = 1_000
            options.triggerWriters = 4
            options.triggerUpdatesPerWriter = 25
            options.stormFailures = 200
            options.sweepEndpoints = 2_000
            options.sweepRunsPerEndpoint = 3
            return options
        }
    }

    public enum Phase: String, CaseIterable, Sendable {
        case latency, throughput, backlog, trigger, sweep
    }

    public let options: Options
    let progress: Progress
    /// The alertd processes this bench started.
    let launched = LaunchedProcesses()

    public init(options: Options, interactive: Bool) {
        self.options = options
        self.progress = Progress(interactive: interactive)
    }

    public func run() async throws -> BenchResults {
        var results = BenchResults()
        results.phases = Set(options.phases.map(\.rawValue))
        results.offeredRate = options.rate
        results.writers = options.triggerWriters

        progress.phase("starting PostgreSQL, the webhook receiver and the SMTP sink")
        let cluster = try await BenchCluster.start(binaries: options.postgresBinaries, statements: options.statements)
        let receiver = try BenchReceiver.start(threadName: "bench-http")
        let sink = try BenchSMTPSink.start(threadName: "bench-smtp")
        do {
            results = try await measure(cluster: cluster, receiver: receiver, sink: sink, results: results)
        } catch {
            // An alertd a failed phase left running goes with the cluster it would wait for.
            await launched.killAll()
            await receiver.stop()
            await sink.stop()
            await cluster.destroy()
            throw error
        }
        await receiver.stop()
        await sink.stop()
        await cluster.destroy()
        progress.done()
        return results
    }

    private func measure(cluster: BenchCluster, receiver: BenchReceiver, sink: BenchSMTPSink, results: BenchResults) async throws -> BenchResults {
        var results = results
        progress.phase("the harness alone: webhook receiver")
        results.receiverRequestsPerSecond = try await Self.measureReceiver(receiver, requests: max(2_000, options.webhookRuns / 2))
        progress.phase("the harness alone: SMTP sink")
        results.sinkMessagesPerSecond = try await Self.measureSink(sink, messages: max(1_000, options.emailRuns / 2))

        progress.phase("creating the schema")
        let database = try await BenchDatabase.create(cluster: cluster, receiverPort: receiver.port)
        defer { Task { await database.close() } }
        let environment = alertdEnvironment(cluster: cluster, sinkPort: sink.port)

        // One alertd for the latency and throughput phases: idle first, for its idle memory.
        var alertd = try await AlertdUnderTest.start(options.alertd, environment: environment, name: "steady")
        await launched.add(alertd)
        try await Task.sleep(for: .seconds(2))
        results.rssIdleMiB = alertd.residentMiB

        if options.phases.contains(.latency) {
            progress.phase("webhook latency at \(options.rate)/s for \(options.latencySeconds) s")
            results.webhookLatency = try await latency(database.webhookIntegration, channel: "webhook", database: database, receiver: receiver, sink: sink, alertd: alertd)
            progress.phase("email latency at \(options.rate)/s for \(options.latencySeconds) s")
            results.emailLatency = try await latency(database.emailIntegration, channel: "email", database: database, receiver: receiver, sink: sink, alertd: alertd)
        }
        if options.phases.contains(.throughput) {
            progress.phase("webhooks as fast as they come: \(options.webhookRuns) alerts")
            results.webhooks = try await throughput(database.webhookIntegration, runs: options.webhookRuns, alertsPerRun: 1, database: database, receiver: receiver, sink: sink, alertd: alertd)
            progress.phase("email as fast as it comes: \(options.emailRuns) messages")
            results.emails = try await throughput(database.emailIntegration, runs: options.emailRuns, alertsPerRun: 1, database: database, receiver: receiver, sink: sink, alertd: alertd)
            progress.phase("email and webhooks together: \(options.mixRuns * 2) alerts")
            results.mix = try await throughput(database.mixIntegration, runs: options.mixRuns, alertsPerRun: 2, database: database, receiver: receiver, sink: sink, alertd: alertd)
        }
        results.rssPeakMiB = alertd.peakResidentMiB
        guard await alertd.stop() == 0 else { throw BenchCluster.Failure(description: "alertd did not stop cleanly: \(alertd.logTail)") }

        if options.phases.contains(.backlog) {
            progress.phase("a backlog of \(options.backlog) webhooks, queued while alertd is down")
            let backlogRuns = try await database.createRuns(database.webhookIntegration, count: options.backlog)
            _ = receiver.takeArrivals()
            try await database.fail(backlogRuns, perStatement: 20_000)
            try await database.admin.execute("ANALYZE integration_alert_history")
            if options.statements {
                try await database.admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                try await database.admin.execute("SELECT pg_stat_statements_reset()")
            }
            let postgresBefore = cluster.cpuSeconds
            alertd = try await AlertdUnderTest.start(options.alertd, environment: environment, name: "backlog", waitUntilReady: false)
            await launched.add(alertd)
            let cpuBefore = alertd.cpuSeconds
            let drained = try await waitUntilSent(database: database, runs: backlogRuns, alertsPerRun: 1, arrivals: { receiver.arrivalCount }, alertd: alertd, timeout: .seconds(600))
            results.backlogAlerts = options.backlog
            results.backlogDrainSeconds = (drained - alertd.startedAt).seconds
            results.cpuSecondsPer1000 = (alertd.cpuSeconds - cpuBefore) / (Double(options.backlog) / 1_000)
            results.postgresCPUSecondsPer1000 = (cluster.cpuSeconds - postgresBefore) / (Double(options.backlog) / 1_000)
            if options.statements {
                results.backlogStatements = try await StatementCost.top(database.admin, role: BenchDatabase.role)
            }
            results.rssPeakMiB = max(results.rssPeakMiB, alertd.peakResidentMiB)
            guard await alertd.stop() == 0 else { throw BenchCluster.Failure(description: "alertd did not stop cleanly: \(alertd.logTail)") }
            _ = receiver.takeArrivals()
        }

        if options.phases.contains(.trigger) {
            progress.phase("\(options.triggerWriters) writers with and without the trigger")
            let rounds = try await triggerCost(database: database)
            results.writesWithoutTrigger = rounds.medianRate(.without)
            results.writesWithTrigger = rounds.medianRate(.repeats)
            results.writesNewIncidents = rounds.medianRate(.newIncidents)
            results.writesWithTriggerNotifying = rounds.medianRate(.notifying)
            results.writesWithConstantInsert = rounds.medianRate(.constantInsert)
            results.successesWithoutTrigger = rounds.medianRate(.successesWithout)
            results.successesWithTrigger = rounds.medianRate(.successes)
            results.triggerRatio = rounds.medianRatio(.repeats, to: .without)
            results.notifyingTriggerRatio = rounds.medianRatio(.notifying, to: .without)
            results.constantInsertRatio = rounds.medianRatio(.constantInsert, to: .without)
            results.triggerAgainstFloorRatio = rounds.medianRatio(.repeats, to: .constantInsert)
            results.triggerAgainstFloorCycles = rounds.ratios(.repeats, to: .constantInsert)
            results.newIncidentsAgainstFloorRatio = rounds.medianRatio(.newIncidents, to: .constantInsert)
            results.successRatio = rounds.medianRatio(.successes, to: .successesWithout)
        }

        if options.phases.contains(.sweep) {
            progress.phase("the silent-failure sweep over \(options.sweepEndpoints) endpoints and \(options.sweepEndpoints * options.sweepRunsPerEndpoint) runs")
            results.sweep = try await sweepCost(cluster: cluster)
        }

        let counts = try await database.sentCounts()
        results.expectedSent = counts.expected
        results.sent = counts.sent
        return results
    }

    /// The variables alertd runs with: the bench's servers, and any ALERTD_* tuning the caller set.
    func alertdEnvironment(cluster: BenchCluster, sinkPort: Int) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        for key in ["ALERTD_DATABASE_URL", "ALERTD_DATABASE_URL_FILE", "ALERTD_SMTP_URL", "ALERTD_SMTP_URL_FILE", "ALERTD_WEBHOOK_SECRET", "ALERTD_WEBHOOK_SECRET_FILE", "ALERTD_HTTP_ADDRESS"] {
            environment[key] = nil
        }
        environment["ALERTD_DATABASE_URL"] = cluster.url(user: BenchDatabase.role)
        environment["ALERTD_SMTP_URL"] = "smtp://127.0.0.1:\(sinkPort)"
        environment["ALERTD_SMTP_TLS"] = "none"
        environment["ALERTD_SMTP_FROM"] = "alerts@bench.alertd.test"
        // No ALERTD_WEBHOOK_SECRET: each webhook is signed with its integration's own secret,
        // as a new installation signs them (one signature each, read once per integration).
        environment["ALERTD_WEBHOOK_ALLOW"] = "127.0.0.1"
        // The bench's flood is thousands of alerts of three integrations an hour: the message
        // limit, there against a loop, would hold all but the first 120 of each.
        environment["ALERTD_MESSAGE_LIMIT"] = "off"
        // The phases measure alerts each of its own message: the bench's runs are thousands of
        // endpoints of three integrations failing at once, which grouping would fold into
        // messages of fifty, a minute late. The trigger phase measures grouping's cost.
        environment["ALERTD_GROUP_INTERVAL"] = environment["ALERTD_GROUP_INTERVAL"] ?? "off"
        environment["ALERTD_INSTANCE"] = environment["ALERTD_INSTANCE"] ?? "bench"
        environment["ALERTD_LOG_LEVEL"] = environment["ALERTD_LOG_LEVEL"] ?? "info"
        return environment
    }

    // MARK: Phases

    /// Status changes committed one per transaction at `rate`, spread over four connections; the
    /// time from each commit to its alert's arrival.
    private func latency(_ integration: UUID, channel: String, database: BenchDatabase, receiver: BenchReceiver, sink: BenchSMTPSink, alertd: AlertdUnderTest) async throws -> LatencySummary {
        let count = options.rate * options.latencySeconds
        let runs = try await database.createRuns(integration, count: count)
        _ = receiver.takeArrivals()
        _ = sink.takeArrivals()
        let writers = 4
        let start = ContinuousClock.now + .milliseconds(100)
        let interval = Duration.seconds(1) / options.rate
        let commits = try await withThrowingTaskGroup(of: [(UUID, ContinuousClock.Instant)].self) { group in
            for writer in 0..<writers {
                let mine = stride(from: writer, to: runs.count, by: writers).map { ($0, runs[$0]) }
                group.addTask {
                    let connection = try await database.connect()
                    defer { Task { await connection.close() } }
                    var commits: [(UUID, ContinuousClock.Instant)] = []
                    for (index, run) in mine {
                        try await Task.sleep(until: start + interval * index, clock: .continuous)
                        try await connection.query("UPDATE integration_sync_history SET status = 'failed' WHERE id = $1", [run])
                        commits.append((run, .now))
                    }
                    return commits
                }
            }
            var all: [(UUID, ContinuousClock.Instant)] = []
            for try await part in group { all += part }
            return all
        }
        _ = try await waitUntilSent(database: database, runs: runs, alertsPerRun: 1, arrivals: { receiver.arrivalCount + sink.arrivalCount }, alertd: alertd, timeout: .seconds(120))
        let arrivals = channel == "email" ? sink.takeArrivals() : receiver.takeArrivals()
        let alertsByRun = try await database.alertIDs(of: runs, channel: channel)
        let committed = Dictionary(uniqueKeysWithValues: commits)
        var samples: [Double] = []
        for (run, alert) in alertsByRun {
            let key = channel == "email" ? "\(alert.postgresText).1@bench.alertd.test" : "msg_\(alert.postgresText)"
            guard let arrived = arrivals[key], let commit = committed[run] else { continue }
            samples.append((arrived - commit).seconds * 1_000)
        }
        guard samples.count == count else {
            throw BenchCluster.Failure(description: "\(channel) latency: \(samples.count) of \(count) alerts arrived on their first attempt")
        }
        return LatencySummary(samples)
    }

    /// Eight writers commit status changes as fast as they can, `changesPerTransaction` to a
    /// transaction; alerts per second from the first commit to the last alert recorded sent.
    private func throughput(_ integration: UUID, runs count: Int, alertsPerRun: Int, database: BenchDatabase, receiver: BenchReceiver, sink: BenchSMTPSink, alertd: AlertdUnderTest) async throws -> BenchResults.Throughput {
        let runs = try await database.createRuns(integration, count: count)
        let batches = stride(from: 0, to: runs.count, by: options.changesPerTransaction).map { Array(runs[$0..<min($0 + options.changesPerTransaction, runs.count)]) }
        _ = receiver.takeArrivals()
        _ = sink.takeArrivals()
        let start = ContinuousClock.now
        let writing = Task {
            try await database.finish(batches, writers: 8)
            return ContinuousClock.now
        }
        let finished = try await waitUntilSent(database: database, runs: runs, alertsPerRun: alertsPerRun, arrivals: { receiver.arrivalCount + sink.arrivalCount }, alertd: alertd, timeout: .seconds(600))
        let written = try await writing.value
        _ = receiver.takeArrivals()
        _ = sink.takeArrivals()
        return BenchResults.Throughput(alerts: count * alertsPerRun, seconds: (finished - start).seconds, writesPerSecond: Double(count) / (written - start).seconds)
    }

    /// Waits until every alert of `runs` is recorded sent; returns when the database was seen so.
    ///
    /// Counting a phase's alerts costs the database real work (a hundred thousand ids to match),
    /// which would be taken from alertd's share of the two cores. So while `arrivals` (the
    /// receiver's and the sink's count, which costs nothing) is short of the total, the database
    /// is asked only every 5 s, for alerts that ended other than sent; after, every 20 ms.
    private func waitUntilSent(database: BenchDatabase, runs: [UUID], alertsPerRun: Int, arrivals: () -> Int, alertd: AlertdUnderTest, timeout: Duration) async throws -> ContinuousClock.Instant {
        let deadline = ContinuousClock.now + timeout
        let expected = runs.count * alertsPerRun
        var lastAsked: ContinuousClock.Instant?
        var sent = 0
        while true {
            let arrived = arrivals()
            if arrived >= expected || lastAsked.map({ ContinuousClock.now - $0 >= .seconds(5) }) ?? true {
                let other: Int
                (sent, other) = try await database.outcomes(of: runs)
                lastAsked = ContinuousClock.now
                if sent >= expected { return lastAsked! }
                if other > 0 {
                    throw BenchCluster.Failure(description: "\(other) alerts ended other than sent; alertd's log ends:\n\(alertd.logTail)")
                }
            }
            let asked = lastAsked.map { Int((ContinuousClock.now - $0).seconds) } ?? 0
            progress.status("\(arrived)/\(expected) received, \(sent) recorded sent \(asked) s ago, RSS \(String(format: "%.1f", alertd.residentMiB)) MiB")
            if let status = alertd.exitStatus {
                throw BenchCluster.Failure(description: "alertd exited with status \(status) mid-phase; its log ends:\n\(alertd.logTail)")
            }
            if ContinuousClock.now > deadline {
                throw BenchCluster.Failure(description: "only \(sent) of \(expected) alerts were recorded sent within \(timeout)")
            }
            try await Task.sleep(for: arrived >= expected ? .milliseconds(20) : .milliseconds(100))
        }
    }

    /// Writers committing one status change per transaction, alertd not running, in cycles of
    /// rounds taken in turn (five cycles), each round timed once its writers are warm
    /// (`finishTimed`): failures without the trigger (disabled); failures each opening
    /// an incident of its own; the same while a dispatcher waits (the bench's own session holds
    /// the waiting lock, as an idle alertd does, so every transaction notifies); the trigger's
    /// function replaced, in the bench's own cluster, by one that only inserts a constant alert
    /// row (the least any trigger can cost that writes the alert to integration_alert_history in
    /// the writer's transaction); repeated failures of four endpoints whose incidents are open
    /// (the suppression storm: every alert recorded suppressed); and successful runs with and
    /// without the trigger (no incident open, alert_on_success off: the common case). Each
    /// variant's rate is the median of its rounds; each ratio the median of the cycles' ratios,
    /// its two rounds taken seconds apart (the shared machine's speed moves more between cycles
    /// than within one).
    private func triggerCost(database: BenchDatabase) async throws -> TriggerRounds {
        var rates: [TriggerVariant: [Double]] = [:]
        let waiting = AlertStore(connection: try await database.connect(), worker: "bench")
        func triggerFunction() async throws -> String {
            try await database.admin.query("SELECT pg_get_functiondef('public.alertd_enqueue_sync_alerts()'::regprocedure) AS definition")[0].decode("definition")
        }
        let shipped = try await triggerFunction()
        // Grouping as shipped: each failure that opens an incident also looks for its
        // integration's group (the alertd phases before ran with grouping off).
        _ = try await IncidentStore(connection: database.admin, worker: "bench").publish(IncidentSettings())
        let count = options.triggerWriters * options.triggerUpdatesPerWriter
        for round in 0..<(Self.triggerRounds * TriggerVariant.allCases.count) {
            let variant = TriggerVariant.allCases[round % TriggerVariant.allCases.count]
            try await database.admin.execute("ALTER TABLE integration_sync_history \(variant.triggerEnabled ? "ENABLE" : "DISABLE") TRIGGER alertd_enqueue_on_status_change")
            switch variant {
            case .notifying:
                guard try await waiting.takeWaitingLock(timeout: .seconds(10)) else {
                    throw BenchCluster.Failure(description: "the bench could not take the waiting lock")
                }
            case .constantInsert:
                try await database.admin.execute(Self.constantInsertTrigger)
            default:
                break
            }
            let runs = try await database.createRuns(
                database.triggerIntegration,
                count: variant == .repeats ? max(count, options.stormFailures / Self.triggerRounds) : count,
                endpoints: variant == .repeats ? 4 : nil
            )
            let timed = try await database.finishTimed(runs, status: variant.status, writers: options.triggerWriters, warmUp: Self.triggerWarmUp)
            let rate = Double(timed.changes) / timed.seconds
            rates[variant, default: []].append(rate)
            switch variant {
            case .notifying:
                try await waiting.connection.query("SELECT pg_advisory_unlock($1, $2)", [AlertStore.waitingLock.classID, AlertStore.waitingLock.objectID])
            case .constantInsert:
                try await database.admin.execute(shipped)
                guard try await triggerFunction() == shipped else {
                    throw BenchCluster.Failure(description: "the bench could not put the shipped trigger function back")
                }
            default:
                break
            }
            progress.status("\(variant.label): \(Int(rate)) changes/s")
            if variant.triggerEnabled {
                // Their alerts stay out of the count of what must end sent.
                try await database.admin.query("DELETE FROM integration_alert_history WHERE sync_history_id = ANY ($1::uuid[])", [runs])
            }
        }
        await waiting.connection.close()
        try await database.admin.execute("ALTER TABLE integration_sync_history ENABLE TRIGGER alertd_enqueue_on_status_change")
        return TriggerRounds(rates: rates)
    }

    /// Rounds of each variant of the trigger phase, taken in turn.
    static let triggerRounds = 5

    /// Changes each writer of the trigger phase commits before a round is timed.
    static let triggerWarmUp = 10

    /// The trigger phase's rates, changes per second, each variant's in the order of the cycles.
    struct TriggerRounds {
        var rates: [TriggerVariant: [Double]]

        /// The median round: one round slowed by the shared machine moves it least.
        func medianRate(_ variant: TriggerVariant) -> Double {
            Self.median(rates[variant] ?? [])
        }

        /// Each cycle's rate of `variant` against `floor`'s.
        func ratios(_ variant: TriggerVariant, to floor: TriggerVariant) -> [Double] {
            zip(rates[variant] ?? [], rates[floor] ?? []).compactMap { $1 > 0 ? $0 / $1 : nil }
        }

        /// The median over the cycles of `variant`'s rate against `floor`'s in the same cycle.
        func medianRatio(_ variant: TriggerVariant, to floor: TriggerVariant) -> Double {
            Self.median(ratios(variant, to: floor))
        }

        static func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            guard !sorted.isEmpty else { return 0 }
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
    }

    /// How the trigger stands in one round of the trigger phase.
    enum TriggerVariant: CaseIterable {
        case without, newIncidents, notifying, constantInsert, repeats, successesWithout, successes

        var label: String {
            switch self {
            case .without: "failures without the trigger"
            case .newIncidents: "failures, each opening an incident"
            case .notifying: "failures, each opening an incident, a dispatcher waiting"
            case .constantInsert: "failures, a trigger only inserting a constant alert"
            case .repeats: "repeated failures of 4 endpoints (suppressed)"
            case .successesWithout: "successes without the trigger"
            case .successes: "successes with the trigger"
            }
        }

        var triggerEnabled: Bool { self != .without && self != .successesWithout }
        var status: String { self == .successes || self == .successesWithout ? "success" : "failed" }
    }

    /// The trigger function at its least: one constant alert row, nothing looked up, no
    /// notification; still SECURITY DEFINER with a fixed search_path, as a trigger run by the
    /// ETL runner's role must be.
    static let constantInsertTrigger = """
        CREATE OR REPLACE FUNCTION public.alertd_enqueue_sync_alerts()
        RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
        AS $$
        BEGIN
          INSERT INTO public.integration_alert_history
                 (integration_config_id, sync_history_id, alert_type, alert_channel, recipients,
                  sent_at, delivery_status, origin, metadata)
          VALUES (NEW.integration_config_id, NEW.id, 'failure', 'webhook', ARRAY['https://bench.invalid/'],
                  NULL, 'pending', 'trigger', '{}');
          RETURN NULL;
        END
        $$
        """

    // MARK: The harness alone

    /// Webhooks posted with libcurl multi, 64 connections, as fast as the receiver takes them.
    static func measureReceiver(_ receiver: BenchReceiver, requests: Int) async throws -> Double {
        var settings = WebhookClient.Settings()
        settings.concurrency = 64
        settings.perHost = 64
        settings.policy = try DestinationPolicy.parse(allowList: "127.0.0.1")
        let client = WebhookClient(settings: settings)
        let body = Data(#"{"type":"sync.failure","data":{"alert":{"id":"harness"}}}"#.utf8)
        let start = ContinuousClock.now
        let delivered = await withTaskGroup(of: Bool.self) { group in
            var inFlight = 0
            var delivered = 0
            for index in 0..<requests {
                if inFlight >= 256, let ok = await group.next() {
                    inFlight -= 1
                    if ok { delivered += 1 }
                }
                group.addTask {
                    let response = await client.send(WebhookRequest(url: "http://127.0.0.1:\(receiver.port)/harness", body: body, headers: [("Content-Type", "application/json"), ("webhook-id", "harness_\(index)")]))
                    if case .answered(200, _, _) = response { return true }
                    return false
                }
                inFlight += 1
            }
            for await ok in group where ok { delivered += 1 }
            return delivered
        }
        let seconds = (ContinuousClock.now - start).seconds
        _ = receiver.takeArrivals()
        guard delivered == requests else { throw BenchCluster.Failure(description: "the receiver answered \(delivered) of \(requests) requests") }
        return Double(requests) / seconds
    }

    /// Messages sent with libesmtp, a thousand to a session, as fast as the sink takes them.
    static func measureSink(_ sink: BenchSMTPSink, messages: Int) async throws -> Double {
        let parsed = SMTPSettings.parse(url: "smtp://127.0.0.1:\(sink.port)", from: "harness@bench.alertd.test", tls: "none", caFile: nil, allowInsecureAuth: false, timeout: .seconds(30))
        guard let settings = parsed.settings else { throw BenchCluster.Failure(description: parsed.problems.joined(separator: "; ")) }
        let client = SMTPClient(settings: settings)
        let start = ContinuousClock.now
        var accepted = 0
        for session in stride(from: 0, to: messages, by: 1_000) {
            let batch = (session..<min(session + 1_000, messages)).map { index in
                EmailMessage(from: settings.from, to: ["ops@example.com"], subject: "harness \(index)", text: "A sync run failed.", html: "<p>A sync run failed.</p>", messageID: "harness-\(index)@alertd", date: Date())
            }
            let results = await client.send(batch)
            accepted += results.filter { $0.message?.isSuccess == true }.count
        }
        let seconds = (ContinuousClock.now - start).seconds
        _ = sink.takeArrivals()
        guard accepted == messages else { throw BenchCluster.Failure(description: "the SMTP sink accepted \(accepted) of \(messages) messages") }
        return Double(messages) / seconds
    }
}

/// The alertd processes a bench started, to kill when a phase fails.
actor LaunchedProcesses {
    private var processes: [AlertdUnderTest] = []

    func add(_ alertd: AlertdUnderTest) {
        processes.append(alertd)
    }

    /// SIGKILLs those still running (an ended one's pid may belong to another process by now).
    func killAll() {
        for alertd in processes where alertd.exitStatus == nil { kill(alertd.process.pid, SIGKILL) }
        processes = []
    }
}
