import AlertdPostgres
import AlertdSupport
import AlertdTestSupport
import Foundation

/// The fault suite's own PostgreSQL cluster (deploy/dev/pg.sh in a directory of its own), which
/// scenarios may stop and start.
struct FaultCluster: Sendable {
    let directory: String
    let url: String

    static func start() async throws -> FaultCluster {
        let directory = FileManager.default.temporaryDirectory.appending(path: "alertd-faults-pg-\(UUID().uuidString.prefix(8))").path
        let url = try await pg(directory, ["start"])
        return FaultCluster(directory: directory, url: url)
    }

    /// Stops the server (`fast` or `immediate`), waits `down`, and starts it again on its port.
    func restart(mode: String, down: Duration) async throws {
        _ = try await Self.pg(directory, ["stop", mode])
        try await Task.sleep(for: down)
        _ = try await Self.pg(directory, ["start"])
    }

    func destroy() async {
        _ = try? await Self.pg(directory, ["destroy"])
    }

    @discardableResult
    private static func pg(_ directory: String, _ arguments: [String]) async throws -> String {
        try await runScript("pg.sh", directoryVariable: "ALERTD_PG_DIR", directory: directory, arguments)
    }

    /// Runs a deploy/dev script with its output in files, not pipes: the server it starts would
    /// inherit a pipe and hold it open, and a reader would wait for its end forever.
    static func runScript(_ name: String, directoryVariable: String, directory: String, _ arguments: [String], environment extra: [String: String] = [:]) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result {
                    let script = TestPostgres.packageRoot.appending(path: "deploy/dev/\(name)").path
                    let out = FileManager.default.temporaryDirectory.appending(path: "alertd-faults-pg-\(UUID().uuidString).out")
                    let err = out.appendingPathExtension("err")
                    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
                    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
                    defer {
                        try? FileManager.default.removeItem(at: out)
                        try? FileManager.default.removeItem(at: err)
                    }
                    var environment = ProcessInfo.processInfo.environment
                    environment[directoryVariable] = directory
                    environment.merge(extra) { $1 }
                    let status = try ChildProcess.spawn("/bin/bash", [script] + arguments, environment: environment, output: out.path, error: err.path).waitBlocking()
                    let output = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
                    guard status == 0 else {
                        throw TestSetupError("\(name) \(arguments.joined(separator: " ")) failed: \((try? String(contentsOf: err, encoding: .utf8)) ?? "")")
                    }
                    return output.trimmingCharacters(in: .whitespacesAndNewlines)
                })
            }.start()
        }
    }

    /// Sends `signal` to the server process serving the backend `pid` (SIGSTOP, SIGCONT).
    static func signalBackend(_ pid: Int32, _ signal: Int32) -> Bool {
        kill(pid, signal) == 0
    }
}

/// The fault suite's own Postfix (deploy/dev/postfix.sh in a directory of its own): STARTTLS and
/// SASL AUTH required, relaying what it accepts to a sink whose log the suite counts. Scenarios
/// may stop and start it.
struct FaultPostfix: Sendable {
    let directory: String
    let server: TestPostfix

    static func start() async throws -> FaultPostfix {
        let directory = FileManager.default.temporaryDirectory.appending(path: "alertd-faults-postfix-\(UUID().uuidString.prefix(8))").path
        let output = try await FaultCluster.runScript("postfix.sh", directoryVariable: "ALERTD_POSTFIX_DIR", directory: directory, ["start"])
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { setenv(parts[0], parts[1], 1) }
        }
        return FaultPostfix(directory: directory, server: try TestPostfix.fromEnvironment())
    }

    func stop() async throws {
        _ = try await FaultCluster.runScript("postfix.sh", directoryVariable: "ALERTD_POSTFIX_DIR", directory: directory, ["stop"])
    }

    func start() async throws {
        _ = try await FaultCluster.runScript("postfix.sh", directoryVariable: "ALERTD_POSTFIX_DIR", directory: directory, ["start"])
    }

    func destroy() async {
        _ = try? await FaultCluster.runScript("postfix.sh", directoryVariable: "ALERTD_POSTFIX_DIR", directory: directory, ["destroy"])
    }
}

