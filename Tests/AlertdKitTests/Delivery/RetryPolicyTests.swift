@testable import AlertdKit
import AlertdSupport
import Foundation
import Testing

/// How a webhook's answer becomes the outcome recorded, without a receiver.
@Suite struct RetryPolicyTests {
    static let policy = RetryPolicy(backoff: Backoff(initial: .seconds(30), maximum: .seconds(3600), multiplier: 2, jitter: 0))

    static func alert(attempt: Int, of maxAttempts: Int = 10) -> ClaimedAlert {
        ClaimedAlert(id: UUID(), type: .failure, channel: .webhook, origin: .trigger, recipients: ["https://hooks.example.com/x"], attempt: attempt, maxAttempts: maxAttempts, createdAt: nil, integration: nil, sync: nil)
    }

    static func outcome(_ response: WebhookResponse, attempt: Int = 1, of maxAttempts: Int = 10) -> AttemptOutcome {
        var status: Int?
        if case .answered(let code, _, _) = response { status = code }
        let report = DeliveryReport(decision: response.decision(), httpStatus: status, subject: "s", message: "{}")
        return policy.outcome(for: alert(attempt: attempt, of: maxAttempts), report, startedAt: Date(), duration: .milliseconds(3))
    }

    @Test func aSuccessIsSentWithItsStatus() {
        let outcome = Self.outcome(.answered(status: 204, retryAfter: nil, body: ""))
        #expect(outcome.result == .sent && outcome.httpStatus == 204 && outcome.error == nil && outcome.retryIn == nil)
        #expect(outcome.subject == "s" && outcome.message == "{}")
    }

    @Test func retriesWaitTheBackoffDoublingOrLongerIfTheReceiverAsks() {
        #expect(Self.outcome(.answered(status: 503, retryAfter: nil, body: ""), attempt: 1).retryIn == .seconds(30))
        #expect(Self.outcome(.answered(status: 503, retryAfter: nil, body: ""), attempt: 3).retryIn == .seconds(120))
        #expect(Self.outcome(.answered(status: 429, retryAfter: "600", body: ""), attempt: 1).retryIn == .seconds(600))
        #expect(Self.outcome(.answered(status: 429, retryAfter: "5", body: ""), attempt: 1).retryIn == .seconds(30))
        #expect(Self.outcome(.transportFailed(reason: "Timeout was reached", timedOut: true)).result == .retry)
    }

    @Test func theLastAttemptGivesUpSayingHowManyThereWere() {
        let outcome = Self.outcome(.answered(status: 503, retryAfter: nil, body: "busy"), attempt: 1, of: 1)
        #expect(outcome.result == .failed)
        #expect(outcome.error == "Gave up after 1 attempt: HTTP 503: busy")
        #expect(Self.outcome(.answered(status: 500, retryAfter: nil, body: ""), attempt: 4, of: 4).error == "Gave up after 4 attempts: HTTP 500")
    }

    @Test func aFinalRefusalFailsAtOnce() {
        let outcome = Self.outcome(.answered(status: 410, retryAfter: nil, body: ""), attempt: 1)
        #expect(outcome.result == .failed && outcome.retryIn == nil)
        #expect(outcome.error?.contains("gone") == true)
        #expect(Self.outcome(.refused(reason: "internal address")).result == .failed)
    }

    @Test func anAlertOutOfAttemptsIsNotSentAgain() {
        let outcome = Self.policy.outOfAttempts(Self.alert(attempt: 4, of: 3), startedAt: Date())
        #expect(outcome.result == .failed)
        #expect(outcome.error?.hasPrefix("Gave up: 3 attempts were started") == true)
    }

    @Test func theResultsDeliveryStatusIsTheAlertsNewState() {
        #expect(AttemptOutcome.Result.allCases.map(\.deliveryStatus) == [.sent, .pending, .failed, .bounced])
    }
}
