import AlertdPostgres
import Foundation

/// Percentiles of a set of durations, in milliseconds.
public struct LatencySummary: Sendable, Equatable {
    public var count: Int
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var max: Double

    /// Nearest-rank percentiles of `samples` (milliseconds).
    public init(_ samples: [Double]) {
        let sorted = samples.sorted()
        func rank(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let index = Swift.max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1)
            return sorted[Swift.min(index, sorted.count - 1)]
        }
        count = sorted.count
        p50 = rank(0.50)
        p90 = rank(0.90)
        p99 = rank(0.99)
        max = sorted.last ?? 0
    }

    var json: [String: Any] { ["p50": round2(p50), "p90": round2(p90), "p99": round2(p99), "max": round2(max), "count": count] }
}

func round2(_ value: Double) -> Double { (value * 100).rounded() / 100 }

/// What one run of `alertd bench` measured.
public struct BenchResults: Sendable {
    public struct Throughput: Sendable {
        /// Alerts delivered (and recorded as sent).
        public var alerts: Int
        public var seconds: Double
        /// Sync-run changes committed per second by the writers meanwhile.
        public var writesPerSecond: Double
        public var perSecond: Double { seconds > 0 ? Double(alerts) / seconds : 0 }
    }

    public var cores = ProcessInfo.processInfo.activeProcessorCount
    /// The phases run: latency, throughput, backlog, trigger, sweep.
    public var phases: Set<String> = ["latency", "throughput", "backlog", "trigger", "sweep"]
    /// The silent-failure sweep on a large platform, when that phase ran.
    public var sweep: Benchmark.SweepCost?
    public var receiverRequestsPerSecond = 0.0
    public var sinkMessagesPerSecond = 0.0
    public var offeredRate = 0
    public var webhookLatency = LatencySummary([])
    public var emailLatency = LatencySummary([])
    public var webhooks = Throughput(alerts: 0, seconds: 0, writesPerSecond: 0)
    public var emails = Throughput(alerts: 0, seconds: 0, writesPerSecond: 0)
    public var mix = Throughput(alerts: 0, seconds: 0, writesPerSecond: 0)
    public var backlogAlerts = 0
    public var backlogDrainSeconds = 0.0
    public var writers = 0
    /// Failures with the shipped trigger, the phase's workload since it was written: a few
    /// endpoints failing again and again. With incidents each is a repeat, recorded suppressed.
    public var writesWithTrigger = 0.0
    /// Failures each opening an incident of its own: news, one pending alert each.
    public var writesNewIncidents = 0.0
    public var writesWithoutTrigger = 0.0
    /// With the trigger while a dispatcher waits: every transaction notifies.
    public var writesWithTriggerNotifying = 0.0
    /// With a trigger that only inserts one constant alert row: the least any trigger can cost
    /// that writes the alert to integration_alert_history in the writer's transaction.
    public var writesWithConstantInsert = 0.0
    /// Successful runs, no incident open and alert_on_success off, with and without the trigger.
    public var successesWithTrigger = 0.0
    public var successesWithoutTrigger = 0.0
    public var rssIdleMiB = 0.0
    public var rssPeakMiB = 0.0
    public var cpuSecondsPer1000 = 0.0
    /// PostgreSQL's CPU (every server process) per 1,000 deliveries of the backlog.
    public var postgresCPUSecondsPer1000 = 0.0
    /// alertd's statements while the backlog drained, costliest first (`--statements`).
    public var backlogStatements: [StatementCost] = []
    /// Alerts the run expected to end sent, and those that did.
    public var expectedSent = 0
    public var sent = 0

