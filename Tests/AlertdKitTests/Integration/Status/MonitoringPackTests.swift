@testable import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// deploy/monitoring against a real Prometheus (Debian's) scraping a running alertd while it
/// delivers, retries and fails alerts: every dashboard query and every rule's expression parses
/// and returns data, and rules fire when their condition is produced.
@Suite struct MonitoringPackTests {
    static let folder = TestPostgres.packageRoot.appending(path: "deploy/monitoring")

    /// A Prometheus on loopback, with its own data folder, scraping `target` every second and
    /// evaluating `rules` every second.
    final class Prometheus: Sendable {
        let process: Process
        let address: StatusAddress
        let folder: URL

        init(scraping target: StatusAddress, rules: String) async throws {
            folder = FileManager.default.temporaryDirectory.appending(path: "alertd-prometheus-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try rules.write(to: folder.appending(path: "rules.yml"), atomically: true, encoding: .utf8)
            try """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            rule_files: [rules.yml]
            scrape_configs:
              - job_name: alertd
                static_configs:
                  - targets: ["\(target.description)"]
            """.write(to: folder.appending(path: "prometheus.yml"), atomically: true, encoding: .utf8)
            // A free port: one the kernel gave and took back.
            let probe = try StatusServer.start(on: StatusAddress(host: "127.0.0.1", port: 0)) { _ in .init(status: 200, body: "") }
            address = StatusAddress(host: "127.0.0.1", port: probe.address.port)
            probe.stop()
            process = Process()
            process.executableURL = URL(filePath: "/usr/bin/prometheus")
            process.arguments = [
                "--config.file=\(folder.appending(path: "prometheus.yml").path)", "--storage.tsdb.path=\(folder.appending(path: "data").path)",
                "--web.listen-address=\(address.description)", "--log.level=warn",
            ]
            process.standardOutput = FileHandle.nullDevice
            let log = folder.appending(path: "prometheus.log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: log)
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus") else {
                throw TestSetupError("No /usr/bin/prometheus: run deploy/dev/install-deps.sh (Debian's prometheus package).")
            }
            try process.run()
            let address = self.address
            try await DispatcherEndToEndTests.waitUntil(.seconds(30)) {
                (try? await StatusProbe.get("/-/ready", from: address, timeout: .seconds(2)).status) == 200
            }
        }

        /// The result of an instant query: its series (empty when it returns no data); throws when
        /// Prometheus refuses the query.
        func query(_ expression: String) async throws -> [[String: Any]] {
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            let encoded = expression.addingPercentEncoding(withAllowedCharacters: allowed) ?? expression
            let answer = try await StatusProbe.get("/api/v1/query?query=\(encoded)", from: address, timeout: .seconds(10))
            let body = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
            guard answer.status == 200, body?["status"] as? String == "success", let data = body?["data"] as? [String: Any] else {
                throw TestSetupError("Prometheus refused \(expression): HTTP \(answer.status) \(answer.body.prefix(300))")
            }
            return data["result"] as? [[String: Any]] ?? []
        }

        /// The names of the alerts firing now.
        func firing() async throws -> Set<String> {
            let answer = try await StatusProbe.get("/api/v1/alerts", from: address, timeout: .seconds(10))
            let body = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
            let alerts = (body?["data"] as? [String: Any])?["alerts"] as? [[String: Any]] ?? []
            return Set(alerts.filter { $0["state"] as? String == "firing" }.compactMap { ($0["labels"] as? [String: Any])?["alertname"] as? String })
        }

        /// Kills Prometheus without waiting for it (waiting would hold a thread of the
        /// concurrency pool), as `ScriptedServer` stops its servers.
        func stop() {
            kill(process.processIdentifier, SIGKILL)
            try? FileManager.default.removeItem(at: folder)
        }
    }

