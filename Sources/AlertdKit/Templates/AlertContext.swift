import AlertdPostgres
import Foundation

/// What templates can use, built from a claimed alert. docs/templates.md lists every name.
public struct AlertContext: Sendable {
    /// failure, warning, success, recovery, reminder or test: which templates render it.
    public let templateType: String
    /// The facts, typed: what the stock webhook body and subjects write, and `values` gives
    /// Mustache.
    let alert: ClaimedAlert
    let generatedAt: String
    let link: String?
    /// The sync run's error message cut to `errorLimit`; nil when there is none or it is empty.
    let errorMessage: String?
    let errorTruncated: Bool
    /// The retry the sync run has scheduled, if any.
    let retry: (number: Int, max: Int, nextAt: String)?
    /// How long the alert's incident has been failing (until it recovered, or until now).
    let failingSeconds: Int?
    /// The incident's last error, cut to `errorLimit`.
    let incidentError: String?
    /// For a message that carries a group's alerts: each of them, the carrier first; empty
    /// otherwise.
    let group: [GroupEntry]

    /// One alert of a group's message: its endpoint's run.
    struct GroupEntry {
        let alertID: String
        let syncID: String
        let endpoint: String
        let status: String
        let startedAt: String
        let recordsSynced: Int
        let recordsFailed: Int
        let errorMessage: String?
        let errorTruncated: Bool
        let link: String?
    }

    /// For an overdue endpoint's alerts: what was expected of it.
    let overdue: Overdue?
    /// For a stuck run's alerts: how long it has run, and why that is too long.
    let stuck: Stuck?

    struct Overdue {
        let frequency: String
        let expectedAt: String?
        /// How long ago the run was due.
        let lateSeconds: Int?
        let graceSeconds: Int

        var values: [String: Any] {
            var values: [String: Any] = ["frequency": frequency, "grace_seconds": graceSeconds, "grace": AlertContext.duration(graceSeconds)]
            if let expectedAt { values["expected_at"] = expectedAt }
            if let lateSeconds {
                values["late_seconds"] = lateSeconds
                values["late_for"] = AlertContext.duration(lateSeconds)
            }
            return values
        }
    }

    struct Stuck {
        /// How long the run has run (until now, or until it ended).
        let runningSeconds: Int
        let afterSeconds: Int
        let typicalSeconds: Int?
        /// Where the threshold came from, in words.
        let basis: String

        var values: [String: Any] {
            var values: [String: Any] = [
                "running_seconds": runningSeconds, "running_for": AlertContext.duration(runningSeconds),
                "after_seconds": afterSeconds, "after": AlertContext.duration(afterSeconds),
                "has_typical": typicalSeconds != nil, "basis": basis,
            ]
            if let typicalSeconds {
                values["typical_seconds"] = typicalSeconds
                values["typical"] = AlertContext.duration(typicalSeconds)
            }
            return values
        }

        /// The threshold's origin (`metadata ->> 'typical_from'`) in words.
        static func basis(_ from: String?) -> String {
            switch from {
            case "average_sync_duration_seconds": "\(SilentFailureSettings.stuckFactor)x the endpoint's average duration"
            case "recent_runs": "\(SilentFailureSettings.stuckFactor)x the median of its recent runs"
            case "stuck_after_minutes": "the integration's stuck_after_minutes"
            default: "the longest alertd waits when it cannot tell what is usual"
            }
        }
    }

    /// The longest error message a message carries; longer ones are cut and flagged.
    public static let errorLimit = 2000

