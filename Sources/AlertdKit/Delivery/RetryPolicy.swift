import AlertdSupport
import Foundation

/// Turns what an attempt found into the outcome recorded: a retry becomes final once the alert's
/// attempts run out, and waits at least the backoff (longer if the receiver asked).
public struct RetryPolicy: Sendable {
    public let backoff: Backoff

    public init(backoff: Backoff) {
        self.backoff = backoff
    }

    /// - Parameters:
    ///   - message: the alert whose message carried `alert` (itself unless grouped): each alert of
    ///     a message of several records which alerts went together.
    ///   - retryInStep: for an alert carried in another's message, the carrier's wait, so that the
    ///     group is retried together.
    func outcome(
        for alert: ClaimedAlert, _ report: DeliveryReport, startedAt: Date, duration: Duration,
        message: ClaimedAlert? = nil, retryInStep: Duration? = nil
    ) -> AttemptOutcome {
        let result: AttemptOutcome.Result
        let error: String?
        var retryIn: Duration?
        switch report.decision {
        case .delivered:
            result = .sent
            error = report.deliveredNote
        case .failed(let reason):
            result = report.refusedForGood ? .bounced : .failed
            error = reason
        case .retry(let reason, let notBefore):
            if alert.attempt >= alert.maxAttempts {
                result = .failed
                error = "Gave up after \(alert.attempt) \(alert.attempt == 1 ? "attempt" : "attempts"): \(reason)"
            } else {
                result = .retry
                error = reason
                retryIn = retryInStep ?? max(backoff.delay(attempt: alert.attempt), notBefore ?? .zero)
            }
        }
        return AttemptOutcome(
            alertID: alert.id, attempt: alert.attempt, result: result, startedAt: startedAt, duration: duration,
            httpStatus: report.httpStatus, smtpReply: report.smtpReply, error: error, retryIn: retryIn,
            subject: report.subject, message: report.message, details: report.details, metadataPatch: AlertGroups.metadataPatch(report.metadataPatch, message: message ?? alert)
        )
    }

    /// An alert claimed once more than it may be tried: every attempt started and none was
    /// recorded as finished (alertd stopped during them). It is not sent again.
    func outOfAttempts(_ alert: ClaimedAlert, startedAt: Date) -> AttemptOutcome {
        AttemptOutcome(
            alertID: alert.id, attempt: alert.attempt, result: .failed, startedAt: startedAt, duration: .zero,
            error: "Gave up: \(alert.maxAttempts) attempts were started and none was recorded as finished (alertd stopped during them)."
        )
    }
}
