import AlertdPostgres
import Foundation

/// What templates can use, built from a claimed alert. docs/templates.md lists every name.
public struct AlertContext: @unchecked Sendable {
    // Invariant: `values` holds only strings, numbers, booleans and dictionaries of them.
    let values: [String: Any]
    /// failure, warning, success or test: which templates render it.
    public let templateType: String

    /// The longest error message a message carries; longer ones are cut and flagged.
    public static let errorLimit = 2000

    public init(alert: ClaimedAlert, linkBase: String?, now: Date = Date()) {
        templateType = alert.origin == "test" ? "test" : (AlertTemplates.types.contains(alert.type) ? alert.type : "failure")
        var values: [String: Any] = [
            "alert": [
                "id": alert.id.postgresText,
                "type": alert.origin == "test" ? "test" : alert.type,
                "channel": alert.channel,
                "attempt": alert.attempt,
                "max_attempts": alert.maxAttempts,
                "is_test": alert.origin == "test",
            ] as [String: Any],
            "generated_at": Self.timestamp(now),
        ]
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
            let error = sync.errorMessage.map(Self.cut)
            var syncValues: [String: Any] = [
                "id": sync.id.postgresText,
                "endpoint": sync.endpoint,
                "status": sync.status,
                "started_at": Self.timestamp(sync.startedAt),
                "records_synced": sync.recordsSynced,
                "records_failed": sync.recordsFailed,
                "records_skipped": sync.recordsSkipped,
                "triggered_by": sync.triggeredBy,
                "error_truncated": error?.truncated ?? false,
                "has_duration": sync.durationSeconds != nil,
            ]
            if let completed = sync.completedAt { syncValues["completed_at"] = Self.timestamp(completed) }
            if let seconds = sync.durationSeconds {
                syncValues["duration_seconds"] = seconds
                syncValues["duration"] = Self.duration(seconds)
            }
            if let error, !error.text.isEmpty { syncValues["error_message"] = error.text }
            values["sync"] = syncValues
            if let retryAt = sync.retryAt, sync.status == "failed", sync.retryCount < sync.maxRetries {
                values["retry"] = [
                    "scheduled": true,
                    "number": sync.retryCount + 1,
                    "max": sync.maxRetries,
                    "next_at": Self.timestamp(retryAt),
                ] as [String: Any]
            }
            if let linkBase, !linkBase.isEmpty, let integration = alert.integration {
                let base = linkBase.hasSuffix("/") ? String(linkBase.dropLast()) : linkBase
                values["link"] = "\(base)/integrations/\(integration.id.postgresText)/syncs/\(sync.id.postgresText)"
            }
        }
        self.values = values
    }

    static func cut(_ text: String) -> (text: String, truncated: Bool) {
        text.count > errorLimit ? (String(text.prefix(errorLimit)) + "…", true) : (text, false)
    }

    static func timestamp(_ date: Date) -> String {
        String(PostgresTimestamp.format(date).prefix(19)) + "Z"
    }

    /// 42 s, 3 m 5 s, 2 h 0 m.
    static func duration(_ seconds: Int) -> String {
        if seconds < 60 { return "\(seconds) s" }
        if seconds < 3600 { return "\(seconds / 60) m \(seconds % 60) s" }
        return "\(seconds / 3600) h \(seconds % 3600 / 60) m"
    }
}
