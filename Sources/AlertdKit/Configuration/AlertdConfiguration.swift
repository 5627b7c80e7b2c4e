import AlertdPostgres
import AlertdSupport
import Foundation

/// Everything `alertd run` needs, read from flags and ALERTD_* variables (and `*_FILE` files for
/// secrets), with defaults, validated in one place: every problem is reported at once.
public struct AlertdConfiguration: Sendable {
    public var database: PostgresConnectionString
    public var templatesDirectory: URL
    /// This instance's name in leases and the audit.
    public var instance: String
    public var batchSize: Int
    /// Alerts claimed and not yet recorded, at most: what bounds the work (and memory) in flight.
    public var maxInFlight: Int
    public var lease: Duration
    /// The slow poll that finds due alerts even when no notification arrives.
    public var pollInterval: Duration
    /// How often an idle LISTEN connection is checked with `SELECT 1`; the answer must come
    /// within this interval too (10 s at most).
    public var listenCheckInterval: Duration
    public var shutdownGrace: Duration
    public var retryBackoff: Backoff
    public var linkBaseURL: String?
    public var webhook: WebhookClient.Settings
    /// ALERTD_WEBHOOK_SECRET's secrets.
    public var webhookSigner: WebhookSigner
    /// Which secrets sign webhooks (ALERTD_WEBHOOK_SIGNING).
    public var webhookSigning: WebhookSigning = .integration
    /// Where email goes; nil when ALERTD_SMTP_URL is not set (email alerts then stay pending).
    public var smtp: SMTPSettings?
    /// The channels this instance delivers; alerts of the others stay pending for an instance that can.
    public var channels: [Channel]
    /// Where /healthz, /readyz and /metrics are served; nil (the default): not served.
    public var httpAddress: StatusAddress?
    /// Incidents' defaults for every integration, and how often reminders are looked for.
    public var incidents: IncidentSettings
    /// Which failures that write nothing alertd looks for (overdue endpoints, stuck runs), and
    /// how often.
    public var silentFailures = SilentFailureSettings()
    /// Destination health: circuits, probes, how long alerts wait, when URLs are disabled.
    public var destinations = DestinationSettings()
    /// The limit on messages per integration, channel and window.
    public var messageLimits = MessageLimits.Settings()

    /// One setting: its variable, its flag, and whether its value is a secret.
    public struct Setting: Sendable {
        public let variable: String
        public let flag: String
        public let secret: Bool
        public let defaultValue: String?
        public let help: String
    }

