@testable import AlertdKit
import AlertdTestSupport
import Foundation
import Testing

/// A group's alerts (the news of an integration's endpoints held to one due time) go out as one
/// message per channel, listing every endpoint; everything else goes out as before.
@Suite struct AlertGroupsTests {
    static func news(
        _ endpoint: String, group: String? = "g1", type: AlertType = .failure, channel: Channel = .webhook,
        recipients: [String] = ["https://hooks.example.com/x"], created: TimeInterval = 0, attempt: Int = 1
    ) -> ClaimedAlert {
        var alert = ClaimedAlert(
            id: UUID(), type: type, channel: channel, origin: .trigger, recipients: recipients, attempt: attempt, maxAttempts: 3,
            createdAt: Date(timeIntervalSince1970: 1_763_807_400 + created),
            integration: .init(id: UUID(uuidString: "00000000-0000-0000-0000-0000000000c1")!, name: "Paycom", type: "paycom", environment: "production", tenantID: UUID()),
            sync: .init(
                id: UUID(), endpoint: endpoint, status: type == .warning ? "partial" : "failed", startedAt: Date(timeIntervalSince1970: 1_763_807_400 + created),
                completedAt: nil, durationSeconds: nil, recordsSynced: 1, recordsFailed: 2, recordsSkipped: 0, errorMessage: "token expired at \(endpoint)",
                retryCount: 0, maxRetries: 0, retryAt: nil, triggeredBy: "scheduler"
            )
        )
        alert.groupKey = group
        return alert
    }

    @Test func aGroupsAlertsBecomeOneMessagePerChannelLedByTheFirstFailure() {
        let alerts = [
            Self.news("payroll", type: .warning, created: 0),
            Self.news("employees", created: 2),
            Self.news("benefits", created: 1),
            Self.news("employees", channel: .email, recipients: ["ops@example.com"], created: 2),
            Self.news("payroll", channel: .email, recipients: ["ops@example.com"], created: 0),
            Self.news("alone", group: nil),
            Self.news("other group", group: "g2"),
        ]
        let messages = AlertGroups.form(alerts)
        #expect(messages.count == 4)
        let webhook = messages[0]
        // A failure leads a warning; of two failures, the older.
        #expect(webhook.sync?.endpoint == "benefits")
        #expect(webhook.grouped.map { $0.sync?.endpoint } == ["employees", "payroll"])
        #expect(Set(webhook.members.map(\.id)) == Set(alerts[0..<3].map(\.id)))
        let email = messages[1]
        #expect(email.channel == .email && email.sync?.endpoint == "payroll" && email.grouped.map(\.sync?.endpoint) == ["employees"])
        #expect(messages[2].sync?.endpoint == "alone" && messages[2].grouped.isEmpty)
        #expect(messages[3].sync?.endpoint == "other group" && messages[3].grouped.isEmpty)
        // Nothing lost, nothing twice.
        let sent = Set(messages.flatMap(\.members).map(\.id))
        #expect(sent.count == alerts.count && sent == Set(alerts.map(\.id)))
    }

    @Test func onlyHeldNewsOfOneDestinationWithAnAttemptLeftIsGrouped() {
        var test = Self.news("t")
        test = ClaimedAlert(id: test.id, type: .failure, channel: .webhook, origin: .test, recipients: test.recipients, attempt: 1, maxAttempts: 1, createdAt: nil, integration: test.integration, sync: test.sync)
        test.groupKey = "g1"
        let alerts = [
            Self.news("a"),
            Self.news("b", recipients: ["https://elsewhere.example.com/y"]),
            Self.news("c", attempt: 4),
            test,
        ]
        let messages = AlertGroups.form(alerts)
        #expect(messages.count == alerts.count)
        #expect(messages.allSatisfy { $0.grouped.isEmpty })
    }

    @Test func aGroupLargerThanAMessageCarriesGoesOutAsSeveral() {
        let alerts = (0..<(AlertGroups.largest + 3)).map { Self.news("endpoint \($0)", created: Double($0)) }
        let messages = AlertGroups.form(alerts)
        #expect(messages.map(\.members.count) == [AlertGroups.largest, 3])
    }

    @Test func eachAlertOfAMessageRecordsTheMessageAndRetriesInStep() throws {
        let messages = AlertGroups.form([Self.news("a"), Self.news("b"), Self.news("c")])
        let message = try #require(messages.first)
        let policy = RetryPolicy(backoff: .init(initial: .seconds(10), maximum: .seconds(600)))
        let report = DeliveryReport(decision: .retry(reason: "HTTP 503", notBefore: nil), httpStatus: 503)
        let carrier = policy.outcome(for: message, report, startedAt: Date(), duration: .milliseconds(5))
        let carried = policy.outcome(for: message.grouped[0], report, startedAt: Date(), duration: .milliseconds(5), message: message, retryInStep: carrier.retryIn)
        #expect(carrier.result == .retry && carried.result == .retry && carried.retryIn == carrier.retryIn)
        #expect(carried.alertID == message.grouped[0].id)
        let patch = try #require(carried.metadataPatch)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(patch.utf8)) as? [String: Any])
        let group = try #require(object["group_message"] as? [String: Any])
        #expect(group["carried_by"] as? String == message.id.uuidString.lowercased())
        #expect((group["alerts"] as? [String])?.count == 3)
        // An alert alone records nothing of the kind.
        #expect(policy.outcome(for: Self.news("alone", group: nil), report, startedAt: Date(), duration: .zero).metadataPatch == nil)
    }

    @Test func aGroupsMessageNamesEveryEndpoint() async throws {
        let templates = try await AlertTemplates.load(from: TestPostgres.packageRoot.appending(path: "templates"))
        let message = try #require(AlertGroups.form([Self.news("employees"), Self.news("payroll", created: 1), Self.news("benefits", created: 2)]).first)
        let context = AlertContext(alert: message, linkBase: "https://etl.example.com")
        let rendered = templates.renderMessage(context)
        #expect(rendered.subject == "[alertd] Sync failed: Paycom · employees and 2 more")
        #expect(rendered.text.contains("This message also carries 2 more endpoints of Paycom that failed within the group interval:"))
        #expect(rendered.text.contains("- benefits: failed, started 2025-11-22T10:30:02Z, 1 synced, 2 failed\n  Error: token expired at benefits\n  Details: https://etl.example.com/integrations/00000000-0000-0000-0000-0000000000c1/syncs/"))
        #expect(rendered.text.contains("- payroll: failed"))
        #expect(rendered.html.contains("Also failing: 2 more endpoints of Paycom"))
        let body = try templates.renderWebhookBody(context)
        let json = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        let group = try #require((json["data"] as? [String: Any])?["group"] as? [[String: Any]])
        #expect(group.map { $0["endpoint"] as? String } == ["employees", "benefits", "payroll"])
        #expect(group.map { $0["alert_id"] as? String } == message.members.map { $0.id.uuidString.lowercased() })
        #expect(group[1]["error_message"] as? String == "token expired at benefits")
        // One other: singular.
        let pair = try #require(AlertGroups.form([Self.news("employees"), Self.news("payroll", created: 1)]).first)
        #expect(templates.renderMessage(AlertContext(alert: pair, linkBase: nil)).text.contains("carries 1 more endpoint of Paycom"))
    }
}
