import AlertdKit
import ArgumentParser
import Foundation
import Logging

/// The options of `alertd run` and `alertd config`: each is also an ALERTD_* variable
/// (AlertdConfiguration.settings lists them with their defaults).
struct RunOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: .setting("ALERTD_DATABASE_URL"))
    var databaseURL: String?
    @Option(name: .customLong("templates-dir"), help: .setting("ALERTD_TEMPLATES_DIR"))
    var templatesDirectory: String?
    @Option(name: .customLong("sql-dir"), help: "alertd's SQL folder, used to find templates/ beside it ($ALERTD_SQL_DIR).")
    var sqlDirectory: String?
    @Option(help: .setting("ALERTD_INSTANCE"))
    var instance: String?
    @Option(name: .customLong("batch-size"), help: .setting("ALERTD_BATCH_SIZE"))
    var batchSize: String?
    @Option(name: .customLong("max-in-flight"), help: .setting("ALERTD_MAX_IN_FLIGHT"))
    var maxInFlight: String?
    @Option(help: .setting("ALERTD_LEASE"))
    var lease: String?
    @Option(name: .customLong("poll-interval"), help: .setting("ALERTD_POLL_INTERVAL"))
    var pollInterval: String?
    @Option(name: .customLong("listen-check-interval"), help: .setting("ALERTD_LISTEN_CHECK_INTERVAL"))
    var listenCheckInterval: String?
    @Option(name: .customLong("shutdown-grace"), help: .setting("ALERTD_SHUTDOWN_GRACE"))
    var shutdownGrace: String?
    @Option(name: .customLong("retry-initial"), help: .setting("ALERTD_RETRY_INITIAL"))
    var retryInitial: String?
    @Option(name: .customLong("retry-max"), help: .setting("ALERTD_RETRY_MAX"))
    var retryMax: String?
    @Option(name: .customLong("link-base-url"), help: .setting("ALERTD_LINK_BASE_URL"))
    var linkBaseURL: String?
    @Option(name: .customLong("webhook-connect-timeout"), help: .setting("ALERTD_WEBHOOK_CONNECT_TIMEOUT"))
    var webhookConnectTimeout: String?
    @Option(name: .customLong("webhook-timeout"), help: .setting("ALERTD_WEBHOOK_TIMEOUT"))
    var webhookTimeout: String?
    @Option(name: .customLong("webhook-concurrency"), help: .setting("ALERTD_WEBHOOK_CONCURRENCY"))
    var webhookConcurrency: String?
    @Option(name: .customLong("webhook-per-host"), help: .setting("ALERTD_WEBHOOK_PER_HOST"))
    var webhookPerHost: String?
    @Option(name: .customLong("webhook-ca-file"), help: .setting("ALERTD_WEBHOOK_CA_FILE"))
    var webhookCAFile: String?
    @Option(name: .customLong("webhook-allow"), help: .setting("ALERTD_WEBHOOK_ALLOW"))
    var webhookAllow: String?
    @Option(name: .customLong("smtp-from"), help: .setting("ALERTD_SMTP_FROM"))
    var smtpFrom: String?
    @Option(name: .customLong("smtp-tls"), help: .setting("ALERTD_SMTP_TLS"))
    var smtpTLS: String?
    @Option(name: .customLong("smtp-ca-file"), help: .setting("ALERTD_SMTP_CA_FILE"))
    var smtpCAFile: String?
    @Option(name: .customLong("smtp-timeout"), help: .setting("ALERTD_SMTP_TIMEOUT"))
    var smtpTimeout: String?
    @Option(name: .customLong("http-address"), help: .setting("ALERTD_HTTP_ADDRESS"))
    var httpAddress: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical ($ALERTD_LOG_LEVEL, default \(AlertdLogHandler.defaultRunLevel) for run, \(AlertdLogHandler.defaultLevel) otherwise).")
    var logLevel: String?
    @Option(name: .customLong("log-format"), help: "text, json (one object per line) or logfmt ($ALERTD_LOG_FORMAT, default \(AlertdLogHandler.defaultFormat)).")
    var logFormat: String?

    /// The flags given, keyed by their variable. Secrets (the webhook secret, the SMTP URL with its
    /// password) have no flag:
    /// command lines are visible to other users; use the variable or its _FILE.
    var flags: [String: String] {
        let pairs: [(String, String?)] = [
            ("ALERTD_DATABASE_URL", databaseURL), ("ALERTD_TEMPLATES_DIR", templatesDirectory), ("ALERTD_INSTANCE", instance),
            ("ALERTD_BATCH_SIZE", batchSize), ("ALERTD_MAX_IN_FLIGHT", maxInFlight), ("ALERTD_LEASE", lease), ("ALERTD_POLL_INTERVAL", pollInterval), ("ALERTD_LISTEN_CHECK_INTERVAL", listenCheckInterval),
            ("ALERTD_SHUTDOWN_GRACE", shutdownGrace), ("ALERTD_RETRY_INITIAL", retryInitial), ("ALERTD_RETRY_MAX", retryMax),
            ("ALERTD_LINK_BASE_URL", linkBaseURL), ("ALERTD_WEBHOOK_CONNECT_TIMEOUT", webhookConnectTimeout),
            ("ALERTD_WEBHOOK_TIMEOUT", webhookTimeout), ("ALERTD_WEBHOOK_CONCURRENCY", webhookConcurrency), ("ALERTD_WEBHOOK_PER_HOST", webhookPerHost),
            ("ALERTD_WEBHOOK_CA_FILE", webhookCAFile), ("ALERTD_WEBHOOK_ALLOW", webhookAllow), ("ALERTD_SMTP_FROM", smtpFrom), ("ALERTD_SMTP_TLS", smtpTLS),
            ("ALERTD_SMTP_CA_FILE", smtpCAFile), ("ALERTD_SMTP_TIMEOUT", smtpTimeout), ("ALERTD_HTTP_ADDRESS", httpAddress),
        ]
        return Dictionary(uniqueKeysWithValues: pairs.compactMap { key, value in value.map { (key, $0) } })
    }

    func configuration(requireDatabase: Bool = true) throws -> AlertdConfiguration {
        let environment = ProcessInfo.processInfo.environment
        let directory = try? SQLDirectory.locate(flag: sqlDirectory)
        return try AlertdConfiguration.load(flags: flags, environment: environment, sqlDirectory: directory, requireDatabase: requireDatabase)
    }

    func logger() throws -> Logger {
        let environment = ProcessInfo.processInfo.environment
        return try AlertdLogHandler.logger(
            level: logLevel ?? environment["ALERTD_LOG_LEVEL"] ?? AlertdLogHandler.defaultRunLevel,
            format: logFormat ?? environment["ALERTD_LOG_FORMAT"] ?? AlertdLogHandler.defaultFormat
        )
    }

    static func logger(level name: String) throws -> Logger {
        try AlertdLogHandler.logger(level: name, format: ProcessInfo.processInfo.environment["ALERTD_LOG_FORMAT"] ?? AlertdLogHandler.defaultFormat)
    }
}

extension ArgumentHelp {
    /// A flag's help, from its setting: what it does, its variable and its default, written once
    /// (`AlertdConfiguration.settings`).
    static func setting(_ variable: String) -> ArgumentHelp {
        let setting = AlertdConfiguration.setting(variable)
        return ArgumentHelp("\(setting.help) ($\(variable)\(setting.defaultValue.map { ", default \($0)" } ?? "")).")
    }
}

/// Prints an error the way every alertd command does, and exits 1.
func reportFailure(_ error: any Error) -> ExitCode {
    FileHandle.standardError.write(Data("alertd: error: \(error)\n".utf8))
    return .failure
}