    public static let settings: [Setting] = [
        Setting(variable: "ALERTD_DATABASE_URL", flag: "database-url", secret: true, defaultValue: nil, help: "libpq conninfo string or postgresql:// URI"),
        Setting(variable: "ALERTD_TEMPLATES_DIR", flag: "templates-dir", secret: false, defaultValue: nil, help: "folder of Mustache templates (default: alertd's templates/)"),
        Setting(variable: "ALERTD_INSTANCE", flag: "instance", secret: false, defaultValue: nil, help: "this instance's name in leases and the audit (default: host name and process ID)"),
        Setting(variable: "ALERTD_BATCH_SIZE", flag: "batch-size", secret: false, defaultValue: "100", help: "alerts claimed at once, 1 to 10000"),
        Setting(variable: "ALERTD_MAX_IN_FLIGHT", flag: "max-in-flight", secret: false, defaultValue: "512", help: "alerts being delivered at once (claimed, not yet recorded), 1 to 100000"),
        Setting(variable: "ALERTD_LEASE", flag: "lease", secret: false, defaultValue: "60s", help: "how long a claimed alert is reserved for this instance"),
        Setting(variable: "ALERTD_POLL_INTERVAL", flag: "poll-interval", secret: false, defaultValue: "30s", help: "slow poll for due alerts, besides notifications"),
        Setting(variable: "ALERTD_LISTEN_CHECK_INTERVAL", flag: "listen-check-interval", secret: false, defaultValue: "30s", help: "how often the idle LISTEN connection is checked, to notice one cut without a close"),
        Setting(variable: "ALERTD_SHUTDOWN_GRACE", flag: "shutdown-grace", secret: false, defaultValue: "20s", help: "time to finish in-flight deliveries after SIGTERM"),
        Setting(variable: "ALERTD_RETRY_INITIAL", flag: "retry-initial", secret: false, defaultValue: "30s", help: "delay before the first retry of a failed delivery"),
        Setting(variable: "ALERTD_RETRY_MAX", flag: "retry-max", secret: false, defaultValue: "1h", help: "longest delay between retries"),
        Setting(variable: "ALERTD_LINK_BASE_URL", flag: "link-base-url", secret: false, defaultValue: nil, help: "base URL for links to sync runs in messages"),
        Setting(variable: "ALERTD_HTTP_ADDRESS", flag: "http-address", secret: false, defaultValue: nil, help: "HOST:PORT to serve /healthz, /readyz and /metrics on, such as 127.0.0.1:9464 (default: off)"),
        Setting(variable: "ALERTD_WEBHOOK_SECRET", flag: "webhook-secret", secret: true, defaultValue: nil, help: "whsec_ signing secrets, space-separated, newest first: for a single-tenant installation, or beside each integration's own while receivers move to theirs"),
        Setting(variable: "ALERTD_WEBHOOK_SIGNING", flag: "webhook-signing", secret: false, defaultValue: nil, help: "integration: each integration's own secret signs its webhooks; both: its own, then ALERTD_WEBHOOK_SECRET's; shared: ALERTD_WEBHOOK_SECRET's alone (default: both with ALERTD_WEBHOOK_SECRET, else integration)"),
        Setting(variable: "ALERTD_WEBHOOK_CONNECT_TIMEOUT", flag: "webhook-connect-timeout", secret: false, defaultValue: WebhookClient.Settings().connectTimeout.settingText, help: "webhook connect timeout"),
        Setting(variable: "ALERTD_WEBHOOK_TIMEOUT", flag: "webhook-timeout", secret: false, defaultValue: WebhookClient.Settings().totalTimeout.settingText, help: "webhook total timeout"),
        Setting(variable: "ALERTD_WEBHOOK_CONCURRENCY", flag: "webhook-concurrency", secret: false, defaultValue: String(WebhookClient.Settings().concurrency), help: "webhook connections open at once, to all receivers, 1 to 1024"),
        Setting(variable: "ALERTD_WEBHOOK_PER_HOST", flag: "webhook-per-host", secret: false, defaultValue: String(WebhookClient.Settings().perHost), help: "connections to one host at once, 1 to 1024; a slow receiver holds at most 8 × this many webhooks"),
        Setting(variable: "ALERTD_WEBHOOK_CA_FILE", flag: "webhook-ca-file", secret: false, defaultValue: nil, help: "CA bundle for https webhooks instead of the system's"),
        Setting(variable: "ALERTD_WEBHOOK_ALLOW", flag: "webhook-allow", secret: false, defaultValue: nil, help: "internal webhook receivers to admit: CIDRs and host names, comma-separated"),
        Setting(variable: "ALERTD_INCIDENTS", flag: "incidents", secret: false, defaultValue: "on", help: "on: a failing endpoint's repeated failures are recorded suppressed, with reminders and a recovery notice; off: every failed run sends its alerts (an integration overrides it in configuration_metadata)"),
        Setting(variable: "ALERTD_INCIDENT_REPEAT_INTERVAL", flag: "incident-repeat-interval", secret: false, defaultValue: IncidentSettings.defaultRepeatInterval.settingText, help: "how long an incident stays open before a reminder, and between reminders; off for none"),
        Setting(variable: "ALERTD_GROUP_WAIT", flag: "group-wait", secret: false, defaultValue: IncidentSettings.defaultGroupWait.settingText, help: "how long the news of an integration's first failing endpoint waits for others, to go out as one message; 0s sends it at once"),
        Setting(variable: "ALERTD_GROUP_INTERVAL", flag: "group-interval", secret: false, defaultValue: IncidentSettings.defaultGroupInterval.settingText, help: "after an integration's news went out, how long the news of its other failing endpoints is held to go out together as one message; off for none"),
        Setting(variable: "ALERTD_INCIDENT_SWEEP_INTERVAL", flag: "incident-sweep-interval", secret: false, defaultValue: IncidentSettings.defaultSweepInterval.settingText, help: "how often alertd looks for incidents due a reminder"),
        Setting(variable: "ALERTD_OVERDUE", flag: "overdue", secret: false, defaultValue: "on", help: "on: an enabled endpoint whose scheduled run did not start gets an overdue alert, and a notice when it runs again; off: not watched (an integration overrides it in configuration_metadata)"),
        Setting(variable: "ALERTD_OVERDUE_GRACE", flag: "overdue-grace", secret: false, defaultValue: SilentFailureSettings.defaultOverdueGrace.settingText, help: "how late a scheduled run may start before its endpoint is overdue, at least; a quarter of the endpoint's interval when that is longer"),
        Setting(variable: "ALERTD_STUCK", flag: "stuck", secret: false, defaultValue: "on", help: "on: a run still running three times longer than its endpoint usually takes gets a stuck alert, and a notice when it ends; off: not watched (an integration overrides it in configuration_metadata)"),
        Setting(variable: "ALERTD_STUCK_AFTER_MIN", flag: "stuck-after-min", secret: false, defaultValue: SilentFailureSettings.defaultStuckAfterMinimum.settingText, help: "the shortest time a run may run before it is stuck, whatever its endpoint usually takes"),
        Setting(variable: "ALERTD_STUCK_AFTER_MAX", flag: "stuck-after-max", secret: false, defaultValue: SilentFailureSettings.defaultStuckAfterMaximum.settingText, help: "the longest time a run may run before it is stuck; also the limit when alertd cannot tell what its endpoint usually takes"),
        Setting(variable: "ALERTD_SILENT_SWEEP_INTERVAL", flag: "silent-sweep-interval", secret: false, defaultValue: SilentFailureSettings.defaultSweepInterval.settingText, help: "how often alertd looks for overdue endpoints and stuck runs"),
        Setting(variable: "ALERTD_CIRCUIT_FAILURES", flag: "circuit-failures", secret: false, defaultValue: String(DestinationSettings.defaultCircuitFailures), help: "failures in a row (no connection, timeouts, 5xx, 429) that open a destination's circuit: its alerts wait, unspent, while one probe at a time is sent; off: every alert retries on its own"),
        Setting(variable: "ALERTD_CIRCUIT_PROBE_MAX", flag: "circuit-probe-max", secret: false, defaultValue: DestinationSettings.defaultProbeMaximum.settingText, help: "the longest wait between probes of an open circuit (from 5s, doubling, with jitter; longer when the receiver's Retry-After asks)"),
        Setting(variable: "ALERTD_ALERT_MAX_AGE", flag: "alert-max-age", secret: false, defaultValue: DestinationSettings.defaultMaxAge.settingText, help: "the longest an alert waits to be delivered, from its creation or last replay; past it, it fails, saying so"),
        Setting(variable: "ALERTD_DESTINATION_DISABLE_AFTER", flag: "destination-disable-after", secret: false, defaultValue: DestinationSettings.defaultDisableAfter.settingText, help: "a webhook URL failing this long without a success is disabled and its integration's addresses told; off: only a 410 Gone disables one"),
        Setting(variable: "ALERTD_MESSAGE_LIMIT", flag: "message-limit", secret: false, defaultValue: String(MessageLimits.Settings.defaultLimit), help: "messages one integration may send per channel in each window (1 to 1000000); past it, its alerts are held, not sent, and one message at the window's end says how many; off: no limit (an integration overrides it in configuration_metadata)"),
        Setting(variable: "ALERTD_MESSAGE_LIMIT_WINDOW", flag: "message-limit-window", secret: false, defaultValue: MessageLimits.Settings.defaultWindow.settingText, help: "the window the message limit counts over, aligned to the clock (1h: each whole hour)"),
        Setting(variable: "ALERTD_SMTP_URL", flag: "smtp-url", secret: true, defaultValue: nil, help: "smtp://[user:password@]host[:port] (port 587 by default); email is off without it"),
        Setting(variable: "ALERTD_SMTP_FROM", flag: "smtp-from", secret: false, defaultValue: nil, help: "sender address, required with ALERTD_SMTP_URL"),
        Setting(variable: "ALERTD_SMTP_TLS", flag: "smtp-tls", secret: false, defaultValue: "required", help: "required (STARTTLS, verified), optional or none"),
        Setting(variable: "ALERTD_SMTP_CA_FILE", flag: "smtp-ca-file", secret: false, defaultValue: nil, help: "CA bundle for the SMTP server's certificate instead of the system's"),
        Setting(variable: "ALERTD_SMTP_ALLOW_INSECURE_AUTH", flag: "smtp-allow-insecure-auth", secret: false, defaultValue: "false", help: "allow AUTH without required TLS"),
        Setting(variable: "ALERTD_SMTP_TIMEOUT", flag: "smtp-timeout", secret: false, defaultValue: "30s", help: "timeout of each SMTP step"),
        Setting(variable: "ALERTD_SMTP_HELO_NAME", flag: "smtp-helo-name", secret: false, defaultValue: nil, help: "the name alertd gives in EHLO (default: this machine's fully qualified name, else the sender's domain)"),
    ]

