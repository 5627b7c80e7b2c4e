import AlertdPostgres
import Foundation

/// An alert this instance has leased for one delivery attempt, with what its messages say.
public struct ClaimedAlert: Sendable, Equatable {
    public let id: UUID
    public let type: AlertType
    public let channel: Channel
    public let origin: Origin
    public let recipients: [String]
    /// This attempt's number, from 1.
    public let attempt: Int
    public let maxAttempts: Int
    public let createdAt: Date?
    /// For a webhook, the host it goes to (lower case), by which webhooks in flight are counted.
    public var destination: String?
    /// Email recipients earlier attempts delivered to, and those refused for good: neither is
    /// sent to again.
    public var deliveredRecipients: [String] = []
    public var bouncedRecipients: [String] = []
    public var doneRecipients: [String] { deliveredRecipients + bouncedRecipients }
    /// Which templates render it: its type, or `test` for a test alert. The notices and reminders
    /// of an overdue endpoint or a stuck run have their own: `resumed` (the endpoint ran again),
    /// `stuck_ended` (the run left `running`), and `overdue` or `stuck` again for a reminder.
    public var templateType: String {
        if origin == .test { return "test" }
        switch (type, incident?.kind) {
        case (.recovery, .overdue): return "resumed"
        case (.recovery, .stuck): return "stuck_ended"
        case (.reminder, .overdue): return "overdue"
        case (.reminder, .stuck): return "stuck"
        default: return type.rawValue
        }
    }
    /// The webhook's event type: `sync.` and the template type, but `sync.recovered` for a
    /// recovery notice and `sync.still_failing` for a reminder.
    public var eventType: String {
        switch templateType {
        case "recovery": "sync.recovered"
        case "reminder": "sync.still_failing"
        case let type: "sync.\(type)"
        }
    }
    /// The endpoint the alert is about: its run's, else its incident's (an overdue endpoint that
    /// never ran has no run).
    public var endpoint: String? { sync?.endpoint ?? incident?.endpoint }
    public let integration: Integration?
    public let sync: SyncRun?
    /// The endpoint's incident this alert belongs to, if any: the news, a reminder or a recovery.
    public let incident: Incident?
    /// For news held to go out with other endpoints' news of its integration: its group
    /// (`metadata ->> 'group'`).
    public var groupKey: String?
    /// The other alerts this one carries in its message, when it leads a group (`AlertGroups`).
    public var grouped: [ClaimedAlert] = []
    /// The webhook format its integration names (`configuration_metadata -> 'alertd' ->>
    /// 'webhook_format'`); nil: the URL decides (`WebhookFormat.detect`).
    public var webhookFormat: WebhookFormat?
    /// Its integration's webhook signing secrets, current first (`SigningSecrets`); empty for
    /// an email, and where the schema has none (before 20251203).
    public var signingSecrets: [SigningSecret] = []
    /// The messages per channel and window its integration names
    /// (`configuration_metadata -> 'alertd' ->> 'message_limit'`; `Int.max` for `off`); nil:
    /// ALERTD_MESSAGE_LIMIT.
    public var messageLimit: Int?
    /// For a `held` notice: what its integration's message limit held (`metadata -> 'held'`).
    public var heldNotice: HeldNotice?

    /// What a `held` notice tells: how many alerts of its channel were held in which window, by
    /// which limit, and of which types.
    public struct HeldNotice: Sendable, Equatable, Decodable {
        public let integrationID: UUID
        public let count: Int
        public let limit: Int
        public let windowStart: Date
        public let windowEnd: Date
        public let firstHeldAt: Date?
        public let lastHeldAt: Date?
        /// alert type → how many of it were held.
        public let types: [String: Int]

        enum CodingKeys: String, CodingKey {
            case count, limit, types, integrationID = "integration_id"
            case windowStart = "window_start", windowEnd = "window_end", firstHeldAt = "first_held_at", lastHeldAt = "last_held_at"
        }

