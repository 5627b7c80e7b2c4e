import AlertdKit
import ArgumentParser
import Foundation

/// `--since`/`--until`: an ISO 8601 time (2026-11-24T09:30:00Z, or a date) or an age (90m, 6h, 7d).
func parseTime(_ text: String, now: Date = Date()) throws -> Date {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    if let last = trimmed.last, "mhd".contains(last), let amount = Double(trimmed.dropLast()), amount >= 0 {
        let unit: Double = last == "m" ? 60 : last == "h" ? 3600 : 86_400
        return now.addingTimeInterval(-amount * unit)
    }
    let full = ISO8601DateFormatter()
    if let date = full.date(from: trimmed) { return date }
    let day = ISO8601DateFormatter()
    day.formatOptions = [.withFullDate]
    if let date = day.date(from: trimmed) { return date }
    throw ValidationError("\"\(text)\" is not a time: give 2026-11-24T09:30:00Z, 2026-11-24, or an age such as 90m, 6h or 7d.")
}

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "List recent alerts, newest first (the plain SQL is in docs/audit-queries.md)."
    )

    @OptionGroup var options: DatabaseOptions
    // Not --integration: that is alertd's own option, for --test-notification.
    @Option(name: .customLong("integration-id"), help: "Only this integration's alerts (its id).") var integration: String?
    @Option(name: .customLong("sync-run"), help: "Only the alerts of this sync run (its id).") var syncRun: String?
    @Option(help: "Only alerts with this delivery status: pending, sent, failed, bounced, suppressed or held.") var status: String?
    @Option(help: "Only email or only webhook alerts.") var channel: String?
    @Option(help: "Only the alerts of this incident (its id, as alertd incidents lists it).") var incident: String?
    @Option(help: "Only alerts created since: a time (2026-11-24T09:30:00Z, 2026-11-24) or an age (90m, 6h, 7d).") var since: String?
    @Option(help: "Only alerts created before this time or age.") var until: String?
    @Option(help: "At most this many alerts (default 50).") var limit = 50
    @Flag(help: "Print JSON (an array of objects) instead of a table.") var json = false

    func validate() throws {
        if let status, !DeliveryStatus.allCases.map(\.rawValue).contains(status) { throw ValidationError("--status is pending, sent, failed, bounced, suppressed or held.") }
        if let incident, UUID(uuidString: incident) == nil { throw ValidationError("--incident takes an incident's id (a UUID).") }
        if let channel, !["email", "webhook"].contains(channel) { throw ValidationError("--channel is email or webhook.") }
        if let integration, UUID(uuidString: integration) == nil { throw ValidationError("--integration-id takes an integration's id (a UUID).") }
        if let syncRun, UUID(uuidString: syncRun) == nil { throw ValidationError("--sync-run takes a sync run's id (a UUID).") }
        guard (1...10_000).contains(limit) else { throw ValidationError("--limit is 1 to 10000.") }
        if let since { _ = try parseTime(since) }
        if let until { _ = try parseTime(until) }
    }

    func run() async throws {
        var filter = AuditStore.Filter()
        filter.integration = integration.flatMap(UUID.init(uuidString:))
        filter.syncRun = syncRun.flatMap(UUID.init(uuidString:))
        filter.status = status
        filter.channel = channel
        filter.incident = incident.flatMap(UUID.init(uuidString:))
        filter.since = try since.map { try parseTime($0) }
        filter.until = try until.map { try parseTime($0) }
        filter.limit = limit
        let json = self.json
        try await options.withTool { tool in
            let records = try await AuditStore(connection: tool.connection).history(filter)
            if json {
                print(AuditFormat.json(records.map(AuditFormat.jsonObject)))
            } else if records.isEmpty {
                print("No alerts match.")
            } else {
                print(AuditFormat.table(records, columns: AuditFormat.alertColumns))
            }
        }
    }
}

struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one alert and every delivery attempt of it."
    )

    @OptionGroup var options: DatabaseOptions
    @Argument(help: "The alert's id.") var alert: String
    @Flag(help: "Print JSON instead of text.") var json = false

    func validate() throws {
        guard UUID(uuidString: alert) != nil else { throw ValidationError("Give the alert's id (a UUID), as alertd history lists it.") }
    }

    func run() async throws {
        let id = UUID(uuidString: alert)!
        let json = self.json
        try await options.withTool { tool in
            guard let found = try await AuditStore(connection: tool.connection).show(id) else {
                throw AlertdError(.notFound, "No alert \(id.uuidString.lowercased()).")
            }
            if json {
                var object = AuditFormat.jsonObject(found.alert)
                object["attempts"] = found.attempts.map(AuditFormat.jsonObject)
                print(AuditFormat.json(object))
            } else {
                print(AuditFormat.fields(found.alert))
                print("")
                print(found.attempts.isEmpty ? "No attempts recorded." : AuditFormat.table(found.attempts, columns: [
                    ("attempt_number", "#", 3), ("started_at", "STARTED", 29), ("duration_ms", "MS", 7), ("outcome", "OUTCOME", 7),
                    ("http_status", "HTTP", 4), ("smtp_reply", "SMTP", 30), ("error", "ERROR", 60), ("worker", "WORKER", 24),
                ]))
            }
        }
    }
}

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Queue failed or bounced alerts again (or send a suppressed or held one), each replay noted in the alert's metadata.",
        discussion: "alertd replay <alert-id> ...   or   alertd replay --failed --since 6h"
    )

    @OptionGroup var options: DatabaseOptions
    @Argument(help: "Alerts to replay (their ids).") var alerts: [String] = []
    @Flag(help: "Replay every alert that failed or bounced since --since.") var failed = false
    @Option(help: "With --failed: a time (2026-11-24T09:30:00Z) or an age (6h, 7d).") var since: String?
    @Option(help: "Who replays, for the note on each alert (default: the database user).") var by: String?
    @Option(help: "Attempts each replayed alert gets (default 10).") var attempts = 10

    func validate() throws {
        if failed {
            guard since != nil else { throw ValidationError("--failed needs --since, so that a replay never reaches back further than meant.") }
            guard alerts.isEmpty else { throw ValidationError("Give alert ids or --failed --since, not both.") }
            _ = try parseTime(since!)
        } else {
            guard !alerts.isEmpty else { throw ValidationError("Give the ids of the alerts to replay, or --failed --since <time>.") }
            for alert in alerts where UUID(uuidString: alert) == nil { throw ValidationError("\(alert) is not an alert id (a UUID).") }
        }
        guard (1...100).contains(attempts) else { throw ValidationError("--attempts is 1 to 100.") }
    }

    func run() async throws {
        let ids = failed ? nil : alerts.compactMap(UUID.init(uuidString:))
        let since = try self.since.map { try parseTime($0) }
        let by = self.by
        let attempts = self.attempts
        try await options.withTool { tool in
            let store = AuditStore(connection: tool.connection)
            var who = by ?? ""
            if who.isEmpty { who = try await tool.connection.query("SELECT current_user AS who")[0].decode("who") }
            let replayed = try await store.replay(ids: ids, failedSince: since, by: who, extraAttempts: attempts)
            for id in replayed { print("Queued \(id.uuidString.lowercased()) again.") }
            if let ids {
                let statuses = try await store.statuses(ids)
                var refused = 0
                for id in ids where !replayed.contains(id) {
                    refused += 1
                    let status = statuses[id]
                    let alert = id.uuidString.lowercased()
                    switch status {
                    case nil: printError("alertd: no alert \(alert).")
                    case "suppressed": printError("alertd: \(alert) is a suppressed repeat of its own run's alert on the same channel; replay that alert instead (alertd history --sync-run <run>).")
                    case let status?: printError("alertd: \(alert) is \(status); only failed, bounced, suppressed or held alerts are replayed.")
                    }
                }
                if refused > 0 { throw ExitCode.failure }
            } else {
                print(replayed.isEmpty ? "No failed or bounced alert since then." : "\(replayed.count) alert\(replayed.count == 1 ? "" : "s") queued again.")
            }
        }
    }
}

struct IncidentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incidents",
        abstract: "List open incidents, newest first, or show one with its alerts (the plain SQL is in docs/audit-queries.md).",
        discussion: "alertd incidents   ·   alertd incidents --all --limit 20   ·   alertd incidents <incident-id>"
    )

    @OptionGroup var options: DatabaseOptions
    @Argument(help: "Show this incident (its id) and its alerts.") var incident: String?
    @Flag(help: "Resolved incidents too, not only the open ones.") var all = false
    @Option(name: .customLong("integration-id"), help: "Only this integration's incidents (its id).") var integration: String?
    @Option(help: "At most this many incidents (default 50).") var limit = 50
    @Flag(help: "Print JSON instead of a table.") var json = false

    func validate() throws {
        if let incident, UUID(uuidString: incident) == nil { throw ValidationError("\(incident) is not an incident id (a UUID), as alertd incidents lists it.") }
        if let integration, UUID(uuidString: integration) == nil { throw ValidationError("--integration-id takes an integration's id (a UUID).") }
        guard (1...10_000).contains(limit) else { throw ValidationError("--limit is 1 to 10000.") }
    }

    func run() async throws {
        let id = incident.flatMap(UUID.init(uuidString:))
        let integration = self.integration.flatMap(UUID.init(uuidString:))
        let (all, limit, json) = (self.all, self.limit, self.json)
        try await options.withTool { tool in
            let store = AuditStore(connection: tool.connection)
            let incidents = try await store.incidents(all: all, integration: integration, id: id, limit: limit)
            if let id {
                guard let found = incidents.first else { throw AlertdError(.notFound, "No incident \(id.uuidString.lowercased()).") }
                var filter = AuditStore.Filter()
                filter.incident = id
                filter.limit = 1_000
                let alerts = try await store.history(filter)
                if json {
                    var object = AuditFormat.jsonObject(found)
                    object["alerts"] = alerts.map(AuditFormat.jsonObject)
                    print(AuditFormat.json(object))
                } else {
                    print(AuditFormat.fields(found))
                    print("")
                    print(alerts.isEmpty ? "No alerts." : AuditFormat.table(alerts, columns: AuditFormat.alertColumns))
                }
            } else if json {
                print(AuditFormat.json(incidents.map(AuditFormat.jsonObject)))
            } else if incidents.isEmpty {
                print(all ? "No incidents." : "No incident is open.")
            } else {
                print(AuditFormat.table(incidents, columns: [
                    ("opened_at", "OPENED", 22), ("id", "INCIDENT", 36), ("integration_name", "INTEGRATION", 24),
                    ("endpoint_name", "ENDPOINT", 24), ("kind", "KIND", 7), ("severity", "SEVERITY", 8), ("state", "STATE", 8),
                    ("failed_runs", "RUNS", 5), ("suppressed_alerts", "SUPPRESSED", 10), ("reminders_sent", "REMINDERS", 9),
                    ("resolved_at", "RESOLVED", 22),
                ]))
            }
        }
    }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