    // The trigger phase's ratios: each the median over its cycles of the two rates measured in
    // the same cycle, seconds apart (so not always the ratio of the two median rates above).
    /// Repeated failures against failures without the trigger.
    public var triggerRatio = 0.0
    public var notifyingTriggerRatio = 0.0
    public var constantInsertRatio = 0.0
    /// The shipped trigger's cost against the least the outbox contract allows, measured in the
    /// same run: what the owners' target (≥ 0.85) applies to.
    public var triggerAgainstFloorRatio = 0.0
    /// Each cycle's repeated failures against its constant insert, in the order measured.
    public var triggerAgainstFloorCycles: [Double] = []
    /// Failures each opening an incident against the constant insert.
    public var newIncidentsAgainstFloorRatio = 0.0
    /// What the trigger costs a successful run that changes no incident.
    public var successRatio = 0.0

    /// One JSON object: the keys docs/benchmarks.md lists.
    public var json: [String: Any] {
        [
            "machine_cores": cores,
            "phases": phases.sorted(),
            "harness": ["receiver_requests_per_s": receiverRequestsPerSecond.rounded(), "smtp_sink_messages_per_s": sinkMessagesPerSecond.rounded()],
            "offered_rate_per_s": offeredRate,
            "webhook_latency_ms": webhookLatency.json,
            "email_latency_ms": emailLatency.json,
            "webhook_deliveries_per_s": webhooks.perSecond.rounded(),
            "email_messages_per_s": emails.perSecond.rounded(),
            "mix_deliveries_per_s": mix.perSecond.rounded(),
            "sustained_writer_changes_per_s": ["webhook": webhooks.writesPerSecond.rounded(), "email": emails.writesPerSecond.rounded(), "mix": mix.writesPerSecond.rounded()],
            "backlog_alerts": backlogAlerts,
            "backlog_drain_s": round2(backlogDrainSeconds),
            "backlog_100k_drain_s": backlogAlerts == 100_000 ? round2(backlogDrainSeconds) as Any : NSNull(),
            "trigger_writers": writers,
            "writes_per_s_with_trigger": writesWithTrigger.rounded(),
            "writes_per_s_without_trigger": writesWithoutTrigger.rounded(),
            "trigger_writer_throughput_ratio": round2(triggerRatio),
            "writes_per_s_with_trigger_notifying": writesWithTriggerNotifying.rounded(),
            "trigger_writer_throughput_ratio_notifying": round2(notifyingTriggerRatio),
            "writes_per_s_with_constant_insert": writesWithConstantInsert.rounded(),
            "trigger_writer_throughput_ratio_constant_insert": round2(constantInsertRatio),
            "trigger_ratio_against_constant_insert": round2(triggerAgainstFloorRatio),
            "trigger_ratio_against_constant_insert_cycles": triggerAgainstFloorCycles.map(round2),
            "writes_per_s_new_incidents": writesNewIncidents.rounded(),
            "new_incidents_ratio_against_constant_insert": round2(newIncidentsAgainstFloorRatio),
            "successes_per_s_with_trigger": successesWithTrigger.rounded(),
            "successes_per_s_without_trigger": successesWithoutTrigger.rounded(),
            "trigger_writer_throughput_ratio_success": round2(successRatio),
            "rss_idle_mib": round2(rssIdleMiB),
            "rss_peak_mib": round2(rssPeakMiB),
            "cpu_s_per_1000_deliveries": round2(cpuSecondsPer1000),
            "postgres_cpu_s_per_1000_deliveries": round2(postgresCPUSecondsPer1000),
            "backlog_statements": backlogStatements.map { $0.json(deliveries: backlogAlerts) },
            "sweep_endpoints": sweep?.endpoints as Any? ?? NSNull(),
            "sweep_runs": sweep?.runs as Any? ?? NSNull(),
            "sweep_first_s": sweep.map { round2($0.firstSeconds) } as Any? ?? NSNull(),
            "sweep_find_all_s": sweep.map { round2($0.findAllSeconds) } as Any? ?? NSNull(),
            "sweep_overdue_found": sweep?.overdueFound as Any? ?? NSNull(),
            "sweep_stuck_found": sweep?.stuckFound as Any? ?? NSNull(),
            "sweep_quiet_ms": sweep.map { round2($0.quietMilliseconds) } as Any? ?? NSNull(),
            "sweep_minute_later_ms": sweep.map { round2($0.minuteLaterMilliseconds) } as Any? ?? NSNull(),
            "sweep_minute_later_lookups": sweep?.minuteLaterLookups as Any? ?? NSNull(),
            "alerts_expected_sent": expectedSent,
            "alerts_sent": sent,
        ]
    }

