@testable import AlertdKit
import Foundation
import Testing

/// A webhook attempt's request and its refusals, without a receiver.
@Suite struct WebhookDeliveryTests {
    static func delivery(secrets: String?, signing: WebhookSigning = .shared) async throws -> WebhookDelivery {
        WebhookDelivery(
            templates: try await AlertTemplates.load(from: AlertTemplatesTests.directory),
            shared: try secrets.map { try WebhookSigner(secretList: $0) } ?? WebhookSigner(secrets: []), signing: signing,
            client: WebhookClient(settings: .init()), linkBase: nil
        )
    }

    static let integrationSecret = "whsec_aWF9Aj2tTcu63vbFIT9rLQ39qNunqkXtkhseTYpvl3I="
    static let retiringSecret = "whsec_ros8pt3/RK2AaK+Jkdd0tuOB94Ov50Ttu4fPNK2lhds="

    /// The signature header of `alert` as `signing` signs it, and what each secret alone gives.
    static func signature(_ alert: ClaimedAlert, signing: WebhookSigning, shared: String?) async throws -> String? {
        let headers = try await delivery(secrets: shared, signing: signing).headers(alert, body: Data("{}".utf8), startedAt: Date(timeIntervalSince1970: 1_763_807_600))
        return headers.first { $0.name == "webhook-signature" }?.value
    }

    static func alone(_ secret: String, _ alert: ClaimedAlert) throws -> String {
        try WebhookSigner(secretList: secret).signature(id: "msg_\(alert.id.uuidString.lowercased())", timestamp: 1_763_807_600, body: Data("{}".utf8))
    }

    @Test func eachSigningModeSignsWithTheSecretsItNamesOwnFirst() async throws {
        var alert = AlertTemplatesTests.alert()
        alert.signingSecrets = [try WebhookSigner.Secret(Self.integrationSecret), try WebhookSigner.Secret(Self.retiringSecret)]
        let shared = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        let own = try Self.alone(Self.integrationSecret, alert)
        let retiring = try Self.alone(Self.retiringSecret, alert)
        let sharedAlone = try Self.alone(shared, alert)
        #expect(try await Self.signature(alert, signing: .integration, shared: shared) == "\(own) \(retiring)")
        #expect(try await Self.signature(alert, signing: .both, shared: shared) == "\(own) \(retiring) \(sharedAlone)")
        #expect(try await Self.signature(alert, signing: .shared, shared: shared) == sharedAlone)
        // Without secrets of its own (a schema before 20251203, a URL on the command line):
        // the shared secret, or none.
        alert.signingSecrets = []
        #expect(try await Self.signature(alert, signing: .integration, shared: shared) == sharedAlone)
        #expect(try await Self.signature(alert, signing: .integration, shared: nil) == nil)
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
        #expect(headers["webhook-signature"] == delivery.shared.signature(id: id, timestamp: 1_763_807_600, body: body))
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