        /// Reads `metadata -> 'held'` of a notice; nil if it is not one.
        static func parse(_ json: String?) -> HeldNotice? {
            guard let json else { return nil }
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .custom { decoder in
                let text = try decoder.singleValueContainer().decode(String.self)
                guard let date = PostgresTimestamp.parse(text) else {
                    throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a time: \(text)"))
                }
                return date
            }
            return try? decoder.decode(HeldNotice.self, from: Data(json.utf8))
        }
    }
    /// Where it goes as `alertd_destinations` knows it; nil without destination health (a
    /// schema before 20251130, a test notification to an address given on the command line).
    public var target: Target?
    /// It waited longer than ALERTD_ALERT_MAX_AGE (since it was written, or last replayed): it
    /// fails without an attempt.
    public var expired = false
    /// Of an alert written by hand (origin `manual`), the recipients its integration does not
    /// name: it fails without an attempt, sent to none of them (`AlertStore.notConfiguredColumn`).
    public var notConfigured: [String] = []
    /// Probes of its destination's open circuit it carried: attempts that do not count against
    /// its own (`metadata ->> 'probes'`).
    public var probesSpent = 0
    /// The attempts that count against `maxAttempts`: this one, and the earlier ones that were
    /// not probes.
    public var countedAttempt: Int { attempt - probesSpent }

    /// An alert's destination, at its claim.
    public struct Target: Sendable, Equatable {
        /// `alertd_destinations.destination`: the webhook URL, or the relay (smtp://host:port).
        public let key: String
        /// This alert is its destination's probe: the one attempt let through its open circuit.
        public var probe = false
        /// Set when the destination is disabled: since when, why, by whom.
        public var disabledAt: Date? = nil
        public var disabledReason: String? = nil
    }

    /// What an integration's addresses are told of its disabled webhook URL (alert type
    /// `webhook_disabled`; its metadata's `destination`).
    public struct DisabledDestination: Sendable, Equatable {
        public let url: String
        public let reason: String
        public let disabledAt: Date
        public let failingSince: Date?
        public let lastError: String?
        /// Its alerts not delivered since it began failing, and those still waiting.
        public let undelivered: Int
    }
    public var disabledDestination: DisabledDestination?

    public struct Integration: Sendable, Equatable {
        public let id: UUID
        public let name: String?
        public let type: String
        public let environment: String
        public let tenantID: UUID
    }

    /// An incident: an endpoint failing from `openedAt` until `resolvedAt`.
    public struct Incident: Sendable, Equatable {
        public let id: UUID
        public var kind: Kind = .run
        public var endpoint: String? = nil
        /// For an overdue endpoint: when a run was due, and what alertd expected.
        public var expectedAt: Date? = nil
        public var frequency: String? = nil
        public var graceSeconds: Int? = nil
        /// For a stuck run: how long it could run before it was stuck, and the endpoint's typical
        /// duration and where that came from.
        public var stuckAfterSeconds: Int? = nil
        public var typicalSeconds: Int? = nil
        public var typicalFrom: String? = nil

        /// `integration_alert_incidents.kind`.
        public enum Kind: String, Sendable {
            /// The endpoint's runs fail (the trigger's).
            case run
            /// Its scheduled run did not start.
            case overdue
            /// A run of it is still running far longer than usual.
            case stuck
        }
        public let openedAt: Date
        /// failure, or warning while only partial runs failed.
        public let severity: String
        public let resolvedAt: Date?
        public let remindersSent: Int
        /// For a reminder or a recovery notice: the runs that failed while it was open, how many,
        /// the newest (at most 20) and the last one's start and error.
        public let failedRuns: Int?
        public let recentRuns: [UUID]
        public let lastFailedAt: Date?
        public let lastError: String?
    }

    public struct SyncRun: Sendable, Equatable {
        public let id: UUID
        public let endpoint: String
        public let status: String
        public let startedAt: Date
        public let completedAt: Date?
        public let durationSeconds: Int?
        public let recordsSynced: Int
        public let recordsFailed: Int
        public let recordsSkipped: Int
        public let errorMessage: String?
        public let retryCount: Int
        public let maxRetries: Int
        public let retryAt: Date?
        public let triggeredBy: String
    }

    /// A test alert that lives only in memory: `alertd --test-notification --email/--webhook-url`.
    public static func test(channel: Channel, recipients: [String]) -> ClaimedAlert {
        ClaimedAlert(id: UUID(), type: .success, channel: channel, origin: .test, recipients: recipients, attempt: 1, maxAttempts: 1, createdAt: Date(), integration: nil, sync: nil)
    }

    init(id: UUID, type: AlertType, channel: Channel, origin: Origin, recipients: [String], attempt: Int, maxAttempts: Int, createdAt: Date?, integration: Integration?, sync: SyncRun?, incident: Incident? = nil) {
        self.id = id
        self.type = type
        self.channel = channel
        self.origin = origin
        self.recipients = recipients
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.createdAt = createdAt
        self.integration = integration
        self.sync = sync
        self.incident = incident
    }

