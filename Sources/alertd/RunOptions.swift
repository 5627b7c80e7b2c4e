import AlertdKit
import ArgumentParser
import Foundation
import Logging

/// The options of `alertd run` and `alertd config`: each is also an ALERTD_* variable
/// (AlertdConfiguration.settings lists them with their defaults).
struct RunOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: "libpq conninfo string or postgresql:// URI ($ALERTD_DATABASE_URL).")
    var databaseURL: String?
    @Option(name: .customLong("templates-dir"), help: "Folder of Mustache templates ($ALERTD_TEMPLATES_DIR).")
    var templatesDirectory: String?
    @Option(name: .customLong("sql-dir"), help: "alertd's SQL folder, used to find templates/ beside it ($ALERTD_SQL_DIR).")
    var sqlDirectory: String?
    @Option(help: "This instance's name in leases and the audit ($ALERTD_INSTANCE).")
    var instance: String?
    @Option(name: .customLong("batch-size"), help: "Alerts claimed at once ($ALERTD_BATCH_SIZE, default 100).")
    var batchSize: String?
    @Option(name: .customLong("max-in-flight"), help: "Alerts being delivered at once ($ALERTD_MAX_IN_FLIGHT, default 512).")
    var maxInFlight: String?
    @Option(help: "How long a claimed alert is reserved ($ALERTD_LEASE, default 60s).")
    var lease: String?
    @Option(name: .customLong("poll-interval"), help: "Slow poll for due alerts ($ALERTD_POLL_INTERVAL, default 30s).")
    var pollInterval: String?
    @Option(name: .customLong("listen-check-interval"), help: "How often the idle LISTEN connection is checked ($ALERTD_LISTEN_CHECK_INTERVAL, default 30s).")
    var listenCheckInterval: String?
    @Option(name: .customLong("shutdown-grace"), help: "Time to finish in-flight work after SIGTERM ($ALERTD_SHUTDOWN_GRACE, default 20s).")
    var shutdownGrace: String?
    @Option(name: .customLong("retry-initial"), help: "Delay before the first retry ($ALERTD_RETRY_INITIAL, default 30s).")
    var retryInitial: String?
    @Option(name: .customLong("retry-max"), help: "Longest delay between retries ($ALERTD_RETRY_MAX, default 1h).")
    var retryMax: String?
    @Option(name: .customLong("link-base-url"), help: "Base URL for links to sync runs ($ALERTD_LINK_BASE_URL).")
    var linkBaseURL: String?
    @Option(name: .customLong("webhook-connect-timeout"), help: "($ALERTD_WEBHOOK_CONNECT_TIMEOUT, default 5s)")
    var webhookConnectTimeout: String?
    @Option(name: .customLong("webhook-timeout"), help: "($ALERTD_WEBHOOK_TIMEOUT, default 15s)")
    var webhookTimeout: String?
    @Option(name: .customLong("webhook-concurrency"), help: "Webhook connections open at once ($ALERTD_WEBHOOK_CONCURRENCY, default 64).")
    var webhookConcurrency: String?
    @Option(name: .customLong("webhook-per-host"), help: "Webhooks in flight to one host ($ALERTD_WEBHOOK_PER_HOST, default 16).")
    var webhookPerHost: String?
    @Option(name: .customLong("webhook-ca-file"), help: "CA bundle for https webhooks ($ALERTD_WEBHOOK_CA_FILE).")
    var webhookCAFile: String?
    @Option(name: .customLong("webhook-allow"), help: "Internal webhook receivers to admit: CIDRs and host names, comma-separated ($ALERTD_WEBHOOK_ALLOW).")
    var webhookAllow: String?
    @Option(name: .customLong("smtp-from"), help: "Sender address ($ALERTD_SMTP_FROM).")
    var smtpFrom: String?
    @Option(name: .customLong("smtp-tls"), help: "required, optional or none ($ALERTD_SMTP_TLS, default required).")
    var smtpTLS: String?
    @Option(name: .customLong("smtp-ca-file"), help: "CA bundle for the SMTP server ($ALERTD_SMTP_CA_FILE).")
    var smtpCAFile: String?
    @Option(name: .customLong("smtp-timeout"), help: "($ALERTD_SMTP_TIMEOUT, default 30s)")
    var smtpTimeout: String?
    @Option(name: .customLong("http-address"), help: "HOST:PORT to serve /healthz, /readyz and /metrics on ($ALERTD_HTTP_ADDRESS, default off).")
    var httpAddress: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical ($ALERTD_LOG_LEVEL, default info for run, warning otherwise).")
    var logLevel: String?
    @Option(name: .customLong("log-format"), help: "text, json (one object per line) or logfmt ($ALERTD_LOG_FORMAT, default text).")
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
            level: logLevel ?? environment["ALERTD_LOG_LEVEL"] ?? "info",
            format: logFormat ?? environment["ALERTD_LOG_FORMAT"] ?? "text"
        )
    }

    static func logger(level name: String) throws -> Logger {
        try AlertdLogHandler.logger(level: name, format: ProcessInfo.processInfo.environment["ALERTD_LOG_FORMAT"] ?? "text")
    }
}

/// Prints an error the way every alertd command does, and exits 1.
func reportFailure(_ error: any Error) -> ExitCode {
    FileHandle.standardError.write(Data("alertd: error: \(error)\n".utf8))
    return .failure
}
