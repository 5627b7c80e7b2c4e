@testable import AlertdBench
import Foundation
import Testing

/// `alertd bench --baseline FILE.json`: an earlier run's figures beside this run's, with the
/// ratios this / earlier (docs/benchmarks.md#comparing-two-commits).
@Suite struct BenchBaselineTests {
    static func results(webhooks: Double, backlog: Double, p50: Double) -> BenchResults {
        var results = BenchResults()
        results.phases = ["latency", "throughput", "backlog"]
        results.webhooks = .init(alerts: Int(webhooks) * 10, seconds: 10, writesPerSecond: 1)
        results.backlogAlerts = 100_000
        results.backlogDrainSeconds = backlog
        results.webhookLatency = LatencySummary([p50, p50, p50 * 4])
        return results
    }

    static func baseline(_ results: BenchResults) throws -> BenchResults.Baseline {
        let file = FileManager.default.temporaryDirectory.appending(path: "alertd-baseline-\(UUID().uuidString).json")
        try results.jsonText.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        return try BenchResults.Baseline(file: file.path)
    }

    @Test func eachRateShowsTheBaselinesFigureAndTheRatio() throws {
        let earlier = try Self.baseline(Self.results(webhooks: 2_000, backlog: 40, p50: 2))
        let table = Self.results(webhooks: 2_500, backlog: 30, p50: 3).table(baseline: earlier)
        let line = { (prefix: String) in table.split(separator: "\n").first { $0.hasPrefix(prefix) }.map(String.init) ?? "" }
        #expect(line("webhooks sustained").hasSuffix("2000 (1.25)"), "\(table)")
        #expect(line("backlog of 100000 drained").hasSuffix("40 (0.75)"), "\(table)")
        #expect(line("webhook latency at").hasSuffix("2.00 / 8.00 (1.50 / 1.50)"), "\(table)")
        // A phase this run did not measure says so and compares nothing.
        let trigger = line("writers' throughput, trigger against the constant insert")
        #expect(trigger.contains("not run") && !trigger.contains("("), "\(trigger)")
        #expect(table.split(separator: "\n").first?.contains("was (this / was)") == true)
    }

    @Test func aFileThatIsNotABenchRunIsRefusedBeforeTheRun() throws {
        let file = FileManager.default.temporaryDirectory.appending(path: "alertd-baseline-\(UUID().uuidString).json")
        try #"{"webhooks": 3}"#.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(throws: BenchCluster.Failure.self) { try BenchResults.Baseline(file: file.path) }
        #expect(throws: BenchCluster.Failure.self) { try BenchResults.Baseline(file: "/nonexistent/bench.json") }
    }
}
