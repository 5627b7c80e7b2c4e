import AlertdKit
import ArgumentParser
import CAlertdShims
import COpenSSL
import Foundation

@main
struct Alertd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alertd",
        abstract: "Turns sync-run outcomes in the ETL platform's database into email and webhook alerts.",
        discussion: """
            alertd --test-notification --integration <id> sends a test alert for an integration through the production path \
            and records it (origin = 'test'); alertd --test-notification --email <address> --webhook-url <url> tests targets \
            without the database. Either prints the outcome per channel and exits 1 if any delivery failed. A test \
            notification reads its configuration from the ALERTD_* variables that alertd run reads (see alertd config).
            """,
        version: AlertdVersion.string,
        subcommands: [RunCommand.self, ConfigCommand.self, DatabaseCommand.self, HistoryCommand.self, ShowCommand.self, ReplayCommand.self, IncidentsCommand.self, EndpointsCommand.self, SecretsCommand.self, HealthCommand.self, BenchCommand.self]
    )

    @Flag(name: .customLong("test-notification"), help: "Send a test notification and exit.")
    var testNotification = false

    @Option(name: .customLong("integration"), help: "With --test-notification: the integration_configs.id to test.")
    var integration: String?

    @Option(name: .customLong("email"), help: "With --test-notification: an address to send a test email to (repeatable).")
    var emails: [String] = []

    @Option(name: .customLong("webhook-url"), help: "With --test-notification: a URL to send a test webhook to (repeatable).")
    var webhookURLs: [String] = []

    func validate() throws {
        guard testNotification else {
            if integration != nil || !emails.isEmpty || !webhookURLs.isEmpty {
                throw ValidationError("--integration, --email and --webhook-url go with --test-notification.")
            }
            return
        }
        if integration == nil && emails.isEmpty && webhookURLs.isEmpty {
            throw ValidationError("--test-notification needs --integration <id>, or --email and/or --webhook-url.")
        }
        if integration != nil && (!emails.isEmpty || !webhookURLs.isEmpty) {
            throw ValidationError("Give either --integration or --email/--webhook-url, not both.")
        }
        if let integration, UUID(uuidString: integration) == nil {
            throw ValidationError("--integration takes the integration's id, a UUID.")
        }
    }

    /// Ignores SIGPIPE before anything else: libesmtp writes to its socket with plain write(2),
    /// and a server that hangs up mid-session would otherwise end the whole process silently.
    /// The write then fails with EPIPE, and the delivery is recorded as failed and retried.
    static func main() async {
        hideMemoryFromCrashReports()
        // Swift's crash report catches SIGSEGV, SIGABRT and the like; one sent with kill would
        // then leave alertd running after "Program crashed".
        _ = alertd_end_on_sent_crash_signals()
        signal(SIGPIPE, SIG_IGN)
        // OpenSSL frees its global state in an atexit handler, which must not run while another
        // thread still uses it; at exit a delivery thread (or its thread-local OpenSSL state)
        // may still be winding down, and the process would then crash on its way out instead of
        // exiting 0. The system frees everything at exit anyway. First, before libcurl, libpq
        // or libesmtp initialise OpenSSL.
        _ = OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_ATEXIT), nil)
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    /// Swift's crash report prints the memory each register points at, which may hold a
    /// password or a signing key. The runtime reads its settings before main, so alertd starts
    /// itself again, once, with registers and memory left out of the report (the stack trace
    /// stays). An operator's own SWIFT_BACKTRACE is left as it is.
    static func hideMemoryFromCrashReports() {
        guard getenv("SWIFT_BACKTRACE") == nil else { return }
        // The executable's own path, not /proc/self/exe, so that ps and top still say "alertd".
        var path = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &path, Int(PATH_MAX))
        guard length > 0 else { return }
        var settings = "enable=yes,registers=none,images=none,sanitize=yes"
        // alertd's release is linked statically and carries the runtime's crash reporter beside
        // it (deploy/install.sh; deploy/dev's scripts put the toolchain's there in .build); a
        // debug build finds the toolchain's by itself.
        let executable = String(decoding: path.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let reporter = URL(filePath: executable).deletingLastPathComponent().appending(path: "../libexec/alertd/swift-backtrace").standardized.path
        if access(reporter, X_OK) == 0 { settings += ",swift-backtrace=\(reporter)" }
        setenv("SWIFT_BACKTRACE", settings, 1)
        execv(path, CommandLine.unsafeArgv)
        // exec failed (no /proc): carry on with the runtime's defaults.
    }

    func run() async throws {
        guard testNotification else {
            print(Alertd.helpMessage())
            return
        }
        let results: [TestNotification.Result]
        do {
            let environment = ProcessInfo.processInfo.environment
            let configuration = try AlertdConfiguration.load(
                flags: [:], environment: environment, sqlDirectory: try? SQLDirectory.locate(flag: nil), requireDatabase: integration != nil
            )
            if !emails.isEmpty && configuration.smtp == nil {
                throw AlertdError(.configuration, "--email needs ALERTD_SMTP_URL and ALERTD_SMTP_FROM.")
            }
            let templates = try await AlertTemplates.load(from: configuration.templatesDirectory)
            let test = TestNotification(configuration: configuration, templates: templates, logger: try RunOptions.logger(level: environment["ALERTD_LOG_LEVEL"] ?? AlertdLogHandler.defaultLevel))
            if let integration, let id = UUID(uuidString: integration) {
                results = try await test.send(integration: id)
            } else {
                results = await test.send(emails: emails, webhookURLs: webhookURLs)
            }
        } catch {
            throw reportFailure(error)
        }
        for result in results { print(result.line) }
        if !results.allSatisfy(\.succeeded) { throw ExitCode.failure }
    }
}
