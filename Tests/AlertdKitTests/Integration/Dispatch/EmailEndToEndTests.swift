import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// `alertd run` delivering email to a real SMTP server (aiosmtpd).
@Suite struct EmailEndToEndTests {
    static func environment(_ database: TestDatabase, sink: SMTPSink, _ extra: [String: String] = [:]) -> [String: String] {
        [
            "ALERTD_DATABASE_URL": database.alertdURL,
            "ALERTD_SMTP_URL": "smtp://127.0.0.1:\(sink.port)",
            "ALERTD_SMTP_FROM": "alertd@example.com",
            "ALERTD_SMTP_TLS": "none",
            "ALERTD_RETRY_INITIAL": "100ms",
            "ALERTD_RETRY_MAX": "200ms",
            "ALERTD_POLL_INTERVAL": "1s",
        ].merging(extra) { $1 }
    }

    static func failRun(_ database: TestDatabase, emails: [String]) async throws {
        try await database.withConnection { connection in
            let rows = PlatformRows(connection)
            let integration = try await rows.integration(tenant: try await rows.tenant(), name: "Paycom Zürich", emails: emails)
            let run = try await rows.syncRun(integration: integration)
            try await connection.query("UPDATE integration_sync_history SET status = 'failed', error_message = 'HTTP 401 <token expired>' WHERE id = $1", [run])
        }
    }

    static func alertState(_ database: TestDatabase) async throws -> (status: String, error: String?, attempts: Int) {
        try await database.withConnection { connection in
            let row = try await connection.query("SELECT delivery_status, delivery_error, attempt_count FROM integration_alert_history")[0]
            return (try row.decode("delivery_status"), try row.decode("delivery_error"), try row.decode("attempt_count"))
        }
    }