    public init(alert: ClaimedAlert, linkBase: String?, now: Date = Date()) {
        templateType = alert.templateType
        self.alert = alert
        generatedAt = Self.timestamp(now)
        let error = alert.sync?.errorMessage.map(Self.cut)
        errorMessage = error.flatMap { $0.text.isEmpty ? nil : $0.text }
        errorTruncated = error?.truncated ?? false
        if let sync = alert.sync, let retryAt = sync.retryAt, sync.status == "failed", sync.retryCount < sync.maxRetries {
            retry = (sync.retryCount + 1, sync.maxRetries, Self.timestamp(retryAt))
        } else {
            retry = nil
        }
        if let incident = alert.incident {
            failingSeconds = max(0, Int((incident.resolvedAt ?? now).timeIntervalSince(incident.openedAt)))
            incidentError = incident.lastError.map { Self.cut($0).text }.flatMap { $0.isEmpty ? nil : $0 }
        } else {
            failingSeconds = nil
            incidentError = nil
        }
        link = Self.link(linkBase, alert)
        if let incident = alert.incident, incident.kind == .overdue {
            overdue = Overdue(
                frequency: incident.frequency ?? "", expectedAt: incident.expectedAt.map(Self.timestamp),
                lateSeconds: incident.expectedAt.map { max(0, Int(now.timeIntervalSince($0))) }, graceSeconds: incident.graceSeconds ?? 0
            )
        } else {
            overdue = nil
        }
        if let incident = alert.incident, incident.kind == .stuck, let sync = alert.sync {
            stuck = Stuck(
                runningSeconds: max(0, Int((sync.completedAt ?? now).timeIntervalSince(sync.startedAt))),
                afterSeconds: incident.stuckAfterSeconds ?? 0, typicalSeconds: incident.typicalSeconds,
                basis: Stuck.basis(incident.typicalFrom)
            )
        } else {
            stuck = nil
        }
        group = alert.grouped.isEmpty ? [] : alert.members.compactMap { member in
            guard let sync = member.sync else { return nil }
            let error = sync.errorMessage.map(Self.cut)
            return GroupEntry(
                alertID: member.id.postgresText, syncID: sync.id.postgresText, endpoint: sync.endpoint, status: sync.status,
                startedAt: Self.timestamp(sync.startedAt), recordsSynced: sync.recordsSynced, recordsFailed: sync.recordsFailed,
                errorMessage: error.flatMap { $0.text.isEmpty ? nil : $0.text }, errorTruncated: error?.truncated ?? false,
                link: Self.link(linkBase, member)
            )
        }
    }

    /// The link to an alert's sync run under `ALERTD_LINK_BASE_URL`, if both are there.
    private static func link(_ linkBase: String?, _ alert: ClaimedAlert) -> String? {
        guard let linkBase, !linkBase.isEmpty, let integration = alert.integration, let sync = alert.sync else { return nil }
        let base = linkBase.hasSuffix("/") ? String(linkBase.dropLast()) : linkBase
        return "\(base)/integrations/\(integration.id.postgresText)/syncs/\(sync.id.postgresText)"
    }

    /// What Mustache templates see: strings, numbers, booleans and dictionaries of them, built
    /// when a template renders through Mustache (the stock webhook body and subjects do not).
    var values: [String: Any] {
        var values: [String: Any] = [
            "alert": [
                "id": alert.id.postgresText,
                "type": alert.templateType,
                "channel": alert.channel.rawValue,
                "attempt": alert.attempt,
                "max_attempts": alert.maxAttempts,
                "is_test": alert.origin == .test,
                "event": alert.eventType,
            ] as [String: Any],
            "generated_at": generatedAt,
        ]
        if let endpoint = alert.endpoint { values["endpoint"] = endpoint }
        if let overdue { values["overdue"] = overdue.values }
        if let stuck { values["stuck"] = stuck.values }
        if let disabled = alert.disabledDestination { values["destination"] = Self.values(disabled) }
        if let held = alert.heldNotice { values["held"] = Self.values(held, channel: alert.channel) }
        if let integration = alert.integration {
            values["integration"] = [
                "id": integration.id.postgresText,
                "name": integration.name ?? integration.type,
                "type": integration.type,
                "environment": integration.environment,
                "tenant_id": integration.tenantID.postgresText,
            ] as [String: Any]
        }
        if let sync = alert.sync {
            var syncValues: [String: Any] = [
                "id": sync.id.postgresText,
                "endpoint": sync.endpoint,
                "status": sync.status,
                "started_at": Self.timestamp(sync.startedAt),
                "records_synced": sync.recordsSynced,
                "records_failed": sync.recordsFailed,
                "records_skipped": sync.recordsSkipped,
                "triggered_by": sync.triggeredBy,
                "error_truncated": errorTruncated,
                "has_duration": sync.durationSeconds != nil,
            ]
            if let completed = sync.completedAt { syncValues["completed_at"] = Self.timestamp(completed) }
            if let seconds = sync.durationSeconds {
                syncValues["duration_seconds"] = seconds
                syncValues["duration"] = Self.duration(seconds)
            }
            if let errorMessage { syncValues["error_message"] = errorMessage }
            values["sync"] = syncValues
            if let retry {
                values["retry"] = ["scheduled": true, "number": retry.number, "max": retry.max, "next_at": retry.nextAt] as [String: Any]
            }
            if let link { values["link"] = link }
        }
        if let incident = alert.incident {
            var incidentValues: [String: Any] = [
                "id": incident.id.postgresText,
                "kind": incident.kind.rawValue,
                "opened_at": Self.timestamp(incident.openedAt),
                "severity": incident.severity,
                "is_open": incident.resolvedAt == nil,
                "failing_seconds": failingSeconds ?? 0,
                "failing_for": Self.duration(failingSeconds ?? 0),
                "reminders_sent": incident.remindersSent,
                "has_failed_runs": incident.failedRuns != nil,
                "runs": incident.recentRuns.enumerated().map { index, run in
                    ["id": run.postgresText, "last": index == incident.recentRuns.count - 1] as [String: Any]
                },
                "has_runs": !incident.recentRuns.isEmpty,
            ]
            if let resolved = incident.resolvedAt { incidentValues["resolved_at"] = Self.timestamp(resolved) }
            if let failedRuns = incident.failedRuns { incidentValues["failed_runs"] = failedRuns }
            if let lastFailed = incident.lastFailedAt { incidentValues["last_failed_at"] = Self.timestamp(lastFailed) }
            if let incidentError { incidentValues["last_error"] = incidentError }
            values["incident"] = incidentValues
        }
        if !group.isEmpty {
            func entries(_ list: ArraySlice<GroupEntry>) -> [[String: Any]] {
                list.enumerated().map { index, entry in
                    var values: [String: Any] = [
                        "alert_id": entry.alertID, "sync_id": entry.syncID, "endpoint": entry.endpoint, "status": entry.status,
                        "started_at": entry.startedAt, "records_synced": entry.recordsSynced, "records_failed": entry.recordsFailed,
                        "error_truncated": entry.errorTruncated, "has_link": entry.link != nil, "last": index == list.count - 1,
                    ]
                    if let error = entry.errorMessage { values["error_message"] = error }
                    if let link = entry.link { values["link"] = link }
                    return values
                }
            }
            values["group"] = [
                "count": group.count,
                "others_count": group.count - 1,
                "one_other": group.count == 2,
                "alerts": entries(group[...]),
                "others": entries(group.dropFirst()),
            ] as [String: Any]
        }
        return values
    }

