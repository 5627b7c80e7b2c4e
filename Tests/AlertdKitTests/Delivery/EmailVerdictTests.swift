@testable import AlertdKit
import AlertdSupport
import Foundation
import Testing

/// The SMTP replies' verdict per recipient, and the outcome the retry policy makes of it,
/// without a mail server: replies as libesmtp reports them.
@Suite struct EmailVerdictTests {
    static func alert(to recipients: [String], attempt: Int = 1, maxAttempts: Int = 10, delivered: [String] = [], bounced: [String] = []) -> ClaimedAlert {
        var alert = ClaimedAlert(id: UUID(), type: .failure, channel: .email, origin: .trigger, recipients: recipients, attempt: attempt, maxAttempts: maxAttempts, createdAt: nil, integration: nil, sync: nil)
        alert.deliveredRecipients = delivered
        alert.bouncedRecipients = bounced
        return alert
    }

    static func plan(_ alert: ClaimedAlert) -> EmailDelivery.Plan {
        EmailDelivery.Plan(alert: alert, message: AlertTemplates.Rendered(subject: "Sync failed", text: "text", html: "<html></html>"))
    }

    static func reply(_ code: Int, _ text: String = "") -> SMTPClient.Reply { SMTPClient.Reply(code: code, text: text) }

    static let policy = RetryPolicy(backoff: Backoff(initial: .seconds(30), maximum: .seconds(3600), multiplier: 2, jitter: 0))

    static func outcome(_ alert: ClaimedAlert, _ result: SMTPClient.MessageResult?) -> AttemptOutcome {
        policy.outcome(for: alert, EmailDelivery.report(for: plan(alert), result: result), startedAt: Date(), duration: .milliseconds(5))
    }

    @Test func everyRecipientAcceptedIsSent() {
        let alert = Self.alert(to: ["ops@example.com", "hr@example.com"])
        let result = SMTPClient.MessageResult(message: Self.reply(250, "2.0.0 queued"), recipients: ["ops@example.com": Self.reply(250), "hr@example.com": Self.reply(250)], sessionFailure: nil)
        let outcome = Self.outcome(alert, result)
        #expect(outcome.result == .sent && outcome.error == nil)
        #expect(outcome.smtpReply == "250 2.0.0 queued")
        #expect(outcome.metadataPatch == #"{"email_bounced":[],"email_delivered":["ops@example.com","hr@example.com"]}"#)
    }

    @Test func aTemporaryRefusalIsRetriedForThatRecipientOnlyAndAPermanentOneIsNoted() {
        let alert = Self.alert(to: ["ops@example.com", "busy@example.com", "gone@example.com"])
        let result = SMTPClient.MessageResult(
            message: Self.reply(250, "OK"),
            recipients: ["ops@example.com": Self.reply(250), "busy@example.com": Self.reply(451, "try later"), "gone@example.com": Self.reply(550, "no such user")],
            sessionFailure: nil
        )
        let outcome = Self.outcome(alert, result)
        #expect(outcome.result == .retry)
        #expect(outcome.retryIn == .seconds(30))
        #expect(outcome.error == "Bounced: gone@example.com (550 no such user). Not yet delivered to busy@example.com (451 try later)")
        #expect(outcome.metadataPatch == #"{"email_bounced":["gone@example.com"],"email_delivered":["ops@example.com"]}"#)
    }

    @Test func onlyThoseNotYetReachedAreSentToAgain() {
        let alert = Self.alert(to: ["ops@example.com", "busy@example.com", "gone@example.com"], attempt: 2, delivered: ["ops@example.com"], bounced: ["gone@example.com"])
        #expect(Self.plan(alert).valid == ["busy@example.com"])
        let result = SMTPClient.MessageResult(message: Self.reply(250, "OK"), recipients: ["busy@example.com": Self.reply(250)], sessionFailure: nil)
        let outcome = Self.outcome(alert, result)
        #expect(outcome.result == .sent)
        #expect(outcome.metadataPatch == #"{"email_bounced":["gone@example.com"],"email_delivered":["ops@example.com","busy@example.com"]}"#)
    }

    @Test func everyRecipientRefusedForGoodIsABounce() {
        let alert = Self.alert(to: ["gone@example.com", "not an address"])
        let result = SMTPClient.MessageResult(message: nil, recipients: ["gone@example.com": Self.reply(550, "no such user")], sessionFailure: nil)
        let outcome = Self.outcome(alert, result)
        #expect(outcome.result == .bounced)
        #expect(outcome.error?.contains("not a valid email address") == true)
        #expect(outcome.error?.contains("gone@example.com (550 no such user)") == true)
    }

    @Test func dataRefusedForGoodAfterTheRecipientsWereAcceptedIsABounce() {
        let alert = Self.alert(to: ["ops@example.com"])
        let result = SMTPClient.MessageResult(message: Self.reply(554, "5.7.1 rejected"), recipients: ["ops@example.com": Self.reply(250)], sessionFailure: nil)
        #expect(Self.outcome(alert, result).result == .bounced)
    }

    @Test func aFailedSessionIsOneReasonSaidOnceAndRetried() {
        let alert = Self.alert(to: ["ops@example.com", "hr@example.com"])
        let failure = SMTPSessionFailure(.loginRefused, "The SMTP server refused alertd's login.")
        let result = SMTPClient.MessageResult(message: nil, recipients: [:], sessionFailure: failure)
        let outcome = Self.outcome(alert, result)
        #expect(outcome.result == .retry)
        #expect(outcome.error == failure.message)
        #expect(outcome.smtpReply == nil)
    }

    @Test func aRetryOnTheLastAttemptGivesUp() {
        let alert = Self.alert(to: ["busy@example.com"], attempt: 10, maxAttempts: 10)
        let result = SMTPClient.MessageResult(message: Self.reply(250), recipients: ["busy@example.com": Self.reply(451, "try later")], sessionFailure: nil)
        let outcome = Self.outcome(alert, result)
        #expect(outcome.result == .failed)
        #expect(outcome.retryIn == nil)
        #expect(outcome.error == "Gave up after 10 attempts: Not yet delivered to busy@example.com (451 try later)")
    }

    @Test func anAlertWithNoRecipientFails() {
        let outcome = Self.outcome(Self.alert(to: []), nil)
        #expect(outcome.result == .failed)
        #expect(outcome.error == "The alert has no email recipients.")
    }
}