/// Peak resident memory and open file descriptors of the alertd processes it watches, sampled
/// from /proc on a thread of its own every 100 ms (and whenever asked).
final class ResourceSampler: @unchecked Sendable {
    // Invariant: every property is read and written with `lock` held.
    private let lock = NSLock()
    private var pids: Set<Int32> = []
    private var peakRSSKiB = 0
    private var peakFDs = 0
    private var running = true

    init() {
        Thread { [self] in
            while lock.withLock({ running }) {
                sampleNow()
                Thread.sleep(forTimeInterval: 0.1)
            }
        }.start()
    }

    func watch(_ pid: Int32) { lock.withLock { _ = pids.insert(pid) } }
    func forget(_ pid: Int32) { lock.withLock { _ = pids.remove(pid) } }
    func stop() { lock.withLock { running = false } }

    func sampleNow() {
        for pid in lock.withLock({ pids }) {
            var rss = 0
            if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
               let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) {
                rss = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
            }
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
            lock.withLock {
                peakRSSKiB = max(peakRSSKiB, rss)
                peakFDs = max(peakFDs, fds)
            }
        }
    }

    var peakRSSMiB: Double { lock.withLock { Double(peakRSSKiB) / 1024 } }
    var peakOpenFiles: Int { lock.withLock { peakFDs } }
}

/// What a scenario found, from the database and from what the receivers got.
struct Verdict: Sendable, Codable {
    var scenario: String
    var description: String
    var events = 0
    var faults: [String] = []
    var alerts = 0
    var alertsMissing = 0
    var alertsUnexpected = 0
    var alertsDuplicatedInDatabase = 0
    var sent = 0
    var failedFinal = 0
    var pending = 0
    var pendingPastSchedule = 0
    /// Alerts expected to be delivered that no receiver got.
    var lost = 0
    /// Deliveries beyond the first, and how many of those no crash explains.
    var duplicates = 0
    var unexplainedDuplicates = 0
    /// Duplicates whose first copy reached a receiver that was killed before it could answer.
    var duplicatesCutByAKill = 0
    var peakRSSMiB = 0.0
    var peakOpenFiles = 0
    var seconds = 0.0
    /// Particular checks of the scenario, by name: true when they held.
    var checks: [String: Bool] = [:]
    var notes: [String] = []
    var problems: [String] = []

    var passed: Bool { problems.isEmpty }

    init(scenario: String, description: String) {
        self.scenario = scenario
        self.description = description
    }

    mutating func check(_ name: String, _ holds: Bool, _ detail: String = "") {
        checks[name] = holds
        if !holds { problems.append(name + (detail.isEmpty ? "" : ": " + detail)) }
    }
}

extension Trial {
    /// The standard checks: every alert that should exist exists once; each was delivered (all
    /// of them, or those `deliverable` selects); duplicates only where an attempt went unrecorded
    /// because an instance died (when `crashes`), none otherwise; nothing pending past its time.
    /// How long before a receiver's kill a delivery it stored may have gone unanswered.
    static let killAnswerWindow = 1.0

