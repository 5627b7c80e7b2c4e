import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// Every command README.md and docs/ show in a shell block is run: the `alertd` and `psql` lines
/// here, as written, against real servers; the scripts by CI (this test checks that CI's scripts
/// call each one).
///
/// What a reader would change to suit their machine is changed here the same way, and only that:
/// example hosts become the test cluster, `/run/secrets/...` files become real files, placeholders
/// such as `<alert-id>` become real ids, and `alertd run` stops after a few seconds with SIGTERM
/// (its exit status is still checked).
@Suite struct DocumentedCommandsTests {
    struct Line: CustomStringConvertible {
        let file: String
        let block: Int
        let text: String
        var description: String { "\(file): \(text)" }
    }

    static let documents = ["README.md"] + ((try? FileManager.default.contentsOfDirectory(atPath: TestPostgres.packageRoot.appending(path: "docs").path)) ?? [])
        .filter { $0.hasSuffix(".md") }.sorted().map { "docs/\($0)" }

    /// Every line of every ```sh block, without its trailing comment.
    static func commandLines() throws -> [Line] {
        var lines: [Line] = []
        for file in documents {
            let text = try String(contentsOf: TestPostgres.packageRoot.appending(path: file), encoding: .utf8)
            var inBlock = false
            var block = 0
            for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
                if raw.hasPrefix("```") {
                    inBlock = !inBlock && raw == "```sh"
                    if inBlock { block += 1 }
                    continue
                }
                guard inBlock else { continue }
                let command = raw.replacing(/\s+#\s.*$/, with: "").trimmingCharacters(in: .whitespaces)
                if !command.isEmpty && !command.hasPrefix("#") { lines.append(Line(file: file, block: block, text: command)) }
            }
        }
        return lines
    }

    /// Lines this test runs itself.
    static func runsHere(_ line: Line) -> Bool {
        line.text.hasPrefix("export ") || line.text.hasPrefix("psql ") || line.text.contains(/(^|\s|\/)alertd\s/)
    }

    /// Commands for a container engine, a cluster or systemd.
    static func needsAHost(_ line: Line) -> Bool {
        ["docker", "kubectl", "systemctl", "journalctl", "install"].contains(line.text.split(separator: " ").first.map(String.init) ?? "")
    }

