import AlertdKit
import AlertdTestSupport
import Foundation
import Testing

@Suite struct AlertdConfigurationTests {
    static let base = ["ALERTD_DATABASE_URL": "postgresql://alertd:Db-Pa55@db.example.com/postgres"]

    @Test func defaultsAreSaneAndFlagsWinOverVariables() throws {
        let configuration = try AlertdConfiguration.load(flags: ["ALERTD_BATCH_SIZE": "7"], environment: Self.base.merging(["ALERTD_BATCH_SIZE": "9"]) { $1 }, sqlDirectory: nil)
        #expect(configuration.batchSize == 7)
        #expect(configuration.lease == .seconds(60))
        #expect(configuration.pollInterval == .seconds(30))
        #expect(configuration.webhook.totalTimeout == .seconds(15))
        #expect(configuration.channels == [.webhook])
        #expect(configuration.smtp == nil)
    }

    @Test func everyProblemIsReportedAtOnce() {
        let error = #expect(throws: (any Error).self) {
            try AlertdConfiguration.load(flags: [:], environment: [
                "ALERTD_BATCH_SIZE": "0", "ALERTD_LEASE": "soon", "ALERTD_WEBHOOK_SECRET": "not-a-secret",
                "ALERTD_SMTP_URL": "smtp://u:Smtp-Pa55@mail.example.com", "ALERTD_SMTP_TLS": "optional",
            ], sqlDirectory: nil)
        }
        if let error {
            let text = "\(error)"
            for variable in ["ALERTD_DATABASE_URL", "ALERTD_BATCH_SIZE", "ALERTD_LEASE", "ALERTD_WEBHOOK_SECRET", "ALERTD_SMTP_FROM", "unencrypted"] {
                #expect(text.contains(variable), "\(variable) in \(text)")
            }
            #expect(!text.contains("Smtp-Pa55"))
            #expect(!text.contains("not-a-secret"))
        }
    }

    @Test func secretsComeFromFiles() throws {
        let file = FileManager.default.temporaryDirectory.appending(path: "alertd-secret-\(UUID().uuidString)")
        try "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let configuration = try AlertdConfiguration.load(flags: [:], environment: Self.base.merging(["ALERTD_WEBHOOK_SECRET_FILE": file.path]) { $1 }, sqlDirectory: nil)
        #expect(configuration.webhookSigner.secrets.count == 1)
    }

    @Test func webhookSigningDefaultsToBothWithASharedSecretAndRefusesWhatCannotBe() throws {
        let shared = ["ALERTD_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
        func load(_ extra: [String: String]) throws -> AlertdConfiguration {
            try AlertdConfiguration.load(flags: [:], environment: Self.base.merging(extra) { $1 }, sqlDirectory: nil)
        }
        #expect(try load([:]).webhookSigning == .integration)
        #expect(try load(shared).webhookSigning == .both)
        #expect(try load(shared.merging(["ALERTD_WEBHOOK_SIGNING": "Integration"]) { $1 }).webhookSigning == .integration)
        #expect(try load(shared.merging(["ALERTD_WEBHOOK_SIGNING": "shared"]) { $1 }).webhookSigning == .shared)
        for (extra, says) in [
            (["ALERTD_WEBHOOK_SIGNING": "shared"], "ALERTD_WEBHOOK_SIGNING: shared signs with ALERTD_WEBHOOK_SECRET, which is not set"),
            (["ALERTD_WEBHOOK_SIGNING": "both"], "ALERTD_WEBHOOK_SIGNING: both signs with ALERTD_WEBHOOK_SECRET, which is not set"),
            (["ALERTD_WEBHOOK_SIGNING": "tenant"], "ALERTD_WEBHOOK_SIGNING: \"tenant\" is not integration, both or shared."),
        ] {
            let error = try #require(throws: AlertdError.self) { try load(extra) }
            #expect(error.message.contains(says), "\(error.message)")
        }
        #expect(try load(shared).redactedLines.contains { $0.hasPrefix("webhook_signing = both (each integration's own secret, then ALERTD_WEBHOOK_SECRET: 1 secret") })
    }

    @Test func theMessageLimitIsOnByDefaultAndReadsOffAndAWindow() throws {
        func load(_ extra: [String: String]) throws -> AlertdConfiguration {
            try AlertdConfiguration.load(flags: [:], environment: Self.base.merging(extra) { $1 }, sqlDirectory: nil)
        }
        #expect(try load([:]).messageLimits == .init(limit: 120, window: .seconds(3600)))
        #expect(try load(["ALERTD_MESSAGE_LIMIT": "off"]).messageLimits.limit == nil)
        #expect(try load(["ALERTD_MESSAGE_LIMIT": "500", "ALERTD_MESSAGE_LIMIT_WINDOW": "1d"]).messageLimits == .init(limit: 500, window: .seconds(86_400)))
        let error = try #require(throws: AlertdError.self) { try load(["ALERTD_MESSAGE_LIMIT": "0"]) }
        #expect(error.message.contains("ALERTD_MESSAGE_LIMIT: \"0\" is not a whole number from 1 to 1000000."))
        #expect(try load([:]).redactedLines.contains("message_limit = 120 messages per integration and channel in each 1h; past it, alerts are held"))
    }

    @Test func durationsReadAsPeopleWriteThem() {
        #expect(AlertdConfiguration.parseDuration("500ms") == .milliseconds(500))
        #expect(AlertdConfiguration.parseDuration("30s") == .seconds(30))
        #expect(AlertdConfiguration.parseDuration("5m") == .seconds(300))
        #expect(AlertdConfiguration.parseDuration("1h") == .seconds(3600))
        #expect(AlertdConfiguration.parseDuration("2.5") == .milliseconds(2500))
        #expect(AlertdConfiguration.parseDuration("later") == nil)
        #expect(AlertdConfiguration.parseDuration("-1s") == nil)
    }

    @Test func alertdConfigPrintsEverythingButTheSecrets() async throws {
        let secretFile = FileManager.default.temporaryDirectory.appending(path: "alertd-smtp-\(UUID().uuidString)")
        try "smtp://mailer:Smtp-Pa55@mail.example.com:587".write(to: secretFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: secretFile) }
        let result = try await TestProcess.alertd(["config"], environment: [
            "ALERTD_DATABASE_URL": "postgresql://alertd:Db-Pa55@db.example.com/postgres",
            "ALERTD_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "ALERTD_SMTP_URL_FILE": secretFile.path,
            "ALERTD_SMTP_FROM": "alerts@example.com",
            "ALERTD_TEMPLATES_DIR": TestPostgres.packageRoot.appending(path: "templates").path,
        ])
        #expect(result.status == 0, "\(result.allOutput)")
        for line in ["host=db.example.com", "smtp = smtp://mailer:********@mail.example.com:587 tls=required", "webhook_secret = 1 secret, ********", "channels = email, webhook"] {
            #expect(result.standardOutput.contains(line), "\(line)")
        }
        for secret in ["Db-Pa55", "Smtp-Pa55", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
            #expect(!result.allOutput.contains(secret), "\(secret)")
        }
    }

    /// alertd --test-notification --email/--webhook-url needs no database: alertd config
    /// --no-database checks that set-up, and without the flag the error points to it.
    @Test func alertdConfigChecksASetUpWithoutADatabase() async throws {
        let environment = [
            "ALERTD_SMTP_URL": "smtp://mail.example.com:587",
            "ALERTD_SMTP_FROM": "Alerts <alerts@example.com>",
            "ALERTD_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "ALERTD_TEMPLATES_DIR": TestPostgres.packageRoot.appending(path: "templates").path,
        ]
        let checked = try await TestProcess.alertd(["config", "--no-database"], environment: environment)
        #expect(checked.status == 0)
        #expect(checked.standardOutput.contains("database = (none: --no-database)"))
        #expect(checked.standardOutput.contains("from=Alerts <alerts@example.com>"))
        let missing = try await TestProcess.alertd(["config"], environment: environment)
        #expect(missing.status == 1)
        #expect(missing.standardError.contains("alertd config --no-database"), "\(missing.standardError)")
        var broken = environment
        broken["ALERTD_SMTP_URL"] = "smtp://mail.example.com:465"
        let refused = try await TestProcess.alertd(["config", "--no-database"], environment: broken)
        #expect(refused.status == 1)
        #expect(refused.standardError.contains("implicit TLS"))
    }

    @Test func aBrokenTemplateStopsAlertdConfigAndAlertdRun() async throws {
        let templates = FileManager.default.temporaryDirectory.appending(path: "alertd-templates-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: TestPostgres.packageRoot.appending(path: "templates"), to: templates)
        defer { try? FileManager.default.removeItem(at: templates) }
        try "{{#alert}}".write(to: templates.appending(path: "success.html.mustache"), atomically: true, encoding: .utf8)
        for command in [["config"], ["run"]] {
            let result = try await TestProcess.alertd(command, environment: ["ALERTD_DATABASE_URL": "host=127.0.0.1 port=1 dbname=x", "ALERTD_TEMPLATES_DIR": templates.path])
            #expect(result.status == 1, "\(command)")
            #expect(result.standardError.contains("success.html.mustache"), "\(command): \(result.standardError)")
        }
    }
}