    public var jsonText: String {
        let data = (try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .prettyPrinted])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// The table printed at the end, each figure beside its target.
    public var table: String { table(baseline: nil) }

    /// The table, with `baseline`'s figures (an earlier run's) and the ratios this / baseline
    /// beside this run's.
    public func table(baseline: Baseline?) -> String {
        func number(_ value: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", value) }
        func verdict(_ holds: Bool) -> String { holds ? "met" : "MISSED" }
        var rows: [(String, String, String, String)] = [
            ("webhook latency at \(offeredRate)/s, p50 / p99", "\(number(webhookLatency.p50, 1)) / \(number(webhookLatency.p99, 1)) ms", "≤ 5 / ≤ 25 ms", verdict(webhookLatency.p50 <= 5 && webhookLatency.p99 <= 25)),
            ("webhook latency p90 / max", "\(number(webhookLatency.p90, 1)) / \(number(webhookLatency.max, 1)) ms", "", ""),
            ("email latency at \(offeredRate)/s, p50 / p90 / p99 / max", "\(number(emailLatency.p50, 1)) / \(number(emailLatency.p90, 1)) / \(number(emailLatency.p99, 1)) / \(number(emailLatency.max, 1)) ms", "", ""),
            ("webhooks sustained", "\(number(webhooks.perSecond))/s", "≥ 3000/s", verdict(webhooks.perSecond >= 3_000)),
            ("email sustained", "\(number(emails.perSecond))/s", "≥ 1000/s", verdict(emails.perSecond >= 1_000)),
            ("mix (email + webhook) sustained", "\(number(mix.perSecond))/s", "", ""),
            ("writers' changes meanwhile: webhook / email / mix", "\(number(webhooks.writesPerSecond)) / \(number(emails.writesPerSecond)) / \(number(mix.writesPerSecond)) per s", "", ""),
            ("backlog of \(backlogAlerts) drained", "\(number(backlogDrainSeconds, 1)) s", backlogAlerts == 100_000 ? "≤ 40 s" : "(100,000 for the target)", backlogAlerts == 100_000 ? verdict(backlogDrainSeconds <= 40) : ""),
            ("writers' throughput with / without trigger (\(writers) writers, repeated failures)", "\(number(triggerRatio, 2)) (\(number(writesWithTrigger)) / \(number(writesWithoutTrigger)) per s)", "", ""),
            ("writers' throughput, trigger only inserting a constant alert", "\(number(constantInsertRatio, 2)) (\(number(writesWithConstantInsert)) per s)", "", ""),
            ("writers' throughput, trigger against the constant insert", number(triggerAgainstFloorRatio, 2), "≥ 0.85", verdict(triggerAgainstFloorRatio >= 0.85)),
            ("writers' throughput, each failure a new incident, against the constant insert", "\(number(newIncidentsAgainstFloorRatio, 2)) (\(number(writesNewIncidents)) per s)", "", ""),
            ("writers' throughput, new incidents while a dispatcher waits (each notifies)", "\(number(notifyingTriggerRatio, 2)) (\(number(writesWithTriggerNotifying)) per s)", "", ""),
            ("writers' throughput, successes with / without trigger", "\(number(successRatio, 2)) (\(number(successesWithTrigger)) / \(number(successesWithoutTrigger)) per s)", "", ""),
            ("RSS idle / peak", "\(number(rssIdleMiB, 1)) / \(number(rssPeakMiB, 1)) MiB", "≤ 64 / ≤ 200 MiB", verdict(rssIdleMiB <= 64 && rssPeakMiB <= 200)),
            ("CPU per 1000 deliveries (backlog): alertd / PostgreSQL", "\(number(cpuSecondsPer1000, 3)) / \(number(postgresCPUSecondsPer1000, 3)) s", "", ""),
            ("sweep over \(sweep?.endpoints ?? 0) endpoints / \(sweep?.runs ?? 0) runs: first, all found", "\(number(sweep?.firstSeconds ?? 0, 2)) s, \(number(sweep?.findAllSeconds ?? 0, 2)) s (\(sweep?.overdueFound ?? 0) overdue, \(sweep?.stuckFound ?? 0) stuck)", "", ""),
            ("sweep a minute later / with nothing due", "\(number(sweep?.minuteLaterMilliseconds ?? 0, 1)) ms (\(sweep?.minuteLaterLookups ?? 0) endpoints looked up) / \(number(sweep?.quietMilliseconds ?? 0, 1)) ms", "", ""),
            ("harness alone: receiver / SMTP sink", "\(number(receiverRequestsPerSecond))/s / \(number(sinkMessagesPerSecond))/s", "", ""),
            ("alerts sent / expected", "\(sent) / \(expectedSent)", "all", verdict(sent == expectedSent)),
        ]
        // Rows of phases not run say so instead of a figure.
        let phaseOfRow = [("webhook latency", "latency"), ("email latency", "latency"), ("webhooks sustained", "throughput"), ("email sustained", "throughput"), ("mix", "throughput"), ("writers' changes", "throughput"), ("backlog", "backlog"), ("writers' throughput", "trigger"), ("CPU per", "backlog"), ("sweep", "sweep")]
        rows = rows.map { row in
            guard let phase = phaseOfRow.first(where: { row.0.hasPrefix($0.0) })?.1, !phases.contains(phase) else { return row }
            return (row.0, "not run", row.2, "")
        }
        var columns = rows.map { [$0.0, $0.1, $0.2, $0.3] }
        if let baseline {
            columns = columns.map { row in
                guard row[1] != "not run", let keys = Self.baselineKeys.first(where: { row[0].hasPrefix($0.0) })?.1 else { return row + [""] }
                return row + [baseline.compare(keys, with: json)]
            }
            columns.insert(["measure", "result", "target", "", "\(baseline.label): was (this / was)"], at: 0)
        } else {
            columns.insert(["measure", "result", "target", ""], at: 0)
        }
        let widths = (0..<columns[0].count).map { column in columns.map { $0[column].count }.max() ?? 0 }
        return columns.map { row in
            row.enumerated().map { column, text in
                column == row.count - 1 ? text : text.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    /// The JSON keys of the figures each row shows, for `--baseline`.
    static let baselineKeys: [(String, [String])] = [
        ("webhook latency at", ["webhook_latency_ms.p50", "webhook_latency_ms.p99"]),
        ("webhook latency p90", ["webhook_latency_ms.p90", "webhook_latency_ms.max"]),
        ("email latency", ["email_latency_ms.p50", "email_latency_ms.p90", "email_latency_ms.p99", "email_latency_ms.max"]),
        ("webhooks sustained", ["webhook_deliveries_per_s"]),
        ("email sustained", ["email_messages_per_s"]),
        ("mix", ["mix_deliveries_per_s"]),
        ("backlog", ["backlog_drain_s"]),
        ("writers' throughput, trigger against the constant insert", ["trigger_ratio_against_constant_insert"]),
        ("RSS", ["rss_idle_mib", "rss_peak_mib"]),
        ("CPU per", ["cpu_s_per_1000_deliveries", "postgres_cpu_s_per_1000_deliveries"]),
        ("harness alone", ["harness.receiver_requests_per_s", "harness.smtp_sink_messages_per_s"]),
    ]

    /// An earlier run's results (`alertd bench --baseline FILE.json`), to compare with.
    public struct Baseline {
        /// What the table calls it: the file's name.
        public let label: String
        private let object: [String: Any]

        public init(file: String) throws {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw BenchCluster.Failure(description: "cannot read the baseline \(file)")
            }
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], object["phases"] != nil else {
                throw BenchCluster.Failure(description: "\(file) is not the JSON of an alertd bench run (alertd bench --json FILE)")
            }
            label = URL(fileURLWithPath: file).lastPathComponent
            self.object = object
        }

        /// The number at `path` ("a.b") in `object`; nil if absent, null or zero (not measured).
        static func number(_ path: String, in object: [String: Any]) -> Double? {
            var value: Any? = object
            for part in path.split(separator: ".") { value = (value as? [String: Any])?[String(part)] }
            guard let number = value as? NSNumber, number.doubleValue != 0 else { return nil }
            return number.doubleValue
        }

        /// "was A / B (x1.05 / x0.98)": the baseline's figures at `keys` and this run's ratios.
        func compare(_ keys: [String], with current: [String: Any]) -> String {
            let was = keys.map { Self.number($0, in: object) }
            guard was.contains(where: { $0 != nil }) else { return "not in the baseline" }
            let figures = was.map { $0.map { String(format: $0 < 10 ? "%.2f" : "%.0f", $0) } ?? "–" }.joined(separator: " / ")
            let ratios = zip(keys, was).map { key, old -> String in
                guard let old, let new = Self.number(key, in: current) else { return "–" }
                return String(format: "%.2f", new / old)
            }.joined(separator: " / ")
            return "\(figures) (\(ratios))"
        }
    }
}

/// What one of alertd's statements cost while the backlog drained (pg_stat_statements).
public struct StatementCost: Sendable {
    /// The statement as pg_stat_statements normalises it, whitespace folded.
    public var query: String
    public var calls: Int
    public var rows: Int
    public var executionMilliseconds: Double
    public var planningMilliseconds: Double

    /// The costliest statements run by `role`, at most `limit`.
    static func top(_ admin: PostgresConnection, role: String, limit: Int = 12) async throws -> [StatementCost] {
        try await admin.query(
            """
            SELECT s.query, s.calls, s.rows, s.total_exec_time, s.total_plan_time
              FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
             WHERE r.rolname = $1
             ORDER BY s.total_exec_time + s.total_plan_time DESC
             LIMIT $2
            """,
            [role, limit]
        ).map { row in
            StatementCost(
                query: (try row.decode("query", as: String.self)).split(whereSeparator: \.isWhitespace).joined(separator: " "),
                calls: try row.decode("calls"), rows: try row.decode("rows"),
                executionMilliseconds: try row.decode("total_exec_time"), planningMilliseconds: try row.decode("total_plan_time")
            )
        }
    }

    /// Microseconds of the server's time per delivery, planning and execution.
    func microsecondsPerDelivery(_ deliveries: Int) -> Double {
        Self.perDelivery(executionMilliseconds + planningMilliseconds, deliveries)
    }

    /// `milliseconds` in all as microseconds per delivery.
    static func perDelivery(_ milliseconds: Double, _ deliveries: Int) -> Double {
        deliveries > 0 ? milliseconds * 1_000 / Double(deliveries) : 0
    }

    func json(deliveries: Int) -> [String: Any] {
        [
            "query": String(query.prefix(300)), "calls": calls, "rows": rows,
            "exec_ms": round2(executionMilliseconds), "plan_ms": round2(planningMilliseconds),
            "us_per_delivery": round2(microsecondsPerDelivery(deliveries)),
        ]
    }

    /// The table `alertd bench --statements` prints after its own.
    public static func table(_ statements: [StatementCost], deliveries: Int) -> String {
        var lines = ["alertd's statements while the backlog drained (pg_stat_statements), costliest first:",
                     "µs/delivery  plan µs  calls    rows      statement"]
        for statement in statements {
            let plan = perDelivery(statement.planningMilliseconds, deliveries)
            lines.append(String(format: "%11.1f  %7.1f  %-7d  %-8d  ", statement.microsecondsPerDelivery(deliveries), plan, statement.calls, statement.rows) + statement.query.prefix(110))
        }
        return lines.joined(separator: "\n")
    }
}
