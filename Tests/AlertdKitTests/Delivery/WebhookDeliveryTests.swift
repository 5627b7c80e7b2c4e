@testable import AlertdKit
import Foundation
import Testing

/// A webhook attempt's request and its refusals, without a receiver.
@Suite struct WebhookDeliveryTests {
    static func delivery(secrets: String?) async throws -> WebhookDelivery {
        WebhookDelivery(
            templates: try await AlertTemplates.load(from: AlertTemplatesTests.directory),
            signer: try secrets.map { try WebhookSigner(secretList: $0) } ?? WebhookSigner(secrets: []),
            client: WebhookClient(settings: .init()), linkBase: nil
        )
    }

    @Test func theHeadersCarryTheAlertsStableIDTheTimeAndTheSignature() async throws {
        let delivery = try await Self.delivery(secrets: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        let alert = AlertTemplatesTests.alert()
        let body = Data(#"{"x": 1}"#.utf8)
        let startedAt = Date(timeIntervalSince1970: 1_763_807_600)
        let headers = Dictionary(uniqueKeysWithValues: delivery.headers(alert, body: body, startedAt: startedAt).map { ($0.name, $0.value) })
        let id = "msg_\(alert.id.uuidString.lowercased())"
        #expect(headers["webhook-id"] == id)
        #expect(headers["webhook-timestamp"] == "1763807600")
        #expect(headers["Content-Type"] == "application/json")
        #expect(headers["webhook-signature"] == delivery.signer.signature(id: id, timestamp: 1_763_807_600, body: body))
        // Every attempt of an alert has the same id, so that a receiver can drop a repeat.
        let later = Dictionary(uniqueKeysWithValues: delivery.headers(alert, body: body, startedAt: startedAt.addingTimeInterval(90)).map { ($0.name, $0.value) })
        #expect(later["webhook-id"] == id && later["webhook-timestamp"] == "1763807690")
    }

    @Test func withoutASecretNothingIsSigned() async throws {
        let headers = try await Self.delivery(secrets: nil).headers(AlertTemplatesTests.alert(), body: Data(), startedAt: Date())
        #expect(!headers.contains { $0.name == "webhook-signature" })
    }

    @Test func anAlertWithoutAURLFailsWithoutARequest() async throws {
        let bare = ClaimedAlert(id: UUID(), type: .failure, channel: .webhook, origin: .trigger, recipients: [], attempt: 1, maxAttempts: 3, createdAt: nil, integration: nil, sync: nil)
        let report = try await Self.delivery(secrets: nil).attempt(bare, startedAt: Date())
        #expect(report.decision == .failed(reason: "The alert has no webhook URL."))
        #expect(report.httpStatus == nil)
    }

    @Test func aURLAlertdWillNotCallIsRefusedBeforeAnyConnection() async throws {
        var alert = AlertTemplatesTests.alert()
        alert = ClaimedAlert(id: alert.id, type: .failure, channel: .webhook, origin: .trigger, recipients: ["file:///etc/passwd"], attempt: 1, maxAttempts: 3, createdAt: nil, integration: alert.integration, sync: alert.sync)
        let report = try await Self.delivery(secrets: nil).attempt(alert, startedAt: Date())
        #expect(report.decision == .failed(reason: "Only http and https webhook URLs with a host are allowed."))
        #expect(report.message?.contains("\"type\": \"sync.failure\"") == true)
    }
}
