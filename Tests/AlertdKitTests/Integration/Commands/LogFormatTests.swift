@testable import AlertdKit
import AlertdTestSupport
import Foundation
import Logging
import Testing

/// alertd's log lines: text, JSON lines and logfmt.
@Suite struct LogFormatTests {
    static let time = Date(timeIntervalSince1970: 1_764_000_000.25)

    @Test func jsonLinesAreOneObjectEachWithTheFieldsAsKeys() throws {
        let line = AlertdLogHandler.line(time: Self.time, level: .info, message: "delivery", module: "AlertdKit", fields: [
            "alert": "a1", "attempt": "2", "error": "line one\nline \"two\"",
        ], format: .json)
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object == [
            "ts": "2025-11-24T16:00:00.250Z", "level": "info", "msg": "delivery", "module": "AlertdKit",
            "alert": "a1", "attempt": "2", "error": "line one\nline \"two\"",
        ])
    }

    /// Timestamps are UTC with milliseconds, each field zero-padded, as ISO 8601 writes them.
    @Test func timestampsAreUTCToTheMillisecond() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        let fixed: [(TimeInterval, String)] = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_764_000_000.25, "2025-11-24T16:00:00.250Z"),
            (951_868_799.999, "2000-02-29T23:59:59.999Z"),
            (1_709_164_805.007, "2024-02-29T00:00:05.007Z"),
        ]
        for (seconds, expected) in fixed {
            #expect(AlertdLogHandler.timestamp(Date(timeIntervalSince1970: seconds)) == expected)
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            // Whole milliseconds, so that both sides agree on the rounding.
            let date = Date(timeIntervalSince1970: Double(Int.random(in: 0...4_102_444_800_000, using: &generator)) / 1000)
            #expect(AlertdLogHandler.timestamp(date) == formatter.string(from: date), "\(date.timeIntervalSince1970)")
        }
    }

    @Test func logfmtQuotesWhatNeedsQuotingAndNothingElse() {
        let line = AlertdLogHandler.line(time: Self.time, level: .warning, message: "database call failed", module: "AlertdKit", fields: [
            "retry_in_s": "0.5", "error": "no \"route\"\r\nto host\u{1B}", "empty": "",
        ], format: .logfmt)
        #expect(line == #"ts=2025-11-24T16:00:00.250Z level=warning msg="database call failed" module=AlertdKit empty="" error="no \"route\"\r\nto host\u001b" retry_in_s=0.5"#)
    }

    @Test func aFieldCannotOverwriteTheRecordsOwnKeys() throws {
        let line = AlertdLogHandler.line(time: Self.time, level: .info, message: "real", module: "m", fields: ["msg": "forged", "level": "critical"], format: .json)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object["msg"] == "real" && object["level"] == "info")
        let logfmt = AlertdLogHandler.line(time: Self.time, level: .info, message: "real", module: "m", fields: ["msg": "forged"], format: .logfmt)
        #expect(!logfmt.contains("forged"))
    }

    @Test func unknownFormatsAndLevelsAreClearErrors() {
        #expect(throws: AlertdError.self) { try AlertdLogHandler.logger(level: "info", format: "xml") }
        #expect(throws: AlertdError.self) { try AlertdLogHandler.logger(level: "loud", format: "json") }
    }

    /// `alertd run --log-format json`: every line is a JSON object, the start-up summary says what
    /// is on, and each delivery outcome is one line with its alert, channel, integration, attempt
    /// and duration.
    @Test func alertdRunWritesJSONLines() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            try await DispatcherEndToEndTests.failRuns(database, webhook: receiver.url("/codes/503,200/logs"))
            let alertd = try AlertdProcess.start(environment: DispatcherEndToEndTests.environment(database, ["ALERTD_LOG_FORMAT": "json"]))
            try await DispatcherEndToEndTests.waitUntil(.seconds(30)) { try await DispatcherEndToEndTests.statuses(database) == ["sent"] }
            await alertd.stopExpectingExitZero()
            let lines = alertd.output.split(separator: "\n").filter { !$0.isEmpty }
            let objects = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
            #expect(objects.count == lines.count, "lines that are not JSON objects: \(lines.filter { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) == nil })")
            let started = try #require(objects.first { $0["msg"] == "alertd started" })
            #expect(started["version"] != nil && started["db"] == "127.0.0.1" && started["channels"] == "webhook" && started["webhook_allow"]?.contains("127.0.0.1") == true)
            let deliveries = objects.filter { $0["msg"] == "delivery" }
            #expect(deliveries.map { $0["outcome"] } == ["retry", "sent"])
            for delivery in deliveries {
                for key in ["alert", "channel", "integration", "attempt", "duration_ms"] { #expect(delivery[key] != nil, "no \(key)") }
            }
            #expect(deliveries.map { $0["attempt"] } == ["1", "2"])
            #expect(deliveries.first?["http_status"] == "503")
            #expect(!alertd.output.contains(TestPostgres.password) && !alertd.output.contains(AlertdRole.testPassword))
        }
    }
}
