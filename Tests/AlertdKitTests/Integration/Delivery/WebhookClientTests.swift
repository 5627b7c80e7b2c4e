import AlertdKit
import AlertdTestSupport
import Foundation
import Testing

@Suite struct WebhookClientTests {
    /// The test receivers listen on loopback, which alertd refuses unless allowed.
    static var loopback: WebhookClient.Settings {
        var settings = WebhookClient.Settings()
        settings.policy = try! DestinationPolicy.parse(allowList: "127.0.0.1")
        return settings
    }

    @Test func postsTheBodyAndHeadersAndReadsTheAnswer() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        let client = WebhookClient(settings: Self.loopback)
        let body = Data(#"{"text":"ünïcode \"quoted\""}"#.utf8)
        let response = await client.send(WebhookRequest(
            url: receiver.url("/hooks/one"), body: body,
            headers: [("Content-Type", "application/json"), ("webhook-id", "msg_1")]
        ))
        #expect(response == .answered(status: 200, retryAfter: nil, body: #"{"received": 1}"#))
        let request = try #require(try receiver.requests().first)
        #expect(request.method == "POST")
        #expect(request.path == "/hooks/one")
        #expect(request.body == String(decoding: body, as: UTF8.self))
        #expect(request.headers["content-type"] == "application/json")
        #expect(request.headers["webhook-id"] == "msg_1")
        #expect(request.headers["user-agent"] == "alertd/\(AlertdVersion.string)")
        #expect(request.headers["expect"] == nil)
    }

    @Test func readsRetryAfterAndErrorStatuses() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        let client = WebhookClient(settings: Self.loopback)
        let request = WebhookRequest(url: receiver.url("/codes/503,410/x?retry_after=7"), body: Data("{}".utf8), headers: [])
        #expect(await client.send(request) == .answered(status: 503, retryAfter: "7", body: #"{"received": 1}"#))
        #expect(await client.send(request) == .answered(status: 410, retryAfter: "7", body: #"{"received": 2}"#))
    }

    @Test func timesOutOnAReceiverThatDoesNotAnswer() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        var settings = Self.loopback
        settings.totalTimeout = .milliseconds(300)
        let response = await WebhookClient(settings: settings).send(WebhookRequest(url: receiver.url("/sleep/3/x"), body: Data(), headers: []))
        guard case .transportFailed(_, let timedOut) = response else {
            Issue.record("expected a timeout, got \(response)")
            return
        }
        #expect(timedOut)
    }

    @Test func failsToConnectToAClosedPortAndRefusesOtherSchemes() async throws {
        let client = WebhookClient(settings: Self.loopback)
        guard case .transportFailed(_, false) = await client.send(WebhookRequest(url: "http://127.0.0.1:1/x", body: Data(), headers: [])) else {
            Issue.record("port 1 answered")
            return
        }
        for url in ["file:///etc/passwd", "ftp://example.com/x", "gopher://x", "not a url", "https://user:pw@hooks.example.com/x", "https://[redacted]@hooks.example.com/x"] {
            guard case .refused = await client.send(WebhookRequest(url: url, body: Data(), headers: [])) else {
                Issue.record("\(url) was not refused")
                continue
            }
        }
    }

    @Test func doesNotFollowRedirects() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        let response = await WebhookClient(settings: Self.loopback).send(WebhookRequest(url: receiver.url("/codes/302/x"), body: Data(), headers: []))
        #expect(response == .answered(status: 302, retryAfter: nil, body: #"{"received": 1}"#))
        #expect(try receiver.requests().count == 1)
    }

    @Test func internalDestinationsAreRefusedByDefaultOnTheResolvedAddress() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        let client = WebhookClient(settings: .init())
        for url in [receiver.url("/hooks/x"), "http://localhost:\(receiver.port)/hooks/x", "http://169.254.169.254/latest/meta-data/", "http://[::1]:\(receiver.port)/x", "http://[::ffff:127.0.0.1]:\(receiver.port)/x"] {
            let response = await client.send(WebhookRequest(url: url, body: Data("{}".utf8), headers: []))
            guard case .refused(let reason) = response else {
                Issue.record("\(url) was not refused: \(response)")
                continue
            }
            #expect(reason.contains("ALERTD_WEBHOOK_ALLOW"), "\(url)")
        }
        #expect(try receiver.requests().isEmpty)
    }

    /// libcurl resolves `localhost` to 127.0.0.1 and ::1 and tries them in turn: with only ::1
    /// allowed, the first is refused, the second connects, and the receiver's answer is the
    /// outcome. A refusal is the outcome only when no address could be used.
    @Test func aTransferThatCompletedIsJudgedByItsAnswerWhateverAddressesWereRefusedOnTheWay() async throws {
        let receiver = try await WebhookReceiver.start(address: "::1")
        defer { receiver.stop() }
        var settings = WebhookClient.Settings()
        settings.policy = try DestinationPolicy.parse(allowList: "::1")
        let client = WebhookClient(settings: settings)
        let url = receiver.url("/hooks/two-addresses", host: "localhost")
        #expect(await client.send(WebhookRequest(url: url, body: Data("{}".utf8), headers: [])) == .answered(status: 200, retryAfter: nil, body: #"{"received": 1}"#))
        #expect(await client.send(WebhookRequest(url: receiver.url("/codes/503/two", host: "localhost"), body: Data(), headers: [])) == .answered(status: 503, retryAfter: nil, body: #"{"received": 1}"#))
        #expect(try receiver.requests().count == 2)

        // Allowing neither: refused, and nothing reaches the receiver.
        let strict = WebhookClient(settings: .init())
        guard case .refused = await strict.send(WebhookRequest(url: url, body: Data(), headers: [])) else {
            Issue.record("a name whose every address is refused was not refused")
            return
        }
        #expect(try receiver.requests().count == 2)
    }

    @Test func httpsReceiversMustHaveATrustedCertificateForTheirName() async throws {
        let certificates = try await TestCertificates.make(hostName: "localhost")
        let receiver = try await WebhookReceiver.start(certificates: certificates)
        defer { receiver.stop() }
        var settings = WebhookClient.Settings()
        settings.policy = try DestinationPolicy.parse(allowList: "127.0.0.1, ::1")
        let request = WebhookRequest(url: receiver.url("/hooks/tls", host: "localhost"), body: Data("{}".utf8), headers: [])

        // The system's CAs do not know the throwaway CA.
        guard case .transportFailed = await WebhookClient(settings: settings).send(request) else {
            Issue.record("an untrusted certificate was accepted")
            return
        }
        // Trusted, for the right name: delivered.
        settings.caFile = certificates.caFile
        #expect(await WebhookClient(settings: settings).send(request) == .answered(status: 200, retryAfter: nil, body: #"{"received": 1}"#))
        // Trusted CA, wrong name: refused.
        let other = try await TestCertificates.make(hostName: "hooks.other.example", includeLoopbackAddress: false)
        let misnamed = try await WebhookReceiver.start(certificates: other)
        defer { misnamed.stop() }
        settings.caFile = other.caFile
        guard case .transportFailed = await WebhookClient(settings: settings).send(WebhookRequest(url: misnamed.url("/x", host: "localhost"), body: Data(), headers: [])) else {
            Issue.record("a certificate for another host was accepted")
            return
        }
        #expect(try misnamed.requests().isEmpty)
    }
}