    /// `deliverable` says which alerts must reach a receiver; a suppressed one (an incident's
    /// repeat) never does.
    func judge(_ verdict: inout Verdict, crashes: Bool, deliverable: String = "true") async throws {
        let counts = try await Trial.persevering { try await self.owner.query(
            """
            WITH expected AS (
              SELECT h.id AS sync_id, t.alert_type, ch.channel
                FROM integration_sync_history h
                JOIN integration_configs c ON c.id = h.integration_config_id
               -- A success that closed an endpoint's failure incident has a recovery notice instead
               -- (one that started a run of an overdue endpoint has its own alerts and the sweep's
               -- notice besides).
               CROSS JOIN LATERAL (SELECT CASE h.status WHEN 'failed' THEN 'failure' WHEN 'partial' THEN 'warning'
                                                         WHEN 'success' THEN CASE WHEN EXISTS (SELECT 1 FROM integration_alert_incidents n WHERE n.resolved_by_sync_id = h.id AND n.kind = 'run')
                                                                                  THEN 'recovery' ELSE 'success' END END AS alert_type) t
               CROSS JOIN LATERAL (VALUES ('email'), ('webhook')) ch(channel)
               WHERE t.alert_type IS NOT NULL
                 AND CASE t.alert_type WHEN 'success' THEN c.alert_on_success WHEN 'recovery' THEN true ELSE c.alert_on_failure END
                 AND CASE ch.channel WHEN 'email' THEN cardinality(c.alert_emails) > 0 ELSE c.alert_webhook_url IS NOT NULL END
            ), actual AS (
              SELECT sync_history_id AS sync_id, alert_type, alert_channel AS channel, count(*) AS n
                FROM integration_alert_history WHERE origin = 'trigger' GROUP BY 1, 2, 3
            )
            SELECT (SELECT count(*) FROM expected)::int AS expected,
                   (SELECT count(*) FROM expected e LEFT JOIN actual a USING (sync_id, alert_type, channel) WHERE a.n IS NULL)::int AS missing,
                   (SELECT count(*) FROM actual a LEFT JOIN expected e USING (sync_id, alert_type, channel) WHERE e.sync_id IS NULL)::int AS unexpected,
                   (SELECT coalesce(sum(n - 1), 0) FROM actual WHERE n > 1)::int AS duplicated,
                   (SELECT count(*) FROM integration_alert_history WHERE delivery_status IN ('sent', 'suppressed'))::int AS sent,
                   (SELECT count(*) FROM integration_alert_history WHERE delivery_status IN ('failed', 'bounced'))::int AS failed,
                   (SELECT count(*) FROM integration_alert_history WHERE delivery_status = 'pending')::int AS pending,
                   (SELECT count(*) FROM integration_alert_history
                     WHERE delivery_status = 'pending'
                       AND greatest(next_attempt_at, coalesce(locked_until, next_attempt_at)) < now() - interval '10 seconds')::int AS overdue
            """
        ) }[0]
        verdict.alerts = try counts.decode("expected")
        verdict.alertsMissing = try counts.decode("missing")
        verdict.alertsUnexpected = try counts.decode("unexpected")
        verdict.alertsDuplicatedInDatabase = try counts.decode("duplicated")
        verdict.sent = try counts.decode("sent")
        verdict.failedFinal = try counts.decode("failed")
        verdict.pending = try counts.decode("pending")
        verdict.pendingPastSchedule = try counts.decode("overdue")

        let rows = try await Trial.persevering { try await self.owner.query(
            """
            SELECT a.id, a.alert_channel, (\(deliverable)) AND a.delivery_status <> 'suppressed' AS deliverable, a.attempt_count,
                   (SELECT count(*) FROM integration_alert_attempts t WHERE t.alert_id = a.id)::int AS recorded,
                   (a.metadata -> 'group_message' ->> 'carried_by')::uuid AS carried_by
              FROM integration_alert_history a
            """
        ) }
        let webhooks = try webhookReceipts()
        let emails = try emailReceipts()
        for row in rows {
            // An alert of a group arrives in the message of the alert that carried it (that
            // alert's webhook-id and Message-ID; the message lists every alert it carries).
            let own: UUID = try row.decode("id")
            let carrier: UUID? = try row.decode("carried_by")
            let id = carrier ?? own
            let channel: String = try row.decode("alert_channel")
            let received = (channel == "email" ? emails[id] : webhooks[id])?.count ?? 0
            if try row.decode("deliverable", as: Bool.self), received == 0 { verdict.lost += 1 }
            // A message received twice is counted once, at the alert that carried it.
            if received > 1, carrier == nil || carrier == own {
                verdict.duplicates += received - 1
                let unrecorded = try row.decode("attempt_count", as: Int.self) - row.decode("recorded", as: Int.self)
                // A receiver killed after it had stored a delivery and before it answered makes
                // alertd try again, rightly: at-least-once is the contract.
                let first = (channel == "email" ? emails[id] : webhooks[id])?.min() ?? 0
                let cutByAKill = receiverKills.contains { $0 >= first && $0 - first < Self.killAnswerWindow }
                if cutByAKill {
                    verdict.duplicatesCutByAKill += received - 1
                } else if !crashes || unrecorded < 1 {
                    verdict.unexplainedDuplicates += received - 1
                    if verdict.unexplainedDuplicates <= 3 {
                        let times = ((channel == "email" ? emails[id] : webhooks[id]) ?? []).sorted().map { String(format: "%.3f", $0) }
                        verdict.notes.append("unexplained: \(channel) alert \(id) received at \(times.joined(separator: ", ")) (receivers killed at \(receiverKills.map { String(format: "%.3f", $0) })), attempts \(try row.decode("attempt_count", as: Int.self)), recorded \(try row.decode("recorded", as: Int.self))")
                    }
                }
            }
        }
        if verdict.duplicatesCutByAKill > 0 {
            verdict.notes.append("\(verdict.duplicatesCutByAKill) duplicates: their first copy reached a receiver killed less than \(Self.killAnswerWindow) s later, before it answered")
        }
        verdict.peakRSSMiB = sampler.peakRSSMiB
        verdict.peakOpenFiles = sampler.peakOpenFiles

        let v = verdict
        verdict.check("every alert that should exist exists", v.alertsMissing == 0, "\(v.alertsMissing) missing")
        verdict.check("no alert exists that should not", v.alertsUnexpected == 0, "\(v.alertsUnexpected) unexpected")
        verdict.check("no alert exists twice", v.alertsDuplicatedInDatabase == 0, "\(v.alertsDuplicatedInDatabase) extra rows")
        verdict.check("every alert delivered at least once", v.lost == 0, "\(v.lost) never received")
        verdict.check(crashes ? "duplicates only where a crash cut an attempt short" : "no alert delivered twice", v.unexplainedDuplicates == 0, "\(v.unexplainedDuplicates) unexplained")
        verdict.check("nothing pending past its schedule", v.pendingPastSchedule == 0, "\(v.pendingPastSchedule) overdue")
        verdict.check("peak RSS under 200 MiB", v.peakRSSMiB < 200, String(format: "%.1f MiB", v.peakRSSMiB))
        verdict.check("peak open files under 256", v.peakOpenFiles < 256, "\(v.peakOpenFiles)")
        let dead = instances.filter { !$0.value.isRunning }.map(\.key)
        verdict.check("alertd kept running (no instance died on its own)", dead.isEmpty, "stopped: \(dead.joined(separator: ", "))")
        let output = alertdOutput
        verdict.check("no secret in alertd's output", !output.contains(TestPostgres.password) && !output.contains(options.alertdRole?.password ?? TestPostgres.password))
    }
}

