import AlertdPostgres
import Foundation

/// The result of one delivery attempt, as recorded in integration_alert_attempts and on the alert.
/// Built once, when the attempt is over (`RetryPolicy.outcome`).
public struct AttemptOutcome: Sendable, Equatable {
    /// `integration_alert_attempts.outcome`.
    public enum Result: String, Sendable, CaseIterable, PostgresEncodable {
        case sent
        /// A temporary failure: the alert stays pending and is tried again after `retryIn`.
        case retry
        case failed
        case bounced
        /// Not sent: its integration reached its message limit (no attempt row).
        case held

        /// The alert's delivery status after an attempt with this result.
        public var deliveryStatus: DeliveryStatus {
            switch self {
            case .sent: .sent
            case .retry: .pending
            case .failed: .failed
            case .bounced: .bounced
            case .held: .held
            }
        }
    }

    public let alertID: UUID
    public let attempt: Int
    public let result: Result
    public let startedAt: Date
    public let duration: Duration
    public let httpStatus: Int?
    public let smtpReply: String?
    public let error: String?
    public let retryIn: Duration?
    /// What the message said, kept on the alert for the audit.
    public let subject: String?
    public let message: String?
    /// Per-recipient results and other particulars, as a JSON object.
    public let details: String?
    /// Keys to set in the alert's metadata, as a JSON object (recipients already done, say).
    public let metadataPatch: String?
    /// Its destination (`alertd_destinations`), what the attempt showed of it, and whether the
    /// attempt was the destination's probe.
    public var destination: String? = nil
    public var signal: DestinationSignal? = nil
    public var probe = false
    /// False for an alert failed without an attempt (its destination disabled, or it waited too
    /// long): no attempt row, and its attempt count is given back.
    public var attempted = true

    public init(
        alertID: UUID, attempt: Int, result: Result, startedAt: Date, duration: Duration,
        httpStatus: Int? = nil, smtpReply: String? = nil, error: String? = nil, retryIn: Duration? = nil,
        subject: String? = nil, message: String? = nil, details: String? = nil, metadataPatch: String? = nil
    ) {
        self.alertID = alertID
        self.attempt = attempt
        self.result = result
        self.startedAt = startedAt
        self.duration = duration
        self.httpStatus = httpStatus
        self.smtpReply = smtpReply
        self.error = error
        self.retryIn = retryIn
        self.subject = subject
        self.message = message
        self.details = details
        self.metadataPatch = metadataPatch
    }
}
