import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// No secret alertd is given shows in what it prints, even when it crashes or is misconfigured.
@Suite struct SecretsInOutputTests {
    static let smtpPassword = "smtp-Pa55-never-shown"
    static let webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let webhookKey = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    static func secrets(_ database: TestDatabase) -> [String] {
        [TestPostgres.password, AlertdRole.testPassword, smtpPassword, webhookSecret, webhookKey]
    }

    static func environment(_ database: TestDatabase, smtpPort: Int) -> [String: String] {
        [
            "ALERTD_DATABASE_URL": database.alertdURL,
            "ALERTD_WEBHOOK_SECRET": webhookSecret,
            "ALERTD_SMTP_URL": "smtp://mailer:\(smtpPassword)@127.0.0.1:\(smtpPort)",
            "ALERTD_SMTP_FROM": "alertd@example.com",
            "ALERTD_SMTP_TLS": "none",
            "ALERTD_SMTP_ALLOW_INSECURE_AUTH": "true",
            "ALERTD_LOG_LEVEL": "trace",
        ]
    }

    /// The crash report Swift's runtime prints (registers, stack, memory near the fault) when
    /// alertd dies of a signal; and that it does die of it, even of a SIGSEGV sent with kill,
    /// which the runtime's report alone would survive.
    @Test(arguments: [SIGSEGV, SIGABRT, SIGBUS, SIGILL])
    func aCrashReportShowsNoSecretAndAlertdEnds(signal: Int32) async throws {
        let sink = try await SMTPSink.start()
        defer { sink.stop() }
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: Self.environment(database, smtpPort: sink.port))
            try await DispatcherEndToEndTests.waitUntil(.seconds(20)) { alertd.output.contains("alertd started") }
            kill(alertd.pid, signal)
            let ended = (try? await DispatcherEndToEndTests.waitUntil(.seconds(60)) { !alertd.isRunning }) != nil
            #expect(
                ended && alertd.endingSignal == signal,
                "alertd should end by signal \(signal); it \(ended ? "ended otherwise" : "still ran 60 s later"). It printed:\n\(alertd.output.suffix(6_000))"
            )
            let output = alertd.output
            #expect(output.contains("alertd started"))
            #expect(output.contains("Program crashed"))
            #expect(!output.contains("rip 0x"), "the report shows registers and the memory they point at")
            for secret in Self.secrets(database) {
                #expect(!output.contains(secret), "signal \(signal): the output shows a secret")
            }
        }
    }

    /// Errors at start: bad values next to secrets, a server that refuses the password.
    @Test func startupErrorsShowNoSecret() async throws {
        try await TestPostgres.withDatabase { database in
            let url = try PostgresConnectionString(database.alertdURL)
            let wrongPassword = "wrong-Pa55-never-shown"
            let cases: [[String: String]] = [
                ["ALERTD_SMTP_URL": "smtp://mailer:\(Self.smtpPassword)@127.0.0.1:notaport", "ALERTD_WEBHOOK_SECRET": "whsec_\(Self.webhookKey)x!"],
                ["ALERTD_SMTP_URL": "smtps://mailer:\(Self.smtpPassword)@[::1", "ALERTD_LEASE": "soon"],
                ["ALERTD_DATABASE_URL": "postgresql://alertd:\(wrongPassword)@\(url.value(of: "host") ?? "127.0.0.1"):\(url.value(of: "port") ?? "5432")/\(database.name)?connect_timeout=2"],
                ["ALERTD_DATABASE_URL": "postgresql://alertd:\(wrongPassword)@127.0.0.1:1/x?connect_timeout=1&sslmode=bogus"],
            ]
            for extra in cases {
                var environment = Self.environment(database, smtpPort: 1).merging(extra) { $1 }
                environment["ALERTD_TEMPLATES_DIR"] = TestPostgres.packageRoot.appending(path: "templates").path
                for command in [["run"], ["config"], ["--test-notification", "--integration", UUID().uuidString.lowercased()]] {
                    let result = try await Self.runBriefly(command, environment: environment)
                    for secret in Self.secrets(database) + [wrongPassword] {
                        #expect(!result.contains(secret), "alertd \(command.joined(separator: " ")) with \(extra.keys.sorted()): the output shows a secret")
                    }
                }
            }
        }
    }

    /// Runs alertd for at most a few seconds (`run` against a server that refuses keeps
    /// retrying), then stops it; returns all it printed.
    static func runBriefly(_ arguments: [String], environment: [String: String]) async throws -> String {
        guard arguments == ["run"] else {
            return try await TestProcess.alertd(arguments, environment: environment).allOutput
        }
        let alertd = try AlertdProcess.start(environment: environment)
        try? await DispatcherEndToEndTests.waitUntil(.seconds(3)) { !alertd.isRunning }
        await alertd.stop(signal: SIGTERM, timeout: .seconds(20))
        return alertd.output
    }
}
