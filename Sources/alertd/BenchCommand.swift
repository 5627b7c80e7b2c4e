import AlertdBench
import AlertdKit
import ArgumentParser
import Foundation

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure alertd end to end on this machine (a few minutes; docs/benchmarks.md).",
        discussion: """
            Starts its own PostgreSQL 15 cluster, webhook receiver and SMTP sink on loopback (measuring the receiver \
            and the sink alone first), runs this alertd against them, and reports commit-to-receipt latency at a fixed \
            rate, sustained deliveries per second (webhooks, email, both), the time to drain a backlog, how much the \
            trigger slows writers, memory and CPU. ALERTD_* variables set here (ALERTD_BATCH_SIZE, say) pass on to the \
            alertd measured. Everything it starts is removed at the end.
            """
    )

    @Option(help: "Alerts per second offered in the latency phases.")
    var rate = 500

    @Option(help: "Seconds each latency phase lasts.")
    var seconds = 10

    @Option(help: "Alerts in the backlog drained (100000 for the target).")
    var backlog = 100_000

    @Option(name: .customLong("webhooks"), help: "Alerts in the sustained webhook phase.")
    var webhookRuns = 30_000

    @Option(name: .customLong("emails"), help: "Messages in the sustained email phase.")
    var emailRuns = 10_000

    @Option(help: "Concurrent writers in the trigger-cost phase.")
    var writers = 8

    @Option(help: "Run only this phase: latency, throughput, backlog, trigger or sweep (repeatable; default every one).")
    var only: [String] = []

    @Flag(help: "Every phase with small numbers: a check that the benchmark works, not a measurement.")
    var quick = false

    @Option(name: .customLong("pg-bin"), help: "PostgreSQL 15's programs (default /usr/lib/postgresql/15/bin).")
    var postgresBinaries: String?

    @Flag(help: "After the table, print the query plan of the overdue sweep a minute later (EXPLAIN ANALYZE), as docs/benchmarks.md shows it.")
    var explain = false

    @Flag(help: "Turn pg_stat_statements on in the bench's cluster and print what each of alertd's statements cost per delivery while the backlog drained.")
    var statements = false

    @Option(help: "An earlier run's JSON (--json FILE) on this machine: its figures and the ratios this / it go beside this run's.")
    var baseline: String?

    @Option(help: "Write the results as one JSON object to this file ('-': standard output, instead of the table).")
    var json: String?

    func validate() throws {
        for phase in only where Benchmark.Phase(rawValue: phase) == nil {
            throw ValidationError("--only takes latency, throughput, backlog, trigger or sweep, not \(phase).")
        }
        guard rate > 0, seconds > 0, backlog > 0, webhookRuns > 0, emailRuns > 0, writers > 0 else {
            throw ValidationError("--rate, --seconds, --backlog, --webhooks, --emails and --writers must be positive.")
        }
    }

    func run() async throws {
        let results: BenchResults
        let baseline: BenchResults.Baseline?
        do {
            // Read before the run, so that a wrong path fails at once, not minutes later.
            baseline = try self.baseline.map(BenchResults.Baseline.init(file:))
        } catch {
            throw reportFailure(AlertdError(.configuration, "\(error)"))
        }
        do {
            guard let executable = Bundle.main.executableURL?.resolvingSymlinksInPath().path else {
                throw AlertdError(.configuration, "Cannot find alertd's own executable to measure.")
            }
            var options = quick ? Benchmark.Options.quick(alertd: executable) : Benchmark.Options(alertd: executable)
            if !quick {
                options.rate = rate
                options.latencySeconds = seconds
                options.backlog = backlog
                options.webhookRuns = webhookRuns
                options.emailRuns = emailRuns
                options.triggerWriters = writers
            }
            options.postgresBinaries = postgresBinaries
            options.statements = statements
            if !only.isEmpty { options.phases = Set(only.compactMap(Benchmark.Phase.init(rawValue:))) }
            results = try await Benchmark(options: options, interactive: isatty(STDERR_FILENO) == 1).run()
        } catch {
            throw reportFailure(error)
        }
        if let json {
            if json == "-" {
                print(results.jsonText)
            } else {
                do {
                    try (results.jsonText + "\n").write(toFile: json, atomically: true, encoding: .utf8)
                } catch {
                    throw reportFailure(AlertdError(.configuration, "Cannot write \(json): \(error.localizedDescription)"))
                }
                print(results.table(baseline: baseline))
            }
        } else {
            print(results.table(baseline: baseline))
        }
        if statements, !results.backlogStatements.isEmpty, json != "-" {
            print("\n" + StatementCost.table(results.backlogStatements, deliveries: results.backlogAlerts))
        }
        if explain, let plan = results.sweep?.plan {
            print("\nThe overdue sweep a minute later:\n\(plan)")
        }
        if results.sent != results.expectedSent { throw ExitCode.failure }
    }
}
