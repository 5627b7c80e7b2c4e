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

    @Test func aProbesFailureIsTheDestinationsAndNeverUsesUpTheAlert() {
        var probe = Self.alert(attempt: 3, of: 3)
        probe.target = ClaimedAlert.Target(key: "https://hooks.example.com/x", probe: true)
        probe.probesSpent = 1
        let report = DeliveryReport(decision: .retry(reason: "HTTP 503", notBefore: nil), httpStatus: 503, signal: .unavailable(reason: "HTTP 503", httpStatus: 503, retryAfter: nil))
        let outcome = Self.policy.outcome(for: probe, report, startedAt: Date(), duration: .zero)
        #expect(outcome.result == .retry && outcome.probe && outcome.destination == "https://hooks.example.com/x")
        #expect(outcome.error == "Probe of a destination whose circuit is open: HTTP 503")
        #expect(outcome.metadataPatch == #"{"probes":2}"#)
        // Its earlier probe does not count against it: attempt 3 of 3 is its second counted one.
        var after = Self.alert(attempt: 3, of: 3)
        after.probesSpent = 1
        #expect(after.countedAttempt == 2)
        #expect(Self.policy.outcome(for: after, report, startedAt: Date(), duration: .zero).result == .retry)
    }

    @Test func answersSayWhatTheyShowOfTheReceiver() {
        #expect(WebhookResponse.answered(status: 204, retryAfter: nil, body: "").signal() == .reached)
        #expect(WebhookResponse.answered(status: 503, retryAfter: "30", body: "").signal() == .unavailable(reason: "HTTP 503", httpStatus: 503, retryAfter: .seconds(30)))
        #expect(WebhookResponse.answered(status: 429, retryAfter: nil, body: "slow").signal() == .unavailable(reason: "HTTP 429: slow", httpStatus: 429, retryAfter: nil))
        #expect(WebhookResponse.answered(status: 410, retryAfter: nil, body: "").signal() == .gone(reason: "HTTP 410"))
        #expect(WebhookResponse.answered(status: 400, retryAfter: nil, body: "bad").signal() == .refused(reason: "HTTP 400: bad", httpStatus: 400))
        #expect(WebhookResponse.transportFailed(reason: "Connection refused", timedOut: false).signal() == .unavailable(reason: "Connection refused", httpStatus: nil, retryAfter: nil))
        #expect(WebhookResponse.refused(reason: "internal address").signal() == nil, "a URL alertd refuses says nothing of the receiver")
        #expect(WebhookResponse.transportFailed(reason: "cancelled: alertd is shutting down", timedOut: false).signal() == nil)
    }

    @Test func aBatchIsFoldedPerDestinationCountingFailuresSinceItsLastSuccess() {
        func outcome(_ key: String, _ signal: DestinationSignal?, probe: Bool = false) -> AttemptOutcome {
            var outcome = AttemptOutcome(alertID: UUID(), attempt: 1, result: .sent, startedAt: Date(), duration: .zero)
            outcome.destination = key
            outcome.signal = signal
            outcome.probe = probe
            return outcome
        }
        let down = DestinationSignal.unavailable(reason: "down", httpStatus: 503, retryAfter: .seconds(20))
        let folded = DestinationStore.observations([
            outcome("a", down), outcome("b", .reached), outcome("a", .reached), outcome("a", down), outcome("a", down),
            outcome("c", nil), outcome("d", nil, probe: true), outcome("b", .gone(reason: "gone")),
        ])
        #expect(folded.map(\.destination) == ["a", "b", "d"])
        #expect(folded[0].reached && folded[0].failures == 2 && folded[0].kind == "unavailable" && folded[0].retryAfter == 20 && folded[0].httpStatus == 503)
        #expect(folded[1].reached && folded[1].failures == 1 && folded[1].kind == "gone")
        #expect(!folded[2].reached && folded[2].failures == 0 && folded[2].probed)
    }

    @Test func anAlertForADisabledURLOrWaitingTooLongIsFailedUnsentSayingWhy() {
        var alert = Self.alert(attempt: 1)
        alert.target = ClaimedAlert.Target(key: "https://hooks.example.com/x?token=1", disabledAt: Date(timeIntervalSince1970: 1_790_000_000), disabledReason: "the receiver answered 410 Gone: HTTP 410")
        let outcome = Self.policy.notAttempted(alert, reason: "r", startedAt: Date())
        #expect(outcome.result == .failed && !outcome.attempted && outcome.destination == "https://hooks.example.com/x?token=1")
        #expect(AlertDelivery.shown("https://hooks.example.com:8443/services/T1/B2/secret") == "https://hooks.example.com:8443/…")
        #expect(AlertDelivery.shown("smtp://relay.example.com:587") == "smtp://relay.example.com:587")
    }

    @Test func theResultsDeliveryStatusIsTheAlertsNewState() {
        #expect(AttemptOutcome.Result.allCases.map(\.deliveryStatus) == [.sent, .pending, .failed, .bounced, .held])
    }
}