    /// The setting of `variable`.
    public static func setting(_ variable: String) -> Setting {
        guard let setting = settings.first(where: { $0.variable == variable }) else { preconditionFailure("no setting \(variable)") }
        return setting
    }

    /// Reads the configuration: a flag wins over its variable, which wins over `<variable>_FILE`,
    /// which wins over the default.
    public static func load(flags: [String: String], environment: [String: String], sqlDirectory: SQLDirectory?, requireDatabase: Bool = true) throws -> AlertdConfiguration {
        var problems: [String] = []
        func value(_ variable: String) -> String? {
            if let flag = flags[variable] { return flag }
            if let value = environment[variable] { return value }
            if let path = environment[variable + "_FILE"] {
                do {
                    return try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                } catch {
                    problems.append("\(variable)_FILE: cannot read \(path).")
                    return nil
                }
            }
            return settings.first { $0.variable == variable }?.defaultValue
        }
        var invalid: Set<String> = []
        func duration(_ variable: String) -> Duration {
            let text = value(variable) ?? ""
            guard let parsed = parseDuration(text), parsed > .zero else {
                problems.append("\(variable): \"\(text)\" is not a duration such as 500ms, 30s, 5m or 1h.")
                invalid.insert(variable)
                return .seconds(1)
            }
            return parsed
        }
        func integer(_ variable: String, _ range: ClosedRange<Int>) -> Int {
            let text = value(variable) ?? ""
            guard let parsed = Int(text), range.contains(parsed) else {
                problems.append("\(variable): \"\(text)\" is not a whole number from \(range.lowerBound) to \(range.upperBound).")
                return range.lowerBound
            }
            return parsed
        }

        var incidents = IncidentSettings()
        switch value("ALERTD_INCIDENTS")?.lowercased() {
        case "on", "true": incidents.enabled = true
        case "off", "false": incidents.enabled = false
        case let other: problems.append("ALERTD_INCIDENTS: \"\(other ?? "")\" is not on or off.")
        }
        let repeatText = value("ALERTD_INCIDENT_REPEAT_INTERVAL") ?? ""
        if ["off", "0", "none"].contains(repeatText.lowercased()) {
            incidents.repeatInterval = nil
        } else {
            let interval = duration("ALERTD_INCIDENT_REPEAT_INTERVAL")
            incidents.repeatInterval = interval
            if interval < .seconds(1) && !invalid.contains("ALERTD_INCIDENT_REPEAT_INTERVAL") {
                problems.append("ALERTD_INCIDENT_REPEAT_INTERVAL: \(interval.settingText) is shorter than a second; write off for no reminders.")
            }
        }
        incidents.sweepInterval = duration("ALERTD_INCIDENT_SWEEP_INTERVAL")
        func grouping(_ variable: String) -> Duration {
            let text = value(variable) ?? ""
            if ["off", "none"].contains(text.lowercased()) { return .zero }
            guard let parsed = parseDuration(text), parsed <= .seconds(3600) else {
                problems.append("\(variable): \"\(text)\" is not a duration from 0s to 1h such as 0s, 30s or 2m (off for none).")
                return .zero
            }
            return parsed
        }
        incidents.groupWait = grouping("ALERTD_GROUP_WAIT")
        incidents.groupInterval = grouping("ALERTD_GROUP_INTERVAL")

        var silent = SilentFailureSettings()
        func onOff(_ variable: String) -> Bool {
            switch value(variable)?.lowercased() {
            case "on", "true": return true
            case "off", "false": return false
            case let other:
                problems.append("\(variable): \"\(other ?? "")\" is not on or off.")
                return true
            }
        }
        silent.overdue = onOff("ALERTD_OVERDUE")
        silent.overdueGrace = duration("ALERTD_OVERDUE_GRACE")
        silent.stuck = onOff("ALERTD_STUCK")
        silent.stuckAfterMinimum = duration("ALERTD_STUCK_AFTER_MIN")
        silent.stuckAfterMaximum = duration("ALERTD_STUCK_AFTER_MAX")
        if silent.stuckAfterMaximum < silent.stuckAfterMinimum && !invalid.contains("ALERTD_STUCK_AFTER_MIN") && !invalid.contains("ALERTD_STUCK_AFTER_MAX") {
            problems.append("ALERTD_STUCK_AFTER_MAX: \(silent.stuckAfterMaximum.settingText) is shorter than ALERTD_STUCK_AFTER_MIN (\(silent.stuckAfterMinimum.settingText)).")
        }
        silent.sweepInterval = duration("ALERTD_SILENT_SWEEP_INTERVAL")

        var destinations = DestinationSettings()
        let circuitText = value("ALERTD_CIRCUIT_FAILURES") ?? ""
        destinations.circuitFailures = ["off", "none"].contains(circuitText.lowercased()) ? nil : integer("ALERTD_CIRCUIT_FAILURES", 1...1000)
        destinations.probeMaximum = duration("ALERTD_CIRCUIT_PROBE_MAX")
        if destinations.probeMaximum < destinations.probeInitial && !invalid.contains("ALERTD_CIRCUIT_PROBE_MAX") {
            problems.append("ALERTD_CIRCUIT_PROBE_MAX: \(destinations.probeMaximum.settingText) is shorter than the first probe's wait (\(destinations.probeInitial.settingText)).")
        }
        destinations.maxAge = duration("ALERTD_ALERT_MAX_AGE")
        let disableText = value("ALERTD_DESTINATION_DISABLE_AFTER") ?? ""
        destinations.disableAfter = ["off", "none", "never"].contains(disableText.lowercased()) ? nil : duration("ALERTD_DESTINATION_DISABLE_AFTER")

        var limits = MessageLimits.Settings()
        if let text = value("ALERTD_MESSAGE_LIMIT"), ["off", "none"].contains(text.lowercased()) {
            limits.limit = nil
        } else {
            limits.limit = integer("ALERTD_MESSAGE_LIMIT", 1...1_000_000)
        }
        limits.window = duration("ALERTD_MESSAGE_LIMIT_WINDOW")
        if limits.window < .seconds(1) && !invalid.contains("ALERTD_MESSAGE_LIMIT_WINDOW") {
            problems.append("ALERTD_MESSAGE_LIMIT_WINDOW: \(limits.window.settingText) is shorter than a second.")
        }

        var database: PostgresConnectionString?
        if let url = value("ALERTD_DATABASE_URL") {
            do { database = try PostgresConnectionString(url) } catch { problems.append("ALERTD_DATABASE_URL: \(error.message)") }
        } else if requireDatabase {
            problems.append("ALERTD_DATABASE_URL: no database given; pass --database-url or set ALERTD_DATABASE_URL (or ALERTD_DATABASE_URL_FILE). For alertd --test-notification --email/--webhook-url, which needs none, check with alertd config --no-database.")
        }
        var signer = WebhookSigner(secrets: [])
        if let secrets = value("ALERTD_WEBHOOK_SECRET") {
            do { signer = try WebhookSigner(secretList: secrets) } catch let error as AlertdError { problems.append("ALERTD_WEBHOOK_SECRET: \(error.message)") } catch {}
        }
        let signing = webhookSigning(value("ALERTD_WEBHOOK_SIGNING"), secretGiven: value("ALERTD_WEBHOOK_SECRET") != nil, problems: &problems)
        let retryInitial = duration("ALERTD_RETRY_INITIAL")
        let retryMax = duration("ALERTD_RETRY_MAX")
        if retryMax < retryInitial && invalid.isDisjoint(with: ["ALERTD_RETRY_INITIAL", "ALERTD_RETRY_MAX"]) { problems.append("ALERTD_RETRY_MAX must not be shorter than ALERTD_RETRY_INITIAL.") }
        var webhook = WebhookClient.Settings()
        webhook.connectTimeout = duration("ALERTD_WEBHOOK_CONNECT_TIMEOUT")
        webhook.totalTimeout = duration("ALERTD_WEBHOOK_TIMEOUT")
        webhook.concurrency = integer("ALERTD_WEBHOOK_CONCURRENCY", 1...1024)
        webhook.perHost = integer("ALERTD_WEBHOOK_PER_HOST", 1...1024)
        webhook.caFile = value("ALERTD_WEBHOOK_CA_FILE")
        if let allow = value("ALERTD_WEBHOOK_ALLOW") {
            do { webhook.policy = try DestinationPolicy.parse(allowList: allow) } catch let error as AlertdError { problems.append("ALERTD_WEBHOOK_ALLOW: \(error.message)") } catch {}
        }
        if let caFile = webhook.caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            problems.append("ALERTD_WEBHOOK_CA_FILE: \(caFile) cannot be read.")
        }
        let lease = duration("ALERTD_LEASE")
        if lease <= webhook.totalTimeout && invalid.isDisjoint(with: ["ALERTD_LEASE", "ALERTD_WEBHOOK_TIMEOUT"]) {
            problems.append("ALERTD_LEASE (\(lease)) must be longer than ALERTD_WEBHOOK_TIMEOUT (\(webhook.totalTimeout)), or another instance could claim an alert still being delivered.")
        }
        let linkBase = value("ALERTD_LINK_BASE_URL")
        if let linkBase, URLComponents(string: linkBase)?.scheme == nil {
            problems.append("ALERTD_LINK_BASE_URL: \"\(linkBase)\" is not a URL.")
        }
        var smtp: SMTPSettings?
        if let url = value("ALERTD_SMTP_URL") {
            let allowInsecure = value("ALERTD_SMTP_ALLOW_INSECURE_AUTH")?.lowercased()
            if !["true", "false"].contains(allowInsecure ?? "false") {
                problems.append("ALERTD_SMTP_ALLOW_INSECURE_AUTH: \"\(allowInsecure ?? "")\" is not true or false.")
            }
            let parsed = SMTPSettings.parse(
                url: url, from: value("ALERTD_SMTP_FROM"), tls: value("ALERTD_SMTP_TLS"), caFile: value("ALERTD_SMTP_CA_FILE"),
                allowInsecureAuth: allowInsecure == "true", timeout: duration("ALERTD_SMTP_TIMEOUT"), heloName: value("ALERTD_SMTP_HELO_NAME")
            )
            smtp = parsed.settings
            problems += parsed.problems
        }
        var httpAddress: StatusAddress?
        if let text = value("ALERTD_HTTP_ADDRESS"), !text.isEmpty {
            do { httpAddress = try StatusAddress(text) } catch let error as AlertdError { problems.append("ALERTD_HTTP_ADDRESS: \(error.message)") } catch {}
        }
        var configuration = AlertdConfiguration(
            database: database ?? (try! PostgresConnectionString("dbname=unset")),
            templatesDirectory: AlertTemplates.locate(flag: value("ALERTD_TEMPLATES_DIR"), environment: [:], sqlDirectory: sqlDirectory),
            instance: value("ALERTD_INSTANCE") ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())",
            batchSize: integer("ALERTD_BATCH_SIZE", 1...10_000),
            maxInFlight: integer("ALERTD_MAX_IN_FLIGHT", 1...100_000),
            lease: lease,
            pollInterval: duration("ALERTD_POLL_INTERVAL"),
            listenCheckInterval: duration("ALERTD_LISTEN_CHECK_INTERVAL"),
            shutdownGrace: duration("ALERTD_SHUTDOWN_GRACE"),
            retryBackoff: Backoff(initial: retryInitial, maximum: max(retryMax, retryInitial), multiplier: 2, jitter: 0.5),
            linkBaseURL: linkBase,
            webhook: webhook,
            webhookSigner: signer,
            smtp: smtp,
            channels: smtp == nil ? [.webhook] : [.email, .webhook],
            httpAddress: httpAddress,
            incidents: incidents
        )
        configuration.silentFailures = silent
        configuration.webhookSigning = signing
        configuration.messageLimits = limits
        configuration.destinations = destinations
        guard problems.isEmpty else {
            throw AlertdError(.configuration, "The configuration has \(problems.count) problem\(problems.count == 1 ? "" : "s"):\n" + problems.map { "  - \($0)" }.joined(separator: "\n"))
        }
        return configuration
    }

    /// ALERTD_WEBHOOK_SIGNING: as given, else `both` when there is a shared secret (an upgrade
    /// breaks no receiver that verifies with it), else `integration`.
    static func webhookSigning(_ text: String?, secretGiven: Bool, problems: inout [String]) -> WebhookSigning {
        guard let text, !text.isEmpty else { return secretGiven ? .both : .integration }
        guard let signing = WebhookSigning(rawValue: text.lowercased()) else {
            problems.append("ALERTD_WEBHOOK_SIGNING: \"\(text)\" is not integration, both or shared.")
            return .integration
        }
        if signing != .integration && !secretGiven {
            problems.append("ALERTD_WEBHOOK_SIGNING: \(signing.rawValue) signs with ALERTD_WEBHOOK_SECRET, which is not set; set it, or use integration (each integration's own secret).")
        }
        return signing
    }

    /// `500ms`, `30s`, `5m`, `1h`, `3d`, or a number of seconds.
    public static func parseDuration(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            guard let number = Double(trimmed.dropLast(unit.suffix.count)), number >= 0 else { return nil }
            return .milliseconds(Int64((number * unit.seconds * 1000).rounded()))
        }
        guard let seconds = Double(trimmed), seconds >= 0 else { return nil }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// The effective configuration, one `name = value` line each, secrets masked.
    public var redactedLines: [String] {
        [
            "database = \(database)",
            "templates_dir = \(templatesDirectory.path)",
            "instance = \(instance)",
            "batch_size = \(batchSize)",
            "max_in_flight = \(maxInFlight)",
            "lease = \(lease)",
            "poll_interval = \(pollInterval)",
            "listen_check_interval = \(listenCheckInterval)",
            "shutdown_grace = \(shutdownGrace)",
            "retry = \(retryBackoff.initial) doubling up to \(retryBackoff.maximum), jitter \(Int(retryBackoff.jitter * 100))%",
            "link_base_url = \(linkBaseURL ?? "(none)")",
            "http_address = \(httpAddress.map { "\($0) (/healthz, /readyz, /metrics)" } ?? "(off)")",
            "channels = \(channels.map(\.rawValue).joined(separator: ", "))\(smtp == nil ? " (email off: ALERTD_SMTP_URL is not set)" : "")",
            "smtp = \(smtp.map(\.description) ?? "(none)")",
            "incidents = \(incidents.enabled ? "on" : "off") (written to alertd_settings at start; an integration's configuration_metadata -> 'alertd' overrides it)",
            "incident_repeat_interval = \(incidents.repeatInterval.map(\.settingText) ?? "off (no reminders)")",
            "group_wait = \(incidents.groupWait.settingText)\(incidents.groupWait == .zero ? " (an integration's first failing endpoint is news at once)" : "")",
            "group_interval = \(incidents.groupInterval == .zero ? "off (each endpoint's news on its own)" : incidents.groupInterval.settingText)",
            "incident_sweep_interval = \(incidents.sweepInterval.settingText)",
            "overdue = \(silentFailures.overdue ? "on, grace \(silentFailures.overdueGrace.settingText) at least (a quarter of an endpoint's interval when longer)" : "off")",
            "stuck = \(silentFailures.stuck ? "on, after \(SilentFailureSettings.stuckFactor)x the usual duration, from \(silentFailures.stuckAfterMinimum.settingText) to \(silentFailures.stuckAfterMaximum.settingText)" : "off")",
            "silent_sweep_interval = \(silentFailures.sweepInterval.settingText)",
            "circuit_failures = \(destinations.circuitFailures.map { "\($0) in a row open a destination's circuit" } ?? "off (every alert retries on its own)")",
            "circuit_probe = \(destinations.probeInitial.settingText) doubling up to \(destinations.probeMaximum.settingText), jitter 20%",
            "alert_max_age = \(destinations.maxAge.settingText)",
            "message_limit = \(messageLimits.limit.map { "\($0) messages per integration and channel in each \(messageLimits.window.settingText); past it, alerts are held" } ?? "off (no limit)")",
            "destination_disable_after = \(destinations.disableAfter.map(\.settingText) ?? "off (only a 410 Gone disables a webhook URL)")",
            "webhook_secret = \(webhookSigner.secrets.isEmpty ? "(none)" : "\(webhookSigner.secrets.count) secret\(webhookSigner.secrets.count == 1 ? "" : "s"), \(SecretRedactor.mask)")",
            "webhook_signing = \(webhookSigning.describe(shared: webhookSigner))",
            "webhook_connect_timeout = \(webhook.connectTimeout)",
            "webhook_timeout = \(webhook.totalTimeout)",
            "webhook_concurrency = \(webhook.concurrency)",
            "webhook_per_host = \(webhook.perHost)",
            "webhook_ca_file = \(webhook.caFile ?? "(system)")",
            "webhook_allow = \(webhook.policy.allowedNetworks.map(\.description) + webhook.policy.allowedHosts.sorted()) (everything else internal is refused)",
        ]
    }
}

extension Duration {
    /// The duration as a setting is written: `1h`, `30s`, `500ms` (what `parseDuration` reads).
    public var settingText: String {
        let milliseconds = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        if milliseconds % 86_400_000 == 0 && milliseconds > 0 { return "\(milliseconds / 86_400_000)d" }
        if milliseconds % 3_600_000 == 0 && milliseconds > 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}