    /// A disabled webhook URL, as its `webhook_disabled` email tells it.
    static func values(_ disabled: ClaimedAlert.DisabledDestination) -> [String: Any] {
        var values: [String: Any] = [
            "url": disabled.url, "reason": disabled.reason, "disabled_at": timestamp(disabled.disabledAt),
            "undelivered": disabled.undelivered, "one_undelivered": disabled.undelivered == 1,
            "enable_command": "alertd endpoints enable '\(disabled.url.replacingOccurrences(of: "'", with: "'\\''"))'",
            "replay_since": timestamp(disabled.failingSince ?? disabled.disabledAt),
        ]
        if let since = disabled.failingSince { values["failing_since"] = timestamp(since) }
        if let error = disabled.lastError.map({ cut($0).text }), !error.isEmpty { values["last_error"] = error }
        return values
    }

    /// What a `held` notice tells: how many of the integration's alerts its limit held, when,
    /// and of which types (each `type` with its `count`, most first).
    static func values(_ held: ClaimedAlert.HeldNotice, channel: Channel) -> [String: Any] {
        var values: [String: Any] = [
            "count": held.count, "one": held.count == 1, "limit": held.limit, "channel": channel.rawValue,
            "window_start": timestamp(held.windowStart), "window_end": timestamp(held.windowEnd),
            "window": duration(Int(held.windowEnd.timeIntervalSince(held.windowStart))),
            "types": held.types.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { ["type": $0.key, "count": $0.value] as [String: Any] },
            "history_command": "alertd history --integration-id \(held.integrationID.postgresText) --status held --since \(timestamp(held.windowStart))",
        ]
        if let first = held.firstHeldAt { values["first_held_at"] = timestamp(first) }
        if let last = held.lastHeldAt { values["last_held_at"] = timestamp(last) }
        return values
    }

    static func cut(_ text: String) -> (text: String, truncated: Bool) {
        text.count > errorLimit ? (String(text.prefix(errorLimit)) + "…", true) : (text, false)
    }

    static func timestamp(_ date: Date) -> String {
        String(PostgresTimestamp.format(date).prefix(19)) + "Z"
    }

    /// 42 s, 3 m 5 s, 2 h 0 m, 3 d 4 h.
    static func duration(_ seconds: Int) -> String {
        if seconds < 60 { return "\(seconds) s" }
        if seconds < 3600 { return "\(seconds / 60) m \(seconds % 60) s" }
        if seconds < 86_400 { return "\(seconds / 3600) h \(seconds % 3600 / 60) m" }
        return "\(seconds / 86_400) d \(seconds % 86_400 / 3600) h"
    }
}
