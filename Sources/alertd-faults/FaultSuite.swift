import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import ArgumentParser
import Foundation

/// `alertd-faults`: drives thousands of sync-status changes through real alertd processes while
/// faults are injected, then checks from the database and from what the receivers got that
/// nothing was lost, nothing was delivered twice that a crash does not explain, and that memory
/// and file descriptors stayed bounded. Each scenario gets a fresh database; the suite starts and
/// removes a PostgreSQL cluster of its own (scenarios restart it).
@main
struct FaultSuite: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alertd-faults",
        abstract: "Run alertd through faults and count what was lost and what was delivered twice.",
        discussion: "Scenarios: " + Scenario.allCases.map(\.rawValue).joined(separator: ", ") + ". Run it with deploy/dev/faults.sh, which builds alertd first."
    )

    @Option(name: .customLong("scenario"), help: "A scenario to run (repeatable; default: all).")
    var scenarios: [String] = []
    @Option(help: "Sync runs to drive in each scenario (some scenarios cap it).")
    var events = 2000
    @Option(help: "Sync runs per second offered, in all.")
    var rate = 200.0
    @Option(help: "Seconds the SMTP server and webhook receiver stay down in the outage scenario.")
    var outage = 60
    @Option(name: .customLong("long-outage"), help: "Seconds the webhook receiver fails and the SMTP server is down in the long-outage scenario.")
    var longOutage = 600
    @Option(help: "Pending alerts in the backlog scenario.")
    var backlog = 100_000
    @Option(help: "The SMTP server email goes to: sink (aiosmtpd, plain SMTP) or postfix (Debian's Postfix with STARTTLS and SASL AUTH, started by the suite).")
    var smtp = "sink"
    @Option(help: "Write the verdicts to this file as JSON.")
    var json: String?

    mutating func run() async throws {
        let selected = try scenarios.isEmpty ? Scenario.allCases : scenarios.map { name in
            guard let scenario = Scenario(rawValue: name) else { throw ValidationError("unknown scenario \(name)") }
            return scenario
        }
        var options = FaultOptions()
        options.events = events
        options.rate = rate
        options.outage = .seconds(outage)
        options.longOutage = .seconds(longOutage)
        options.backlog = backlog
        // alertd runs as its least-privilege role (made when the first database is migrated).
        options.alertdRole = (user: AlertdRole.name, password: AlertdRole.testPassword)

        guard ["sink", "postfix"].contains(smtp) else { throw ValidationError("--smtp takes sink or postfix") }
        if smtp == "postfix" {
            say("alertd-faults: starting a Postfix of its own (STARTTLS, SASL AUTH)")
            options.postfix = try await FaultPostfix.start()
        }
        say("alertd-faults: starting a PostgreSQL cluster of its own")
        let cluster = try await FaultCluster.start()
        setenv(TestPostgres.variable, cluster.url, 1)
        var verdicts: [Verdict] = []
        do {
            try Task.checkCancellation()
            for scenario in selected {
                say("\n== \(scenario.rawValue): \(scenario.summary)\(options.postfix == nil ? "" : " (email through Postfix)")")
                let verdict: Verdict
                do {
                    verdict = try await TestPostgres.withDatabase(.migrated) { database in
                        let owner = try await database.connect()
                        let trial = Trial(database: database, owner: owner, cluster: cluster, options: options)
                        let progress = Task {
                            while !Task.isCancelled {
                                try? await Task.sleep(for: .seconds(5))
                                if Task.isCancelled { break }
                                if let row = try? await owner.query("SELECT count(*) FILTER (WHERE delivery_status = 'sent')::int AS sent, count(*) FILTER (WHERE delivery_status = 'pending')::int AS pending FROM integration_alert_history").first {
                                    say("   ... sent \((try? row.decode("sent", as: Int.self)) ?? 0), pending \((try? row.decode("pending", as: Int.self)) ?? 0)")
                                }
                            }
                        }
                        defer { progress.cancel() }
                        do {
                            let verdict = try await scenario.run(trial)
                            if !verdict.passed {
                                say("   alertd said (last lines):\n" + trial.alertdOutput.split(separator: "\n").suffix(25).map { "     " + $0 }.joined(separator: "\n"))
                            }
                            await trial.shutdown()
                            trial.sampler.stop()
                            return verdict
                        } catch {
                            say("   alertd said:\n" + trial.alertdOutput.split(separator: "\n").suffix(20).map { "     " + $0 }.joined(separator: "\n"))
                            await trial.shutdown()
                            trial.sampler.stop()
                            throw error
                        }
                    }
                } catch {
                    var failed = Verdict(scenario: scenario.rawValue, description: scenario.summary)
                    failed.problems.append("the scenario could not run: \(error)")
                    verdict = failed
                }
                say(Self.describe(verdict))
                verdicts.append(verdict)
            }
        } catch {
            await cluster.destroy()
            await options.postfix?.destroy()
            throw error
        }
        await cluster.destroy()
        await options.postfix?.destroy()

        say("\n" + Self.table(verdicts))
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(verdicts).write(to: URL(filePath: json))
        }
        let failed = verdicts.filter { !$0.passed }
        if !failed.isEmpty {
            say("alertd-faults: \(failed.count) of \(verdicts.count) scenarios failed: \(failed.map(\.scenario).joined(separator: ", "))")
            throw ExitCode.failure
        }
        say("alertd-faults: all \(verdicts.count) scenarios held")
    }

    static func describe(_ verdict: Verdict) -> String {
        var lines = [
            "   events \(verdict.events), alerts \(verdict.alerts), faults: \(verdict.faults.joined(separator: "; "))",
            "   sent \(verdict.sent), failed for good \(verdict.failedFinal), pending \(verdict.pending); lost \(verdict.lost), duplicates \(verdict.duplicates) (unexplained \(verdict.unexplainedDuplicates))",
            String(format: "   peak RSS %.1f MiB, peak open files %d, %.0f s", verdict.peakRSSMiB, verdict.peakOpenFiles, verdict.seconds),
        ]
        lines += verdict.notes.map { "   note: " + $0 }
        lines += verdict.checks.sorted { $0.key < $1.key }.map { "   \($0.value ? "ok  " : "FAIL") \($0.key)" }
        lines += verdict.problems.filter { problem in !verdict.checks.keys.contains { problem.hasPrefix($0) } }.map { "   FAIL " + $0 }
        return lines.joined(separator: "\n")
    }

    static func table(_ verdicts: [Verdict]) -> String {
        let header = ["scenario", "events", "alerts", "faults", "lost", "dup", "unexpl.", "overdue", "RSS MiB", "fds", "s", "result"]
        let rows = verdicts.map { v in
            [v.scenario, "\(v.events)", "\(v.alerts)", v.faults.joined(separator: "; "), "\(v.lost)", "\(v.duplicates)", "\(v.unexplainedDuplicates)",
             "\(v.pendingPastSchedule)", String(format: "%.1f", v.peakRSSMiB), "\(v.peakOpenFiles)", String(format: "%.0f", v.seconds), v.passed ? "held" : "FAILED"]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        return ([line(header), line(widths.map { String(repeating: "-", count: $0) })] + rows.map(line)).joined(separator: "\n")
    }
}