extension Trial {
    /// The incidents' own checks: every incident's news went out once per channel and every
    /// repeat was suppressed, every closed incident's recovery notice once per channel, and one
    /// reminder per channel for each the incident counts: none lost, none queued twice by two
    /// instances.
    func judgeIncidents(_ verdict: inout Verdict, reminders expectReminders: Bool = true) async throws {
        let row = try await Trial.persevering { try await self.owner.query(
            """
            WITH per AS (
              SELECT n.id, n.resolved_at IS NOT NULL AS closed, n.reminders_sent, ch.channel,
                     count(a.id) FILTER (WHERE a.alert_type = 'failure' AND a.delivery_status <> 'suppressed') AS news,
                     count(a.id) FILTER (WHERE a.alert_type = 'recovery') AS recoveries,
                     count(a.id) FILTER (WHERE a.alert_type = 'reminder') AS reminders
                FROM integration_alert_incidents n
               CROSS JOIN (VALUES ('email'), ('webhook')) ch(channel)
                LEFT JOIN integration_alert_history a ON a.incident_id = n.id AND a.alert_channel = ch.channel
               GROUP BY n.id, ch.channel
            )
            SELECT count(DISTINCT id)::int AS incidents,
                   count(DISTINCT id) FILTER (WHERE closed)::int AS closed,
                   count(*) FILTER (WHERE news = 0)::int AS news_missing,
                   coalesce(sum(news - 1) FILTER (WHERE news > 1), 0)::int AS news_doubled,
                   count(*) FILTER (WHERE closed AND recoveries = 0)::int AS recovery_missing,
                   coalesce(sum(recoveries - 1) FILTER (WHERE recoveries > 1), 0)::int AS recovery_doubled,
                   count(*) FILTER (WHERE NOT closed AND recoveries > 0)::int AS recovery_while_open,
                   coalesce(sum(reminders), 0)::int AS reminders,
                   count(*) FILTER (WHERE reminders <> reminders_sent)::int AS reminders_miscounted,
                   (SELECT count(*) FROM integration_alert_history WHERE delivery_status = 'suppressed')::int AS suppressed,
                   (SELECT count(*) FROM integration_alert_history WHERE alert_type = 'failure' AND incident_id IS NULL)::int AS outside
              FROM per
            """
        ) }[0]
        func number(_ column: String) throws -> Int { try row.decode(column, as: Int.self) }
        let incidents = try number("incidents"), closed = try number("closed"), reminders = try number("reminders")
        let newsMissing = try number("news_missing"), newsDoubled = try number("news_doubled")
        let recoveryMissing = try number("recovery_missing"), recoveryDoubled = try number("recovery_doubled")
        let recoveryWhileOpen = try number("recovery_while_open"), miscounted = try number("reminders_miscounted")
        let outside = try number("outside")
        verdict.notes.append("\(incidents) incidents (\(closed) closed), \(try number("suppressed")) alerts suppressed, \(reminders) reminders")
        verdict.check("incidents were opened and closed", incidents > 0 && closed == incidents, "\(closed) of \(incidents) closed")
        verdict.check("every incident's news queued once per channel", newsMissing == 0 && newsDoubled == 0, "\(newsMissing) missing, \(newsDoubled) doubled")
        verdict.check("every closed incident's recovery notice queued once per channel", recoveryMissing == 0 && recoveryDoubled == 0 && recoveryWhileOpen == 0,
                      "\(recoveryMissing) missing, \(recoveryDoubled) doubled, \(recoveryWhileOpen) while open")
        verdict.check("one reminder per channel for each the incident counts (no instance reminded twice)", miscounted == 0, "\(miscounted) incident-channels miscounted")
        if expectReminders {
            verdict.check("reminders were sent while instances were killed", reminders > 0, "none")
        }
        verdict.check("every failure belongs to an incident", outside == 0, "\(outside) outside")
    }
}

