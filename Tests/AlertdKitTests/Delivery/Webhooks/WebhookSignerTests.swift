import AlertdKit
import Foundation
import Testing

@Suite struct WebhookSignerTests {
    /// The example of the Standard Webhooks specification's reference libraries.
    @Test func signsLikeTheSpecificationsExample() throws {
        let signer = try WebhookSigner(secretList: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        let signature = signer.signature(
            id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp: 1_614_265_330,
            body: Data(#"{"test": 2432232314}"#.utf8)
        )
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func signsWithEverySecretDuringARotation() throws {
        let signer = try WebhookSigner(secretList: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw  whsec_dGhpcyBpcyBhIHNlY29uZCBzZWNyZXQ=")
        let parts = signer.signature(id: "msg_1", timestamp: 1, body: Data("{}".utf8)).split(separator: " ")
        #expect(parts.count == 2)
        #expect(parts.allSatisfy { $0.hasPrefix("v1,") })
        #expect(parts[0] != parts[1])
    }

    /// "dGhpcyBpcyBhIHNlY29uZCBzZWNyZXQ=" without its "=": the reference libraries accept it.
    @Test func acceptsASecretWithoutBase64Padding() throws {
        let padded = try WebhookSigner(secretList: "whsec_dGhpcyBpcyBhIHNlY29uZCBzZWNyZXQ=")
        let unpadded = try WebhookSigner(secretList: "whsec_dGhpcyBpcyBhIHNlY29uZCBzZWNyZXQ")
        #expect(padded.signature(id: "msg_1", timestamp: 1, body: Data("{}".utf8)) == unpadded.signature(id: "msg_1", timestamp: 1, body: Data("{}".utf8)))
    }

    @Test func aListWithTheWrongSeparatorSaysWhichSeparatorToUse() {
        for (list, separator) in [("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,whsec_dGhpcyBpcyBhIHNlY29uZCBzZWNyZXQ=", ","), ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw;whsec_dGhpcyBpcyBhIHNlY29uZCBzZWNyZXQ=", ";")] {
            let error = #expect(throws: (any Error).self) {
                try WebhookSigner(secretList: list)
            }
            if let error {
                #expect("\(error)".contains("separated by spaces, not by \"\(separator)\""), "\(error)")
                #expect(!"\(error)".contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
            }
        }
    }

    @Test func rejectsSecretsThatAreNotWhsec() {
        for bad in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!", "whsec_c2hvcnQ="] {
            #expect(throws: AlertdError.self, "\(bad)") { try WebhookSigner.Secret(bad) }
        }
    }
}

@Suite struct WebhookDecisionTests {
    static let now = Date(timeIntervalSince1970: 1_763_807_400)

    @Test func classifiesStatuses() {
        func decide(_ status: Int, _ retryAfter: String? = nil) -> DeliveryDecision {
            WebhookResponse.answered(status: status, retryAfter: retryAfter, body: "").decision(now: Self.now)
        }
        #expect(decide(200) == .delivered)
        #expect(decide(204) == .delivered)
        for status in [429, 502, 503, 504, 500] {
            guard case .retry = decide(status) else { Issue.record("\(status) is not retried"); continue }
        }
        for status in [400, 401, 404, 410, 413, 301, 302, 307] {
            guard case .failed = decide(status) else { Issue.record("\(status) is not final"); continue }
        }
        #expect(WebhookResponse.transportFailed(reason: "timed out", timedOut: true).decision() == .retry(reason: "timed out", notBefore: nil))
        #expect(WebhookResponse.refused(reason: "no").decision() == .failed(reason: "no"))
    }

    @Test func honoursRetryAfterWithinBounds() {
        #expect(WebhookResponse.answered(status: 503, retryAfter: "7", body: "").decision(now: Self.now) == .retry(reason: "HTTP 503", notBefore: .seconds(7)))
        #expect(WebhookResponse.parseRetryAfter("0", now: Self.now) == .seconds(1))
        #expect(WebhookResponse.parseRetryAfter("999999", now: Self.now) == .seconds(3600))
        #expect(WebhookResponse.parseRetryAfter("Sat, 22 Nov 2025 10:32:00 GMT", now: Self.now) == .seconds(120))
        #expect(WebhookResponse.parseRetryAfter("Sat, 22 Nov 2025 10:00:00 GMT", now: Self.now) == .seconds(1))
        #expect(WebhookResponse.parseRetryAfter("soon", now: Self.now) == nil)
        #expect(WebhookResponse.parseRetryAfter("-5", now: Self.now) == nil)
    }
}
