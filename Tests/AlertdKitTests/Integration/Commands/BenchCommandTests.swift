import AlertdTestSupport
import Foundation
import Testing

/// `alertd bench` measures, it is not measured here (no timed assertions): these check that a
/// short run does every phase, counts right, and ends with every alert sent.
@Suite struct BenchCommandTests {
    @Test func aQuickRunReportsEveryFigureAndEveryAlertSent() async throws {
        // A scratch directory of its own, to see that the bench leaves nothing in it: its
        // cluster, and the logs of the alertd processes it stopped cleanly.
        let scratch = FileManager.default.temporaryDirectory.appending(path: "alertd-bench-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(at: scratch) }
        let result = try await TestProcess.alertd(["bench", "--quick", "--json", "-"], environment: ["TMPDIR": scratch.path])
        #expect(result.status == 0, "\(result.allOutput.suffix(3_000))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path) == [], "the bench left files behind")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any], "\(result.standardOutput)")
        for key in ["webhook_deliveries_per_s", "email_messages_per_s", "mix_deliveries_per_s", "trigger_writer_throughput_ratio", "trigger_writer_throughput_ratio_notifying", "trigger_writer_throughput_ratio_constant_insert", "rss_idle_mib", "rss_peak_mib", "backlog_drain_s", "cpu_s_per_1000_deliveries"] {
            let value = try #require(object[key] as? Double, "\(key) missing")
            #expect(value > 0, "\(key) = \(value)")
        }
        // The 100,000 figure only when the backlog is 100,000; a quick run's is 1,000.
        #expect(object["backlog_100k_drain_s"] is NSNull)
        #expect(object["backlog_alerts"] as? Int == 1_000)
        for key in ["webhook_latency_ms", "email_latency_ms"] {
            let latency = try #require(object[key] as? [String: Any], "\(key) missing")
            // 200 alerts/s for 1 s: every one measured, and the percentiles in order.
            #expect(latency["count"] as? Int == 200)
            let p50 = try #require(latency["p50"] as? Double), p90 = try #require(latency["p90"] as? Double)
            let p99 = try #require(latency["p99"] as? Double), max = try #require(latency["max"] as? Double)
            #expect(0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "\(key): \(latency)")
        }
        // 200 + 200 latency, 600 webhooks, 300 emails, 200 runs × 2 (mix), 1,000 backlog.
        #expect(object["alerts_expected_sent"] as? Int == 2_700)
        #expect(object["alerts_sent"] as? Int == 2_700)
        let harness = try #require(object["harness"] as? [String: Any])
        #expect((harness["receiver_requests_per_s"] as? Double ?? 0) > 0 && (harness["smtp_sink_messages_per_s"] as? Double ?? 0) > 0)
        // Progress went to standard error, phase by phase.
        for phase in ["webhook latency", "email latency", "a backlog of 1000", "with and without the trigger", "done"] {
            #expect(result.standardError.contains(phase), "no progress line for \(phase)")
        }
    }

    @Test func theTableNamesEachTarget() async throws {
        let result = try await TestProcess.alertd(["bench", "--quick"])
        #expect(result.status == 0, "\(result.allOutput.suffix(3_000))")
        for row in ["webhooks sustained", "≥ 3000/s", "email sustained", "≥ 1000/s", "≤ 5 / ≤ 25 ms", "trigger against the constant insert", "≥ 0.85", "≤ 64 / ≤ 200 MiB", "2700 / 2700"] {
            #expect(result.standardOutput.contains(row), "no \(row) in:\n\(result.standardOutput)")
        }
        let bad = try await TestProcess.alertd(["bench", "--rate", "0"])
        #expect(bad.status != 0 && bad.allOutput.contains("must be positive"))
    }
}