extension Trial {
    /// Grouping's own checks: the held news of each group went out folded into messages that
    /// carry only that group's alerts, and most groups as one message per channel (a group goes
    /// out as two when a kill cut its message short and its lease ran out, or when two writers
    /// opened an integration's first incidents at the same instant).
    func judgeGroups(_ verdict: inout Verdict) async throws {
        let row = try await Trial.persevering { try await self.owner.query(
            """
            WITH held AS (
              SELECT a.metadata ->> 'group' AS grp, a.alert_channel AS channel, a.id,
                     coalesce(a.metadata -> 'group_message' ->> 'carried_by', a.id::text) AS message
                FROM integration_alert_history a
               WHERE a.metadata ? 'group' AND a.delivery_status = 'sent'
            ), per AS (
              SELECT grp, channel, count(*) AS alerts, count(DISTINCT message) AS messages FROM held GROUP BY 1, 2
            )
            SELECT (SELECT count(*) FROM per)::int AS groups,
                   (SELECT count(*) FROM per WHERE messages = 1 AND alerts > 1)::int AS whole,
                   (SELECT coalesce(sum(alerts), 0) FROM per)::int AS held,
                   (SELECT count(*) FROM (SELECT message FROM held GROUP BY message HAVING count(DISTINCT grp) > 1) m)::int AS mixed,
                   (SELECT count(*) FROM integration_alert_history a
                     WHERE a.metadata -> 'group_message' ->> 'carried_by' IS NOT NULL
                       AND NOT a.metadata ? 'group')::int AS carried_unheld
            """
        ) }[0]
        let groups: Int = try row.decode("groups"), whole: Int = try row.decode("whole")
        let mixed: Int = try row.decode("mixed"), carriedUnheld: Int = try row.decode("carried_unheld")
        verdict.notes.append("\(groups) groups (per channel) of \(try row.decode("held", as: Int.self)) held alerts; \(whole) sent as one message")
        verdict.check("news was held and grouped", groups > 0 && whole > 0, "\(whole) of \(groups) whole")
        verdict.check("most groups (80 %) went out as one message per channel", whole * 10 >= groups * 8, "\(whole) of \(groups)")
        verdict.check("no message carried another group's alerts, nor an alert that was not held", mixed == 0 && carriedUnheld == 0, "\(mixed) mixed, \(carriedUnheld) not held")
    }
}