struct EndpointsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "endpoints",
        abstract: "List the destinations alertd delivers to (webhook URLs, the SMTP relay) with their health, or enable a disabled one (the plain SQL is in docs/audit-queries.md).",
        discussion: "alertd endpoints   ·   alertd endpoints --state disabled --json   ·   alertd endpoints enable <url>",
        subcommands: [EndpointsListCommand.self, EndpointsEnableCommand.self],
        defaultSubcommand: EndpointsListCommand.self
    )
}

struct EndpointsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List destinations: the disabled first, then the failing, then the healthy."
    )

    @OptionGroup var options: DatabaseOptions
    @Option(help: "Only destinations in this state: healthy, failing or disabled.") var state: String?
    @Flag(help: "Print JSON (an array of objects) instead of a table.") var json = false

    func validate() throws {
        if let state, !["healthy", "failing", "disabled"].contains(state) { throw ValidationError("--state is healthy, failing or disabled.") }
    }

    func run() async throws {
        let (state, json) = (self.state, self.json)
        try await options.withTool { tool in
            let destinations = try await DestinationStore(connection: tool.connection, worker: "cli").list(state: state)
            if json {
                print(AuditFormat.json(destinations.map(AuditFormat.jsonObject)))
            } else if destinations.isEmpty {
                print(state == nil ? "No destinations yet: alertd records one when it first delivers to it." : "No \(state!) destination.")
            } else {
                print(AuditFormat.table(destinations, columns: [
                    ("destination", "DESTINATION", 60), ("state", "STATE", 8), ("circuit", "CIRCUIT", 7), ("waiting", "WAITING", 7),
                    ("consecutive_failures", "FAILURES", 8), ("failing_since", "FAILING SINCE", 22), ("next_probe_at", "NEXT PROBE", 22),
                    ("last_success_at", "LAST SUCCESS", 22), ("last_error", "LAST ERROR", 40), ("disabled_reason", "DISABLED BECAUSE", 40),
                ]))
            }
        }
    }
}

struct EndpointsEnableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enable",
        abstract: "Enable a destination again: its state healthy, its circuit closed, its waiting alerts due at once; who and when recorded.",
        discussion: "Alerts failed while it was disabled stay failed: alertd replay --failed --since <when it was disabled> sends them."
    )

    @OptionGroup var options: DatabaseOptions
    @Argument(help: "The destination as alertd endpoints lists it (the webhook URL, or smtp://host:port).") var destination: String
    @Option(help: "Who enables it, for the record (default: the database user).") var by: String?

    func run() async throws {
        let (destination, by) = (self.destination, self.by)
        try await options.withTool { tool in
            var who = by ?? ""
            if who.isEmpty { who = try await tool.connection.query("SELECT current_user AS who")[0].decode("who") }
            guard let enabled = try await DestinationStore(connection: tool.connection, worker: "cli").enable(destination, by: who) else {
                throw AlertdError(.notFound, "No destination \(destination): alertd endpoints lists them, exactly as written.")
            }
            print("Enabled \(destination)\(enabled.disabledAt.map { " (disabled \(AuditFormat.utc($0)): \(enabled.reason ?? "no reason recorded"))" } ?? "").")
            if enabled.released > 0 { print("\(enabled.released) waiting alert\(enabled.released == 1 ? " is" : "s are") due again.") }
            if let since = enabled.disabledAt {
                print("Alerts failed while it was disabled stay failed: alertd replay --failed --since \(AuditFormat.utc(since).replacingOccurrences(of: " UTC", with: "Z").replacingOccurrences(of: " ", with: "T")) sends them.")
            }
        }
    }
}
