import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// Rows a tenant (or a bug) could write, many at once, through `alertd run`: none may stop the
/// dispatcher or hold back the other alerts, and each ends with a readable outcome.
@Suite struct HostileRowsTests {
    /// One integration's alert settings, good or bad.
    struct Setup: Sendable {
        var name: String
        var emails: [String]
        var webhook: String?
        var error: String
        var endpoint = "employees"
    }

    static func hostileSetups(receiver: WebhookReceiver, slow: WebhookReceiver) -> [Setup] {
        let megabyte = String(repeating: "payroll export failed at row 42; ", count: 32_000)
        let controls = "ctl:\u{07}\u{1B}[31m\u{08}\u{7F}\u{0B}\u{0C}end"
        return [
            Setup(name: "Malformed addresses", emails: ["not an address", "a@b@c", "<x>@example.com", "ops@exa mple.com", "\"quoted\"@example.com", "@example.com", "ops@"], webhook: nil, error: "x"),
            Setup(name: "Duplicate addresses", emails: ["dup@example.com", " dup@example.com ", "dup@example.com", "", "   "], webhook: nil, error: "x"),
            Setup(name: "Header\r\nBcc: victim@example.com\r\nX-Injected: yes", emails: ["inject@example.com"], webhook: receiver.url("/hostile/inject"), error: "line one\r\nBcc: victim@example.com\r\n\r\nbody"),
            Setup(name: "Controls \(controls)", emails: ["controls@example.com"], webhook: receiver.url("/hostile/controls"), error: controls, endpoint: "emp\u{1B}loyees\r\n"),
            Setup(name: String(repeating: "Ünïcødé ", count: 12), emails: ["long@example.com"], webhook: receiver.url("/hostile/long"), error: megabyte),
            Setup(name: "No addresses", emails: [], webhook: receiver.url("/hostile/no-addresses"), error: "x"),
            Setup(name: "Only blank addresses", emails: ["", "  "], webhook: receiver.url("/hostile/blank"), error: "x"),
            Setup(name: "Credentials in URL", emails: [], webhook: receiver.url("/hostile/creds").replacingOccurrences(of: "http://", with: "http://admin:hunter2-url-secret@"), error: "x"),
            Setup(name: "Odd port", emails: [], webhook: "http://127.0.0.1:0/hostile", error: "x"),
            Setup(name: "Port out of range", emails: [], webhook: "http://127.0.0.1:99999/hostile", error: "x"),
            Setup(name: "Not http", emails: [], webhook: "ftp://127.0.0.1/hostile", error: "x"),
            Setup(name: "Script URL", emails: [], webhook: "javascript:alert(1)", error: "x"),
            Setup(name: "No host", emails: [], webhook: "http:///hostile", error: "x"),
            Setup(name: "Metadata service", emails: [], webhook: "http://169.254.169.254/latest/meta-data", error: "x"),
            Setup(name: "IPv6 loopback", emails: [], webhook: "http://[::1]:9/hostile", error: "x"),
            Setup(name: "Spaces in URL", emails: [], webhook: "http://127.0.0.1:\(receiver.port)/a b\r\nX-Injected: yes", error: "x"),
            Setup(name: "Deleted while in flight", emails: [], webhook: slow.url("/sleep/1.5/deleted"), error: "x"),
        ]
    }