/// Prints a line at once, also when standard output is a pipe or a file.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

extension Trial {
    /// Silent failures' own checks: each overdue endpoint and stuck run told once per channel,
    /// not before its grace had passed and within `sweep` seconds (and a margin for the kills)
    /// after; each closed with one notice per channel; nothing else told.
    func judgeSilence(_ verdict: inout Verdict, overdue expectedOverdue: Int, stuck expectedStuck: Int, grace: Double, sweep: Double) async throws {
        let row = try await Trial.persevering { try await self.owner.query(
            """
            WITH per AS (
              SELECT i.id, i.kind, i.resolved_at IS NOT NULL AS closed, ch.channel,
                     count(a.id) FILTER (WHERE a.alert_type IN ('overdue', 'stuck')) AS news,
                     count(a.id) FILTER (WHERE a.alert_type = 'recovery') AS notices,
                     extract(epoch FROM i.opened_at - CASE i.kind WHEN 'overdue' THEN i.expected_at
                                                        ELSE (SELECT h.sync_started_at AT TIME ZONE 'UTC' FROM integration_sync_history h WHERE h.id = i.opened_by_sync_id) END)::float8 - $1 AS late
                FROM integration_alert_incidents i
               CROSS JOIN (VALUES ('email'), ('webhook')) ch(channel)
                LEFT JOIN integration_alert_history a ON a.incident_id = i.id AND a.alert_channel = ch.channel
               WHERE i.kind <> 'run'
               GROUP BY i.id, ch.channel
            )
            SELECT count(DISTINCT id) FILTER (WHERE kind = 'overdue')::int AS overdue,
                   count(DISTINCT id) FILTER (WHERE kind = 'stuck')::int AS stuck,
                   count(DISTINCT id) FILTER (WHERE closed)::int AS closed,
                   count(*) FILTER (WHERE news <> 1)::int AS news_wrong,
                   count(*) FILTER (WHERE notices <> 1)::int AS notices_wrong,
                   coalesce(min(late), 0)::float8 AS earliest, coalesce(max(late), 0)::float8 AS latest
              FROM per
            """,
            [grace]
        ) }[0]
        let overdue: Int = try row.decode("overdue"), stuck: Int = try row.decode("stuck"), closed: Int = try row.decode("closed")
        let newsWrong: Int = try row.decode("news_wrong"), noticesWrong: Int = try row.decode("notices_wrong")
        let earliest: Double = try row.decode("earliest"), latest: Double = try row.decode("latest")
        verdict.notes.append(String(format: "%d overdue endpoints and %d stuck runs told %.1f to %.1f s after their grace ended", overdue, stuck, earliest, latest))
        verdict.check("every overdue endpoint and stuck run found, and nothing else", overdue == expectedOverdue && stuck == expectedStuck,
                      "\(overdue) of \(expectedOverdue) overdue, \(stuck) of \(expectedStuck) stuck")
        verdict.check("each told once per channel (no instance told one twice, none lost to a kill)", newsWrong == 0, "\(newsWrong) incident-channels wrong")
        verdict.check("each closed with one notice per channel when the runner was back", closed == overdue + stuck && noticesWrong == 0,
                      "\(closed) closed, \(noticesWrong) incident-channels wrong")
        // Within the grace: never before it ended, and at most a sweep (and the kills' delay:
        // a sweep cut short, the other instance's next one) after.
        verdict.check("none told before its grace ended", earliest >= -0.5, String(format: "%.1f s early", -earliest))
        verdict.check("each told within \(Int(sweep)) s of its grace's end, kills and all (10 s margin)", latest <= sweep + 10, String(format: "%.1f s late", latest))
    }
}