    init(row: PostgresRow) throws {
        id = try row.decode("id")
        type = try row.decode("alert_type")
        channel = try row.decode("alert_channel")
        origin = try row.decode("origin")
        recipients = try row.decode("recipients", as: [String]?.self) ?? []
        attempt = try row.decode("attempt_count")
        maxAttempts = try row.decode("max_attempts")
        createdAt = try row.decode("created_at")
        destination = try row.decode("destination")
        groupKey = try row.decode("group_key")
        deliveredRecipients = try row.decode("email_delivered", as: [String]?.self) ?? []
        bouncedRecipients = try row.decode("email_bounced", as: [String]?.self) ?? []
        if let key = try row.decode("target_key", as: String?.self) {
            target = Target(
                key: key, probe: try row.decode("target_probe", as: Bool?.self) ?? false,
                disabledAt: try row.decode("target_disabled_at"), disabledReason: try row.decode("target_disabled_reason")
            )
        }
        expired = try row.decode("expired", as: Bool?.self) ?? false
        notConfigured = try row.decode("not_configured", as: [String]?.self) ?? []
        heldNotice = HeldNotice.parse(row["held"])
        probesSpent = try row.decode("probes_spent", as: Int?.self) ?? 0
        if let url = try row.decode("disabled_url", as: String?.self), let at = try row.decode("disabled_at", as: Date?.self) {
            disabledDestination = DisabledDestination(
                url: url, reason: try row.decode("disabled_reason", as: String?.self) ?? "", disabledAt: at,
                failingSince: try row.decode("disabled_failing_since"), lastError: try row.decode("disabled_last_error"),
                undelivered: try row.decode("disabled_undelivered", as: Int?.self) ?? 0
            )
        }
        if let integrationID = try row.decode("integration_id", as: UUID?.self) {
            integration = Integration(
                id: integrationID,
                name: try row.decode("integration_name"),
                type: try row.decode("integration_type"),
                environment: try row.decode("environment"),
                tenantID: try row.decode("tenant_id")
            )
        } else {
            integration = nil
        }
        if let syncID = try row.decode("sync_id", as: UUID?.self) {
            sync = SyncRun(
                id: syncID,
                endpoint: try row.decode("endpoint_name"),
                status: try row.decode("sync_status"),
                startedAt: try row.decode("sync_started_at"),
                completedAt: try row.decode("sync_completed_at"),
                durationSeconds: try row.decode("duration_seconds"),
                recordsSynced: try row.decode("records_synced", as: Int?.self) ?? 0,
                recordsFailed: try row.decode("records_failed", as: Int?.self) ?? 0,
                recordsSkipped: try row.decode("records_skipped", as: Int?.self) ?? 0,
                errorMessage: try row.decode("error_message"),
                retryCount: try row.decode("retry_count", as: Int?.self) ?? 0,
                maxRetries: try row.decode("max_retries", as: Int?.self) ?? 0,
                retryAt: try row.decode("retry_at"),
                triggeredBy: try row.decode("triggered_by")
            )
        } else {
            sync = nil
        }
        if let incidentID = try row.decode("incident_id", as: UUID?.self) {
            var incident = Incident(
                id: incidentID,
                kind: Incident.Kind(rawValue: try row.decode("incident_kind", as: String.self)) ?? .run,
                endpoint: try row.decode("incident_endpoint"),
                openedAt: try row.decode("incident_opened_at"),
                severity: try row.decode("incident_severity"),
                resolvedAt: try row.decode("incident_resolved_at"),
                remindersSent: try row.decode("incident_reminders_sent", as: Int?.self) ?? 0,
                failedRuns: try row.decode("incident_failed_runs"),
                recentRuns: try row.decode("incident_recent_runs", as: [UUID]?.self) ?? [],
                lastFailedAt: try row.decode("incident_last_failed_at"),
                lastError: try row.decode("incident_last_error")
            )
            incident.expectedAt = try row.decode("incident_expected_at")
            incident.frequency = try row.decode("watch_frequency")
            incident.graceSeconds = try row.decode("watch_grace_seconds")
            incident.stuckAfterSeconds = try row.decode("watch_stuck_after_seconds")
            incident.typicalSeconds = try row.decode("watch_typical_seconds")
            incident.typicalFrom = try row.decode("watch_typical_from")
            self.incident = incident
        } else {
            incident = nil
        }
    }
}