    @Test func manyHostileRowsAtOnceNeitherStopTheDispatcherNorHoldBackOthers() async throws {
        let receiver = try await WebhookReceiver.start()
        let slow = try await WebhookReceiver.start()
        let sink = try await SMTPSink.start()
        defer {
            receiver.stop()
            slow.stop()
            sink.stop()
        }
        // A template that names a variable the context does not have.
        let templates = FileManager.default.temporaryDirectory.appending(path: "alertd-hostile-templates-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: TestPostgres.packageRoot.appending(path: "templates"), to: templates)
        defer { try? FileManager.default.removeItem(at: templates) }
        let failureText = templates.appending(path: "failure.text.mustache")
        try (String(contentsOf: failureText, encoding: .utf8) + "\n{{no_such_variable}}{{integration.no_such_field}}\n").write(to: failureText, atomically: true, encoding: .utf8)

        try await TestPostgres.withDatabase { database in
            // Fuzz: the hostile settings, shuffled with healthy ones, several runs each.
            var generator = SeededGenerator(seed: 20261124)
            let hostile = Self.hostileSetups(receiver: receiver, slow: slow)
            let healthy = (0..<8).map { Setup(name: "Healthy \($0)", emails: ["healthy\($0)@example.com"], webhook: receiver.url("/healthy/\($0)"), error: "timeout") }
            let setups = (hostile + healthy).shuffled(using: &generator)
            let (ids, deleted) = try await database.withConnection { connection in
                try await connection.execute("ALTER TABLE integration_alert_history ALTER COLUMN max_attempts SET DEFAULT 2")
                let rows = PlatformRows(connection)
                let tenant = try await rows.tenant("Hostile")
                var ids: [String: UUID] = [:]
                for (index, setup) in setups.enumerated() {
                    let id = try await rows.integration(tenant: tenant, type: "type\(index)", name: String(setup.name.prefix(100)), alertOnFailure: true, alertOnSuccess: true, emails: setup.emails, webhook: setup.webhook)
                    ids[setup.name] = id
                    for n in 0..<3 {
                        // An endpoint per run: each run's alert goes out (no incident's repeat).
                        let run = try await rows.syncRun(integration: id, endpoint: String(setup.endpoint.prefix(98)) + "-\(n)")
                        try await connection.query("UPDATE integration_sync_history SET status = $2, error_message = $3 WHERE id = $1", [run, ["failed", "partial", "success"][n], setup.error])
                    }
                }
                return (ids, ids["Deleted while in flight"]!)
            }

            let alertd = try AlertdProcess.start(environment: DispatcherEndToEndTests.environment(database, [
                "ALERTD_SMTP_URL": "smtp://127.0.0.1:\(sink.port)", "ALERTD_SMTP_FROM": "alertd@example.com", "ALERTD_SMTP_TLS": "none",
                "ALERTD_TEMPLATES_DIR": templates.path, "ALERTD_WEBHOOK_TIMEOUT": "3s", "ALERTD_WEBHOOK_CONNECT_TIMEOUT": "1s",
            ]))
            // The integration goes while its webhooks are on their way.
            _ = try await slow.waitForRequests(1, timeout: .seconds(30))
            try await database.withConnection { try await $0.query("DELETE FROM integration_configs WHERE id = $1", [deleted]) }

            // Every alert ends, or waits behind its destination's open circuit: a URL whose port
            // refuses connections is a destination down, and after five failures its last alerts
            // wait for it (docs/operations.md#destination-health) instead of failing.
            try await DispatcherEndToEndTests.waitUntil(.seconds(90)) {
                try await database.withConnection { connection in
                    try await connection.query(
                        "SELECT count(*)::int AS n FROM integration_alert_history WHERE delivery_status = 'pending' AND NOT (next_attempt_at IS NULL AND metadata ? 'parked')"
                    )[0].decode("n", as: Int.self) == 0
                }
            }
            #expect(alertd.isRunning, "alertd stopped: \(alertd.output.suffix(2000))")

            let rows = try await database.withConnection { connection in
                try await connection.query(
                    """
                    SELECT c.integration_name, a.alert_channel,
                           CASE WHEN a.delivery_status = 'pending' AND a.metadata ? 'parked' THEN 'waiting' ELSE a.delivery_status END AS delivery_status,
                           a.delivery_error, a.recipients
                      FROM integration_alert_history a JOIN integration_configs c ON c.id = a.integration_config_id
                    """
                )
            }
            #expect(rows.count > 40)
            var byName: [String: [(channel: String, status: String, error: String?)]] = [:]
            for row in rows {
                let name: String = try row.decode("integration_name")
                let error: String? = try row.decode("delivery_error")
                let status: String = try row.decode("delivery_status")
                byName[name, default: []].append((try row.decode("alert_channel"), status, error))
                // Every outcome that is not a plain delivery says why, readably and briefly.
                if status != "sent" && status != "waiting" {
                    #expect(!(error ?? "").isEmpty, "\(name): \(status) without a reason")
                }
                #expect((error ?? "").count < 4000, "\(name): a \((error ?? "").count)-character delivery_error")
                #expect(!(error ?? "").contains("hunter2-url-secret"))
                #expect(!(try row.decode("recipients", as: [String].self)).joined().contains("hunter2-url-secret"))
            }
            // Healthy integrations were not held back by the others.
            for index in 0..<8 {
                let alerts = byName["Healthy \(index)"] ?? []
                #expect(alerts.count == 6 && alerts.allSatisfy { $0.status == "sent" }, "Healthy \(index): \(alerts)")
            }
            func outcome(_ name: String, _ channel: String) -> [(channel: String, status: String, error: String?)] {
                (byName[name] ?? []).filter { $0.channel == channel }
            }
            #expect(outcome("Malformed addresses", "email").allSatisfy { $0.status == "bounced" && ($0.error ?? "").contains("not a valid email address") })
            #expect(outcome("Duplicate addresses", "email").allSatisfy { $0.status == "sent" })
            #expect(outcome("No addresses", "email").isEmpty && outcome("Only blank addresses", "email").isEmpty)
            #expect(outcome("Credentials in URL", "webhook").allSatisfy { $0.status == "failed" && ($0.error ?? "").contains("user name or password") })
            #expect(outcome("Metadata service", "webhook").allSatisfy { $0.status == "failed" && ($0.error ?? "").contains("169.254.169.254") })
            for name in ["Port out of range", "Not http", "Script URL", "No host", "IPv6 loopback", "Spaces in URL"] {
                #expect(outcome(name, "webhook").count == 3 && outcome(name, "webhook").allSatisfy { $0.status == "failed" }, "\(name): \(outcome(name, "webhook"))")
            }
            // Port 0 refuses connections: failed, or waiting behind its URL's open circuit.
            #expect(outcome("Odd port", "webhook").count == 3 && outcome("Odd port", "webhook").allSatisfy { ["failed", "waiting"].contains($0.status) }, "\(outcome("Odd port", "webhook"))")
            for name in [hostile[2].name, hostile[3].name, hostile[4].name] {
                let alerts = (byName[String(name.prefix(100))] ?? [])
                #expect(alerts.count == 6 && alerts.allSatisfy { $0.status == "sent" }, "\(name.prefix(40)): \(alerts)")
            }
            // The deleted integration's alerts went with it; nothing was recorded against them.
            #expect(byName["Deleted while in flight"] == nil)
            #expect(ids.count == setups.count)

            // What reached the receivers: no injected header, and JSON that parses.
            for message in try sink.messages() {
                let header = message.data.components(separatedBy: "\r\n\r\n").first ?? message.data
                let names = header.split(whereSeparator: \.isNewline).compactMap { line -> String? in
                    line.first == " " || line.first == "\t" ? nil : line.split(separator: ":").first.map { $0.lowercased() }
                }
                #expect(!names.contains("bcc") && !names.contains("x-injected"), "\(header)")
                #expect(Set(message.rcpt_tos).count == message.rcpt_tos.count)
            }
            let duplicates = try sink.messages().filter { $0.rcpt_tos.contains("dup@example.com") }
            #expect(duplicates.count == 3 && duplicates.allSatisfy { $0.rcpt_tos == ["dup@example.com"] })
            for request in try receiver.requests() {
                #expect((try? JSONSerialization.jsonObject(with: Data(request.body.utf8))) != nil, "not JSON: \(request.body.prefix(200))")
                #expect(request.body.utf8.count < 64_000)
                #expect(!request.headers.keys.contains("x-injected"))
            }
            #expect(!alertd.output.contains("hunter2-url-secret"))
            await alertd.stopExpectingExitZero()
        }
    }
}

/// A small deterministic generator (SplitMix64), so that a failing shuffle can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
