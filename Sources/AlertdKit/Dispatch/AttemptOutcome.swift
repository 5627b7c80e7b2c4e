import Foundation

/// The result of one delivery attempt, as recorded in integration_alert_attempts and on the alert.
public struct AttemptOutcome: Sendable, Equatable {
    public enum Result: String, Sendable {
        case sent
        /// A temporary failure: the alert stays pending and is tried again after `retryIn`.
        case retry
        case failed
        case bounced
    }

    public let alertID: UUID
    public let attempt: Int
    public private(set) var result: Result
    public let startedAt: Date
    public let duration: Duration
    public var httpStatus: Int?
    public var smtpReply: String?
    public var error: String?
    public var retryIn: Duration?
    /// What the message said, kept on the alert for the audit.
    public var subject: String?
    public var message: String?
    /// Per-recipient results and other particulars, as a JSON object.
    public var details: String?
    /// Keys to set in the alert's metadata, as a JSON object (recipients already done, say).
    public var metadataPatch: String?

    public init(alertID: UUID, attempt: Int, result: Result, startedAt: Date, duration: Duration) {
        self.alertID = alertID
        self.attempt = attempt
        self.result = result
        self.startedAt = startedAt
        self.duration = duration
    }
}

extension AttemptOutcome {
    /// The same outcome with another result.
    func with(result: Result) -> AttemptOutcome {
        var copy = self
        copy.result = result
        return copy
    }
}
