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
        case .retry(let reason, let notBefore) where alert.target?.probe == true:
            // A probe's failure is the destination's, not the alert's: it waits with the others.
            result = .retry
            error = "Probe of a destination whose circuit is open: \(reason)"
            retryIn = retryInStep ?? max(backoff.delay(attempt: 1), notBefore ?? .zero)
        case .retry(let reason, let notBefore):
            if alert.countedAttempt >= alert.maxAttempts {
                result = .failed
                error = "Gave up after \(alert.attempt) \(alert.attempt == 1 ? "attempt" : "attempts"): \(reason)"
            } else {
                result = .retry
                error = reason
                retryIn = retryInStep ?? max(backoff.delay(attempt: alert.attempt), notBefore ?? .zero)
            }
        }
        var patch = AlertGroups.metadataPatch(report.metadataPatch, message: message ?? alert)
        if alert.target?.probe == true && result == .retry {
            patch = Self.merging(["probes": alert.probesSpent + 1], into: patch)
        }
        var outcome = AttemptOutcome(
            alertID: alert.id, attempt: alert.attempt, result: result, startedAt: startedAt, duration: duration,
            httpStatus: report.httpStatus, smtpReply: report.smtpReply, error: error, retryIn: retryIn,
            subject: report.subject, message: report.message, details: report.details, metadataPatch: patch
        )
        outcome.destination = alert.target?.key
        outcome.probe = alert.target?.probe ?? false
        // One message, one word on its destination: its carrier's (`AlertDelivery` clears the
        // rest of a session's).
        outcome.signal = message == nil || message?.id == alert.id ? report.signal : nil
        return outcome
    }

    /// An alert failed without an attempt: its destination is disabled, or it waited too long.
    func notAttempted(_ alert: ClaimedAlert, reason: String, startedAt: Date) -> AttemptOutcome {
        var outcome = AttemptOutcome(alertID: alert.id, attempt: alert.attempt, result: .failed, startedAt: startedAt, duration: .zero, error: reason)
        outcome.destination = alert.target?.key
        outcome.attempted = false
        return outcome
    }

    /// An alert over its integration's message limit: recorded `held`, with the window in its
    /// metadata (`metadata -> 'held'`), no attempt made.
    func held(_ alert: ClaimedAlert, _ held: MessageLimits.Held, startedAt: Date) -> AttemptOutcome {
        let patch = Self.merging(["held": ["window_start": AlertContext.timestamp(held.windowStart), "limit": held.limit] as [String: Any]], into: nil)
        var outcome = AttemptOutcome(
            alertID: alert.id, attempt: alert.attempt, result: .held, startedAt: startedAt, duration: .zero, error: held.reason, metadataPatch: patch
        )
        outcome.attempted = false
        return outcome
    }

    static func merging(_ keys: [String: Any], into patch: String?) -> String {
        var object = patch.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } ?? [:]
        object.merge(keys) { _, new in new }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return patch ?? "{}" }
        return String(decoding: data, as: UTF8.self)
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