    /// The body part of `data` that has `contentType`, base64-decoded.
    static func part(_ data: String, _ contentType: String) -> String? {
        guard let start = data.range(of: "Content-Type: \(contentType)") else { return nil }
        let rest = data[start.upperBound...]
        guard let blank = rest.range(of: "\r\n\r\n") else { return nil }
        let body = rest[blank.upperBound...].prefix { $0 != "-" }
        return Data(base64Encoded: body.replacingOccurrences(of: "\r\n", with: "")).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func aFailedSyncSendsAMultipartEmailToEveryAddress() async throws {
        let sink = try await SMTPSink.start()
        defer { sink.stop() }
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: Self.environment(database, sink: sink))
            try await Self.failRun(database, emails: ["ops@example.com", "payroll@example.com"])
            let message = try #require(try await sink.waitForMessages(1).first)
            #expect(message.mail_from == "alertd@example.com")
            #expect(message.rcpt_tos == ["ops@example.com", "payroll@example.com"])
            let head = try #require(message.data.components(separatedBy: "\r\n\r\n").first)
            #expect(head.contains("From: alertd@example.com"))
            #expect(head.contains("To: ops@example.com, payroll@example.com"))
            #expect(head.contains("Subject: =?UTF-8?B?"))
            #expect(head.contains("Date: "))
            #expect(head.contains("Message-ID: <"))
            #expect(head.contains("Content-Type: multipart/alternative"))
            let text = try #require(Self.part(message.data, "text/plain; charset=utf-8"))
            let html = try #require(Self.part(message.data, "text/html; charset=utf-8"))
            #expect(text.contains("Paycom Zürich"))
            #expect(text.contains("HTTP 401 <token expired>"))
            #expect(html.contains("HTTP 401 &lt;token expired&gt;"))
            let plainAt = try #require(message.data.range(of: "text/plain")).lowerBound
            let htmlAt = try #require(message.data.range(of: "text/html")).lowerBound
            #expect(plainAt < htmlAt)
            try await DispatcherEndToEndTests.waitUntil { try await Self.alertState(database).status == "sent" }
            await alertd.stopExpectingExitZero()
        }
    }

    @Test func aBouncedRecipientNeitherHoldsBackNorResendsToTheOthers() async throws {
        var options = SMTPSink.Options()
        options.reject = ["gone@example.com"]
        let sink = try await SMTPSink.start(options)
        defer { sink.stop() }
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: Self.environment(database, sink: sink))
            try await Self.failRun(database, emails: ["ops@example.com", "gone@example.com"])
            try await DispatcherEndToEndTests.waitUntil { try await Self.alertState(database).status == "sent" }
            let state = try await Self.alertState(database)
            #expect(state.attempts == 1)
            #expect(state.error?.contains("gone@example.com (550") == true)
            // Sent is final: one attempt recorded, none can follow.
            #expect(try await DispatcherEndToEndTests.attemptsRecorded(database) == 1)
            let messages = try sink.messages()
            #expect(messages.map(\.rcpt_tos) == [["ops@example.com"]])
            await alertd.stopExpectingExitZero()
        }
    }

    @Test func aTemporaryRefusalIsRetriedForThatRecipientOnly() async throws {
        var options = SMTPSink.Options()
        options.tempfail = ["busy@example.com"]
        let sink = try await SMTPSink.start(options)
        defer { sink.stop() }
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: Self.environment(database, sink: sink))
            try await Self.failRun(database, emails: ["ops@example.com", "busy@example.com"])
            try await DispatcherEndToEndTests.waitUntil(.seconds(60)) { try await Self.alertState(database).status == "failed" }
            let state = try await Self.alertState(database)
            #expect(state.attempts == 10)
            #expect(state.error?.contains("Gave up after 10 attempts") == true)
            #expect(state.error?.contains("busy@example.com (451") == true)
            // ops@ got the alert once, on the first attempt; nine retries went to busy@ alone.
            #expect(try sink.messages().map(\.rcpt_tos) == [["ops@example.com"]])
            let attempts = try await database.withConnection { connection in
                try await connection.query("SELECT outcome, details->'recipients'->>'ops@example.com' AS ops FROM integration_alert_attempts ORDER BY attempt_number").map {
                    "\(try $0.decode("outcome", as: String.self)):\(try $0.decode("ops", as: String?.self) ?? "-")"
                }
            }
            #expect(attempts.first?.hasPrefix("retry:250") == true)
            #expect(attempts.dropFirst().allSatisfy { $0.hasSuffix(":-") })
            await alertd.stopExpectingExitZero()
        }
    }

    @Test func everyRecipientRefusedIsABounce() async throws {
        var options = SMTPSink.Options()
        options.reject = ["gone@example.com"]
        let sink = try await SMTPSink.start(options)
        defer { sink.stop() }
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: Self.environment(database, sink: sink))
            try await Self.failRun(database, emails: ["gone@example.com", "not an address"])
            try await DispatcherEndToEndTests.waitUntil { try await Self.alertState(database).status == "bounced" }
            let state = try await Self.alertState(database)
            #expect(state.error?.contains("not a valid email address") == true)
            await alertd.stopExpectingExitZero()
        }
    }

    @Test func startTLSAndAuthWithAVerifiedCertificateAndNoSecretInTheOutput() async throws {
        let certificates = try await TestCertificates.make()
        var options = SMTPSink.Options()
        options.certificate = (certificates.serverCertificate, certificates.serverKey)
        options.auth = ("alertd", "Sm7p-Pa55word")
        let sink = try await SMTPSink.start(options)
        defer { sink.stop() }
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: Self.environment(database, sink: sink, [
                "ALERTD_SMTP_URL": "smtp://alertd:Sm7p-Pa55word@localhost:\(sink.port)",
                "ALERTD_SMTP_TLS": "required",
                "ALERTD_SMTP_CA_FILE": certificates.caFile,
            ]))
            try await Self.failRun(database, emails: ["ops@example.com"])
            let received = try? await sink.waitForMessages(1, timeout: .seconds(15))
            let message = try #require(received?.first, "alertd said: \(alertd.output)")
            #expect(message.tls)
            #expect(message.auth_user == "alertd")
            try await DispatcherEndToEndTests.waitUntil { try await Self.alertState(database).status == "sent" }
            await alertd.stopExpectingExitZero()
            #expect(!alertd.output.contains("Sm7p-Pa55word"))
            let audit = try await database.withConnection { connection in
                try await connection.query("SELECT a::text AS row FROM integration_alert_history a UNION ALL SELECT t::text FROM integration_alert_attempts t").map { try $0.decode("row", as: String.self) }
            }
            #expect(!audit.joined().contains("Sm7p-Pa55word"))
        }
    }
}