    /// Every query of the dashboard, with its variables given values.
    static func dashboardQueries() throws -> [(panel: String, expression: String)] {
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appending(path: "alertd-dashboard.json"))) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        return panels.flatMap { panel in
            (panel["targets"] as? [[String: Any]] ?? []).compactMap { target in
                (target["expr"] as? String).map {
                    (panel["title"] as? String ?? "?", $0.replacingOccurrences(of: "$instance", with: ".*").replacingOccurrences(of: "$__rate_interval", with: "1m"))
                }
            }
        }
    }

    /// Every rule of alertd-rules.yml: its name and expression.
    static func rules() throws -> [(name: String, expression: String)] {
        let text = try String(contentsOf: folder.appending(path: "alertd-rules.yml"), encoding: .utf8)
        var rules: [(String, String)] = []
        var name: String?
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("- alert: ") { name = String(trimmed.dropFirst("- alert: ".count)) }
            if trimmed.hasPrefix("expr: "), let rule = name { rules.append((rule, String(trimmed.dropFirst("expr: ".count)))) }
        }
        return rules
    }

    @Test func everyPanelAndRuleWorksAgainstARunningAlertdAndTheRulesFire() async throws {
        let dashboard = try Self.dashboardQueries()
        let rules = try Self.rules()
        #expect(dashboard.count >= 20 && rules.count >= 13, "read \(dashboard.count) panel queries and \(rules.count) rules")
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        let sink = try await SMTPSink.start()
        defer { sink.stop() }
        try await TestPostgres.withDatabase { database in
            // A run that is delivered, one whose receiver answers 503 then 200 (a retry), one whose
            // URL is gone (410: a final failure, the URL disabled), one whose receiver refuses
            // connections (its circuit opens and its alert waits), and one by email.
            let closed = try StatusServer.start(on: StatusAddress(host: "127.0.0.1", port: 0)) { _ in .init(status: 200, body: "") }
            let closedPort = closed.address.port
            closed.stop()
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                for (n, url) in [receiver.url("/sent"), receiver.url("/codes/503,200/retried"), "http://127.0.0.1:\(closedPort)/down"].enumerated() {
                    let integration = try await rows.integration(tenant: try await rows.tenant("Tenant \(n)"), name: "Integration \(n)", emails: n == 0 ? ["ops@example.com"] : nil, webhook: url)
                    for run in 0..<(n == 2 ? 6 : 1) {
                        let id = try await rows.syncRun(integration: integration, endpoint: "endpoint-\(run)")
                        try await connection.query("UPDATE integration_sync_history SET status = 'failed', error_message = 'token expired' WHERE id = $1", [id])
                    }
                }
            }
            let alertd = try AlertdProcess.start(environment: EmailEndToEndTests.environment(database, sink: sink, [
                "ALERTD_HTTP_ADDRESS": "127.0.0.1:0", "ALERTD_WEBHOOK_ALLOW": "127.0.0.1", "ALERTD_INCIDENT_SWEEP_INTERVAL": "1s",
                "ALERTD_SILENT_SWEEP_INTERVAL": "1s", "ALERTD_LOG_LEVEL": "info",
            ]))
            let address: StatusAddress
            do {
                address = try await StatusEndToEndTests.statusAddress(of: alertd)
            } catch {
                Issue.record("alertd did not say where it serves: \(alertd.output.suffix(2000))")
                throw error
            }
            // The rules as shipped, their `for:` durations none, so that a condition fires at once.
            let shipped = try String(contentsOf: Self.folder.appending(path: "alertd-rules.yml"), encoding: .utf8)
            let prometheus = try await Prometheus(scraping: address, rules: shipped.replacingOccurrences(of: #"for: [0-9]+[smh]"#, with: "for: 0s", options: .regularExpression))
            defer { prometheus.stop() }

            // Once Prometheus has seen the counters (an increase needs a sample before it), a URL
            // that is gone (410: a final failure, the URL disabled).
            try await DispatcherEndToEndTests.waitUntil(.seconds(30)) {
                (try await prometheus.query("alertd_final_failures_total offset 2s")).count >= 1
            }
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant("Gone"), name: "Gone", webhook: receiver.url("/codes/410/gone"))
                let id = try await rows.syncRun(integration: integration)
                try await connection.query("UPDATE integration_sync_history SET status = 'failed', error_message = 'token expired' WHERE id = $1", [id])
            }
            // The receiver that refuses connections: its circuit opens, and the rule fires; so do
            // the final failure's and the disabled URL's.
            var firing: Set<String> = []
            do {
                try await DispatcherEndToEndTests.waitUntil(.seconds(60)) {
                    firing = try await prometheus.firing()
                    return firing.isSuperset(of: ["AlertdDestinationUnavailable", "AlertdFinalFailures", "AlertdDestinationDisabled"])
                }
            } catch {
                let up = try await prometheus.query("up")
                let circuits = try await prometheus.query("alertd_circuits_open")
                Issue.record("firing: \(firing); up: \(up); circuits: \(circuits); log: \((try? String(contentsOf: prometheus.folder.appending(path: "prometheus.log"), encoding: .utf8))?.suffix(1500) ?? "")")
                throw error
            }
            #expect(!firing.contains("AlertdDown") && !firing.contains("AlertdNotReady") && !firing.contains("AlertdSMTPLoginRefused"), "\(firing)")

            // Every query returns data once a few scrapes are in (rates need two).
            try await Task.sleep(for: .seconds(3))
            for (panel, expression) in dashboard {
                let result = try await prometheus.query(expression)
                #expect(!result.isEmpty, "the panel \(panel): \(expression) returns no data")
            }
            for (name, expression) in rules {
                _ = try await prometheus.query(expression)
                // The condition's left-hand side: the figure the rule compares.
                let figure = expression.replacingOccurrences(of: #"\s*(>|<|==|!=|>=|<=)\s*[0-9.]+$"#, with: "", options: .regularExpression)
                #expect(figure != expression, "\(name): no comparison at the end of \(expression)")
                #expect(!(try await prometheus.query(figure)).isEmpty, "\(name): \(figure) returns no data")
            }
            if let picture = ProcessInfo.processInfo.environment["ALERTD_DASHBOARD_DATA"] {
                try await Self.recordDashboard(prometheus, database: database, receiver: receiver, to: URL(filePath: picture))
            }
            await alertd.stopExpectingExitZero()
        }
    }

    /// For the dashboard's picture (deploy/dev/dashboard-plot.py): two minutes more of failed runs,
    /// one every two seconds, then every panel's series over the whole run, as JSON.
    static func recordDashboard(_ prometheus: Prometheus, database: TestDatabase, receiver: WebhookReceiver, to file: URL) async throws {
        let start = Date().addingTimeInterval(-20)
        for n in 0..<60 {
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant("Load \(n)"), name: "Load \(n)", emails: n % 3 == 0 ? ["ops@example.com"] : nil, webhook: receiver.url(n % 5 == 0 ? "/codes/503,200/load-\(n)" : "/load-\(n)"))
                let id = try await rows.syncRun(integration: integration)
                try await connection.query("UPDATE integration_sync_history SET status = 'failed', error_message = 'token expired' WHERE id = $1", [id])
            }
            try await Task.sleep(for: .seconds(2))
        }
        let end = Date()
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appending(path: "alertd-dashboard.json"))) as? [String: Any])
        var panels: [[String: Any]] = []
        for panel in dashboard["panels"] as? [[String: Any]] ?? [] where panel["type"] as? String != "row" {
            var series: [[String: Any]] = []
            for target in panel["targets"] as? [[String: Any]] ?? [] {
                let expression = (target["expr"] as? String ?? "").replacingOccurrences(of: "$instance", with: ".*").replacingOccurrences(of: "$__rate_interval", with: "20s")
                var allowed = CharacterSet.alphanumerics
                allowed.insert(charactersIn: "-._~")
                let path = "/api/v1/query_range?query=\(expression.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")&start=\(start.timeIntervalSince1970)&end=\(end.timeIntervalSince1970)&step=2"
                let answer = try await StatusProbe.get(path, from: prometheus.address, timeout: .seconds(10))
                let body = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
                for result in (body?["data"] as? [String: Any])?["result"] as? [[String: Any]] ?? [] {
                    let labels = result["metric"] as? [String: String] ?? [:]
                    var legend = target["legendFormat"] as? String ?? ""
                    for (name, value) in labels { legend = legend.replacingOccurrences(of: "{{\(name)}}", with: value) }
                    series.append(["legend": legend, "values": result["values"] ?? []])
                }
            }
            panels.append(["title": panel["title"] ?? "", "unit": (panel["fieldConfig"] as? [String: Any]).flatMap { ($0["defaults"] as? [String: Any])?["unit"] } ?? "", "series": series])
        }
        try JSONSerialization.data(withJSONObject: ["start": start.timeIntervalSince1970, "end": end.timeIntervalSince1970, "panels": panels]).write(to: file)
    }
}