    @Test func everyOtherCommandIsRunByCI() throws {
        let lines = try Self.commandLines()
        #expect(lines.count > 30, "found only \(lines.count) command lines")
        let scripts = try [".ci/run", "deploy/dev/test.sh", "deploy/dev/check-docs.sh", "deploy/dev/check-deploy.sh"].map {
            try String(contentsOf: TestPostgres.packageRoot.appending(path: $0), encoding: .utf8)
        }.joined(separator: "\n")
        for line in lines where Self.needsAHost(line) {
            // No container engine, cluster or systemd runs here: deploy/dev/check-deploy.sh checks
            // the files these commands use; here, that each file they name exists.
            let paths = line.text.split(separator: " ").filter { $0.hasPrefix("deploy/") }
            for path in paths {
                #expect(FileManager.default.fileExists(atPath: TestPostgres.packageRoot.appending(path: String(path)).path), "\(line) names \(path), which does not exist")
            }
        }
        for line in lines where !Self.needsAHost(line) && (!Self.runsHere(line) || (line.text.hasPrefix("export ") && line.text.contains("$("))) {
            // The program and what it runs: "bash deploy/dev/pg.sh", "swift build", ...; for
            // `export X="$(command)"`, the command.
            let command = line.text.hasPrefix("export ") ? line.text.firstMatch(of: /\$\(([^)]*)\)/).map { String($0.1) } ?? line.text : line.text
            let words = command.split(separator: " ").prefix(2).joined(separator: " ")
            let program = words.replacingOccurrences(of: "/usr/bin/python3", with: "python3")
            #expect(scripts.contains(words) || scripts.contains(program), "\(line) is run by no CI script")
        }
    }

    @Test func theAlertdAndPsqlCommandsRunAsWritten() async throws {
        let lines = try Self.commandLines().filter { Self.runsHere($0) && !Self.needsAHost($0) }
        #expect(lines.count >= 25)
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        let sink = try await SMTPSink.start()
        defer { sink.stop() }
        let secrets = FileManager.default.temporaryDirectory.appending(path: "alertd-doc-secrets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: secrets, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: secrets) }
        try "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n".write(to: secrets.appending(path: "webhook-secret"), atomically: true, encoding: .utf8)
        try "smtp://127.0.0.1:\(sink.port)\n".write(to: secrets.appending(path: "smtp-url"), atomically: true, encoding: .utf8)

        var exports: [(file: String, block: Int, text: String)] = []
        for line in lines {
            if line.text.hasPrefix("export ") {
                exports.append((line.file, line.block, String(line.text.dropFirst("export ".count))))
                continue
            }
            // Each command gets a database in the state it needs; exports of its block apply.
            try await TestPostgres.withDatabase(Self.setup(for: line.text)) { database in
                let fixture = try await Self.fill(database, line: line.text, receiver: receiver)
                let substitute = { (text: String) in Self.substitute(text, database: database, fixture: fixture, secrets: secrets) }
                let prelude = exports.filter { $0.file == line.file && $0.block == line.block }.map { "export " + substitute($0.text) }
                let script = (["set -o pipefail", "cd '\(TestPostgres.packageRoot.path)'"] + prelude + [substitute(line.text)]).joined(separator: "\n")
                let result = try await TestProcess.run("/bin/bash", ["-c", script], environment: Self.environment(database))
                #expect(result.status == 0, "\(line) exited \(result.status):\n\(result.allOutput.suffix(2000))")
                if let expected = Self.expectedOutput.first(where: { line.text.contains($0.key) })?.value {
                    #expect(result.allOutput.contains(expected), "\(line) did not print \(expected):\n\(result.allOutput.suffix(2000))")
                }
                #expect(!result.allOutput.contains(TestPostgres.password) && !result.allOutput.contains(AlertdRole.testPassword), "\(line) printed a password")
            }
        }
    }

    /// What some lines must print besides exiting 0.
    static let expectedOutput: [String: String] = [
        "jq 'select(.msg == \"delivery\"": #""outcome": "retry""#,
        "--test-notification --integration": "email",
        "alertd db status": "applied",
        "alertd history --status failed": "failed",
        "alertd show <alert-id>": "HTTP 410",
        "alertd replay <alert-id>": "Queued",
        "alertd replay --failed": "queued again",
        "alertd incidents <incident-id>": "suppressed",
        "alertd history --incident": "suppressed",
        "alertd incidents --all": "open",
        "--help": "USAGE",
    ]

    static func setup(for command: String) -> TestPostgres.Setup {
        if command.contains("db init-platform") { return .empty }
        if command.contains("Fixtures/platform_") { return .platform }
        if command.contains("deploy/supabase/migrations/") { return .platform }
        return .migrated
    }

    struct Fixture {
        var integration = UUID()
        var failedAlert = UUID()
        var incident = UUID()
    }

    /// Rows for the commands to work on: an integration whose failed sync run queued an email and
    /// a webhook, another whose webhook the receiver answers 503, and a webhook alert that failed
    /// for good (HTTP 410).
    static func fill(_ database: TestDatabase, line: String, receiver: WebhookReceiver) async throws -> Fixture {
        var fixture = Fixture()
        if let file = line.firstMatch(of: /deploy\/supabase\/migrations\/([0-9A-Za-z_]+\.sql)/)?.1 {
            // A psql line applying one migration: the earlier ones are applied before it.
            let directory = TestPostgres.packageRoot.appending(path: "deploy/supabase/migrations")
            for earlier in try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() where earlier < file {
                try await database.applyWithPsql(directory.appending(path: earlier))
            }
            return fixture
        }
        guard setup(for: line) == .migrated, !line.contains("db rollback") else { return fixture }
        try await database.withConnection { connection in
            let rows = PlatformRows(connection)
            let tenant = try await rows.tenant()
            fixture.integration = try await rows.integration(tenant: tenant, emails: ["payroll-ops@example.com"], webhook: receiver.url("/docs"))
            try await rows.syncRun(integration: fixture.integration, status: "failed")
            // A repeat of the endpoint's incident: recorded suppressed.
            try await rows.syncRun(integration: fixture.integration, status: "failed")
            fixture.incident = try await connection.query("SELECT id FROM integration_alert_incidents WHERE integration_config_id = $1", [fixture.integration])[0].decode("id")
            let other = try await rows.integration(tenant: tenant, type: "adp", name: "ADP", webhook: receiver.url("/codes/503/docs"))
            try await rows.syncRun(integration: other, status: "failed")
            fixture.failedAlert = try await rows.alert(integration: other, channel: "webhook")
            try await connection.query(
                "UPDATE integration_alert_history SET delivery_status = 'failed', delivery_error = 'HTTP 410 Gone: the endpoint is gone', attempt_count = 1 WHERE id = $1",
                [fixture.failedAlert]
            )
            // The URL operations.md enables again.
            try await connection.query(
                "INSERT INTO alertd_destinations (destination, channel, state, disabled_at, disabled_reason, disabled_by) VALUES ('https://hooks.example.com/alerts', 'webhook', 'disabled', now(), 'the receiver answered 410 Gone: HTTP 410', 'docs')"
            )
        }
        return fixture
    }

    static func environment(_ database: TestDatabase) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ALERTD_") && !$0.key.hasPrefix("PG") }
        environment["PATH"] = TestPostgres.packageRoot.appending(path: ".build/debug").path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        environment["ALERTD_DATABASE_URL"] = database.url
        environment["DATABASE_URL"] = database.url
        environment["ADMIN_DATABASE_URL"] = database.url
        environment["ALERTD_DB_PASSWORD"] = AlertdRole.testPassword
        environment["PGPASSWORD"] = AlertdRole.testPassword
        environment["ALERTD_TEMPLATES_DIR"] = TestPostgres.packageRoot.appending(path: "templates").path
        // What a reader's mail server and receivers differ in: a local sink and receiver.
        environment["ALERTD_SMTP_TLS"] = "none"
        environment["ALERTD_WEBHOOK_ALLOW"] = "127.0.0.1"
        return environment
    }

    static func substitute(_ text: String, database: TestDatabase, fixture: Fixture, secrets: URL) -> String {
        let host = database.connectionString.value(of: "host") ?? "127.0.0.1"
        let port = database.connectionString.value(of: "port") ?? "5432"
        var text = text
        let replacements: [(String, String)] = [
            ("db.example.com:5432/postgres", "\(host):\(port)/\(database.name)"),
            ("sslmode=require", "sslmode=disable"),
            ("/run/secrets/alertd-webhook-secret", secrets.appending(path: "webhook-secret").path),
            ("/run/secrets/alertd-smtp-url", secrets.appending(path: "smtp-url").path),
            ("6f1c1b1e-3f0e-4b7a-9a55-2b1f3c4d5e6f", fixture.integration.postgresText),
            ("<alert-id>", fixture.failedAlert.postgresText),
            ("<incident-id>", fixture.incident.postgresText),
            ("<id>", fixture.integration.postgresText),
            // The login role of the page, under a name of its own: other tests use alertd's.
            ("-v user=alertd ", "-v user=alertd_doc_check "),
        ]
        for (from, to) in replacements { text = text.replacingOccurrences(of: from, with: to) }
        // alertd run until SIGTERM, after a few seconds; its exit status is alertd's own.
        return text.replacing(/(^|\s)alertd run(\s|$)/) { "\($0.1)timeout --preserve-status -s TERM 4 alertd run\($0.2)" }
    }
}
